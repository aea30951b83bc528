#include "builder/build_cache.h"

#include <nlohmann/json.hpp>

#include "oci/json_util.h"
#include "oci/util/file_util.h"

namespace strata::builder {

CacheKey& CacheKey::Add(std::string_view field) {
  std::string len = std::to_string(field.size()) + ":";
  h_.Update(len);
  h_.Update(field);
  return *this;
}

CacheKey& CacheKey::Add(const std::vector<std::string>& fields) {
  Add(std::to_string(fields.size()));
  for (const auto& f : fields) Add(f);
  return *this;
}

std::filesystem::path BuildCache::PathFor(const oci::Digest& key) const {
  return store_.CacheDir() / (key.hex() + ".json");
}

std::optional<CacheRecord> BuildCache::Lookup(const oci::Digest& key) const {
  auto text = ReadFile(PathFor(key));
  if (!text) return std::nullopt;
  auto j = oci::ParseJson(*text, "cache record");
  if (!j || !j->is_object()) return std::nullopt;
  CacheRecord r;
  auto by = oci::GetString(*j, "created_by", "cache record");
  if (!by) return std::nullopt;
  r.created_by = *by;
  auto created = oci::GetString(*j, "created", "cache record");
  if (!created) return std::nullopt;
  r.created = *created;
  if (auto e = j->find("empty_layer"); e != j->end() && e->is_boolean()) r.empty_layer = *e;
  if (!r.empty_layer) {
    auto l = j->find("layer");
    if (l == j->end()) return std::nullopt;
    auto d = oci::Descriptor::FromJson(*l);
    if (!d) return std::nullopt;
    auto diff = oci::GetString(*j, "diff_id", "cache record");
    if (!diff) return std::nullopt;
    auto dd = oci::Digest::Parse(*diff);
    if (!dd) return std::nullopt;
    r.layer = *d;
    r.diff_id = *dd;
    auto size = store_.Size(r.layer.digest);
    if (!size || *size != r.layer.size) return std::nullopt;
  }
  return r;
}

Status BuildCache::Record(const oci::Digest& key, const CacheRecord& record) const {
  nlohmann::json j = {{"version", 1},
                      {"created_by", record.created_by},
                      {"created", record.created},
                      {"empty_layer", record.empty_layer}};
  nlohmann::json blobs = nlohmann::json::array();
  if (!record.empty_layer) {
    j["layer"] = record.layer.ToJson();
    j["diff_id"] = record.diff_id.ToString();
    blobs.push_back(record.layer.digest.ToString());
  }
  j["blobs"] = blobs;
  return WriteFileAtomic(PathFor(key), oci::DumpJson(j) + "\n");
}

}  // namespace strata::builder
