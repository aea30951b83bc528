#include "oci/blob_sources.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "oci/json_util.h"
#include "oci/store.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {
namespace fs = std::filesystem;

namespace {

fs::path RecordPath(const Store& store, const Digest& d) {
  return store.SourcesDir() / std::string(d.algorithm_name()) / d.hex();
}

// ROOT/sources/.lock held exclusively: one read-modify-write at a time.
Result<UniqueFd> LockSources(const Store& store) {
  STRATA_RETURN_IF_ERROR(MakeDirs(store.SourcesDir()));
  const fs::path path = store.SourcesDir() / ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path.string()));
  UniqueFd owner(fd);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError(errno, fmt::format("lock {}", path.string()));
  }
  return owner;
}

std::vector<BlobLocation> ParseRecord(std::string_view text) {
  std::vector<BlobLocation> out;
  auto j = ParseJson(text, "blob sources");
  if (!j || !j->is_object()) return out;
  auto it = j->find("sources");
  if (it == j->end() || !it->is_array()) return out;
  for (const auto& e : *it) {
    if (!e.is_object()) continue;
    auto reg = GetString(e, "registry", "blob source");
    auto repo = GetString(e, "repository", "blob source");
    if (!reg || !repo || reg->empty() || repo->empty()) continue;
    out.push_back({*reg, *repo});
  }
  return out;
}

}  // namespace

Result<std::vector<BlobLocation>> ReadBlobSources(const Store& store, const Digest& d) {
  auto text = ReadFile(RecordPath(store, d));
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::vector<BlobLocation>{};
    return Unexpected(text.error());
  }
  return ParseRecord(*text);
}

Status RecordBlobSource(const Store& store, const Digest& d, const BlobLocation& src) {
  if (src.registry.empty() || src.repository.empty())
    return MakeError(ErrorCode::kInvalidArgument, "blob source of {}: empty registry or repository",
                     d);
  STRATA_ASSIGN_OR_RETURN(UniqueFd lock, LockSources(store));
  const fs::path path = RecordPath(store, d);
  STRATA_ASSIGN_OR_RETURN(std::vector<BlobLocation> sources, ReadBlobSources(store, d));
  if (!sources.empty() && sources.front() == src) return OkStatus();  // nothing changes
  std::erase(sources, src);
  sources.insert(sources.begin(), src);
  if (sources.size() > kMaxBlobSources) sources.resize(kMaxBlobSources);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : sources)
    list.push_back(nlohmann::json{{"registry", s.registry}, {"repository", s.repository}});
  STRATA_RETURN_IF_ERROR(MakeDirs(path.parent_path()));
  return WriteFileAtomic(path, DumpJson(nlohmann::json{{"sources", std::move(list)}}));
}

Result<int64_t> SweepBlobSources(const Store& store, const std::unordered_set<Digest>& keep) {
  int64_t removed = 0;
  std::error_code ec;
  if (!fs::exists(store.SourcesDir(), ec)) return removed;
  STRATA_ASSIGN_OR_RETURN(UniqueFd lock, LockSources(store));
  for (fs::directory_iterator alg(store.SourcesDir(), ec), end; !ec && alg != end;
       alg.increment(ec)) {
    if (!alg->is_directory(ec)) continue;
    std::error_code ec2;
    for (fs::directory_iterator it(alg->path(), ec2); !ec2 && it != end; it.increment(ec2)) {
      const std::string name = it->path().filename().string();
      auto d = Digest::Parse(alg->path().filename().string() + ":" + name);
      // Leftover temp files of a killed writer and records of dropped blobs.
      if (d && keep.count(*d)) continue;
      if (::unlink(it->path().c_str()) == 0) ++removed;
    }
    if (ec2) return ErrnoError(ec2.value(), fmt::format("list {}", alg->path().string()));
  }
  if (ec) return ErrnoError(ec.value(), fmt::format("list {}", store.SourcesDir().string()));
  return removed;
}

}  // namespace strata::oci
