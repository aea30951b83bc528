#include "builder/engine/build_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include <nlohmann/json.hpp>

#include "oci/json_util.h"
#include "oci/media_types.h"
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

std::optional<CacheRecord> CacheRecordFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  CacheRecord r;
  auto by = oci::GetString(j, "created_by", "cache record");
  if (!by) return std::nullopt;
  r.created_by = *by;
  auto created = oci::GetString(j, "created", "cache record");
  if (!created) return std::nullopt;
  r.created = *created;
  if (auto e = j.find("empty_layer"); e != j.end() && e->is_boolean()) r.empty_layer = *e;
  if (!r.empty_layer) {
    auto l = j.find("layer");
    if (l == j.end()) return std::nullopt;
    auto d = oci::Descriptor::FromJson(*l);
    if (!d) return std::nullopt;
    auto diff = oci::GetString(j, "diff_id", "cache record");
    if (!diff) return std::nullopt;
    auto dd = oci::Digest::Parse(*diff);
    if (!dd) return std::nullopt;
    r.layer = *d;
    r.diff_id = *dd;
  }
  return r;
}

nlohmann::json CacheRecordToJson(const CacheRecord& record) {
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
  return j;
}

std::optional<CacheRecord> BuildCache::Lookup(const oci::Digest& key) const {
  auto text = ReadFile(PathFor(key));
  if (!text) return std::nullopt;
  auto j = oci::ParseJson(*text, "cache record");
  if (!j) return std::nullopt;
  auto r = CacheRecordFromJson(*j);
  if (!r) return std::nullopt;
  if (!r->empty_layer) {
    auto size = store_.Size(r->layer.digest);
    if (!size || *size != r->layer.size) return std::nullopt;
  }
  // A hit marks the record used now: `prune --filter until=` and
  // `--keep-storage` remove the least recently used records first. Best
  // effort (a read-only store still hits).
  (void)::utimensat(AT_FDCWD, PathFor(key).c_str(), nullptr, 0);
  return r;
}

Status BuildCache::Record(const oci::Digest& key, const CacheRecord& record) const {
  return WriteFileAtomic(PathFor(key), oci::DumpJson(CacheRecordToJson(record)) + "\n");
}

Result<std::vector<oci::Digest>> CacheRecordRoots(const oci::Store& store) {
  std::vector<oci::Digest> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(store.CacheDir(), ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    auto text = ReadFile(it->path());
    if (!text) continue;
    auto j = oci::ParseJson(*text, it->path().string());
    if (!j || !j->is_object()) continue;
    auto list = oci::GetStringList(*j, "blobs", "cache record");
    if (!list) continue;
    for (const auto& s : *list) {
      if (auto d = oci::Digest::Parse(s)) out.push_back(*d);
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return MakeError(ErrorCode::kInternal, "list {}: {}", store.CacheDir().string(), ec.message());
  }
  return out;
}

Result<int64_t> DropCacheRecords(const oci::Store& store) {
  int64_t removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(store.CacheDir(), ec), end; !ec && it != end;
       it.increment(ec)) {
    if (RemoveAll(it->path())) ++removed;
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return MakeError(ErrorCode::kInternal, "list {}: {}", store.CacheDir().string(), ec.message());
  }
  return removed;
}

// The exported cache is an ordinary image so that any registry stores it and
// the registry client pushes and pulls it unchanged: its layers are the
// cached layer blobs, its config an image config whose extra key
// "strata.build-cache.v1" maps cache-key hex -> record.
constexpr std::string_view kCacheConfigKey = "strata.build-cache.v1";

Result<oci::Descriptor> ExportCache(
    oci::Store& store, const std::vector<std::pair<oci::Digest, CacheRecord>>& records) {
  oci::ImageConfig cfg;
  cfg.os = "linux";
  cfg.architecture = oci::Platform::Host().architecture;
  nlohmann::json recs = nlohmann::json::object();
  oci::Manifest m;
  m.media_type = std::string(oci::media_type::kImageManifest);
  std::set<oci::Digest> seen;
  for (const auto& [key, rec] : records) {
    recs[key.hex()] = CacheRecordToJson(rec);
    if (rec.empty_layer || !seen.insert(rec.layer.digest).second) continue;
    if (!store.Has(rec.layer.digest)) {
      return MakeError(ErrorCode::kNotFound, "cache export: layer {} is not in the store",
                       rec.layer.digest.ToString());
    }
    m.layers.push_back(rec.layer);
    cfg.diff_ids.push_back(rec.diff_id);
  }
  cfg.extra[std::string(kCacheConfigKey)] = recs;
  STRATA_ASSIGN_OR_RETURN(m.config,
                          store.Put(cfg.Serialize(), std::string(oci::media_type::kImageConfig)));
  return store.Put(m.Serialize(), std::string(oci::media_type::kImageManifest));
}

Result<int> ImportCache(oci::Store& store, const oci::Image& image) {
  auto it = image.config.extra.find(std::string(kCacheConfigKey));
  if (it == image.config.extra.end() || !it->is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "image {} is not a strata build cache",
                     image.descriptor.digest.ToString());
  }
  BuildCache cache(store);
  int imported = 0;
  for (const auto& [hex, j] : it->items()) {
    auto key = oci::Digest::Parse("sha256:" + hex);
    auto rec = CacheRecordFromJson(j);
    if (!key || !rec) continue;  // a foreign or damaged entry is skipped, never trusted
    if (cache.Lookup(*key)) continue;
    STRATA_RETURN_IF_ERROR(cache.Record(*key, *rec));
    ++imported;
  }
  return imported;
}

}  // namespace strata::builder
