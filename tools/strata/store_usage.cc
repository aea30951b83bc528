#include "tools/strata/store_usage.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/json_util.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"

namespace strata::cli {

namespace fs = std::filesystem;

// Marks the blobs `desc` reaches (an index's manifests, a manifest's config
// and layers). Unreadable parts are reported through `warn`.
void Mark(const oci::Store& store, const oci::Descriptor& desc,
          std::unordered_set<std::string>& live, std::vector<oci::Digest>& configs,
          const std::function<void(std::string)>& warn, int depth) {
  live.insert(desc.digest.ToString());
  if (depth > 4) return;
  auto bytes = store.ReadBlob(desc.digest);
  if (!bytes) {
    warn(bytes.error().message());
    return;
  }
  std::string mt = desc.media_type;
  if (auto d = oci::DetectManifestMediaType(*bytes); d && mt.empty()) mt = *d;
  if (oci::media_type::IsIndex(mt)) {
    auto idx = oci::Index::Parse(*bytes);
    if (!idx) {
      warn(fmt::format("index {}: {}", desc.digest.ToString(), idx.error().message()));
      return;
    }
    for (const auto& m : idx->manifests) {
      if (store.Has(m.digest)) Mark(store, m, live, configs, warn, depth + 1);
    }
    return;
  }
  auto m = oci::Manifest::Parse(*bytes);
  if (!m) {
    warn(fmt::format("manifest {}: {}", desc.digest.ToString(), m.error().message()));
    return;
  }
  live.insert(m->config.digest.ToString());
  configs.push_back(m->config.digest);
  for (const auto& l : m->layers) live.insert(l.digest.ToString());
}

std::vector<std::string> RecordBlobs(const fs::path& record) {
  std::vector<std::string> out;
  auto text = ReadFile(record);
  if (!text) return out;
  auto j = oci::ParseJson(*text, record.string());
  if (!j || !j->is_object()) return out;
  auto list = oci::GetStringList(*j, "blobs", "cache record");
  if (list) out = std::move(*list);
  return out;
}

}  // namespace strata::cli
