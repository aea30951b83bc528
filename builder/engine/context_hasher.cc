#include "builder/engine/context_hasher.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "oci/json_util.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace fs = std::filesystem;

std::filesystem::path ContextHasher::MemoPath(const std::filesystem::path& cache_dir,
                                              const std::filesystem::path& context) {
  return cache_dir / ("context-" + oci::Digest::Of(context.string()).hex().substr(0, 32) + ".memo");
}

ContextHasher::ContextHasher(const fs::path& cache_dir, const fs::path& context)
    : path_(MemoPath(cache_dir, context)) {
  auto text = ReadFile(path_);
  if (!text) return;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return;
  for (const auto& [k, v] : j.items()) {
    if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
      memo_[k] = {v[0].get<std::string>(), v[1].get<std::string>()};
    }
  }
}

Result<std::string> ContextHasher::Digest(const fs::path& file, const struct stat& st) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string stamp =
      fmt::format("{}:{}:{}:{}.{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                  st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  auto it = memo_.find(file.string());
  if (it != memo_.end() && it->second.first == stamp) return it->second.second;
  STRATA_ASSIGN_OR_RETURN(auto d, oci::DigestFile(file.string()));
  memo_[file.string()] = {stamp, d.ToString()};
  dirty_ = true;
  return d.ToString();
}

void ContextHasher::Save() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirty_) return;
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : memo_) j[k] = {v.first, v.second};
  (void)WriteFileAtomic(path_, oci::DumpJson(j));
}

}  // namespace strata::builder
