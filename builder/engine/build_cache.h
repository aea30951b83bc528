// BuildCache: build-step cache records in ROOT/cache/.
//
// A step's key is a sha256 chained from its parent's key (CacheKey), so a
// change anywhere invalidates every later step. A record stores what the step
// produced: a layer (descriptor + diffID) or nothing (an empty RUN). Format,
// one JSON file per key, written atomically:
//   ROOT/cache/<key hex>.json
//   {"version":1, "created_by":"RUN ...", "created":"2026-...Z", "empty_layer":false,
//    "layer":{descriptor}, "diff_id":"sha256:...", "blobs":["sha256:..."]}
// `blobs` is what the cache keeps alive: CacheRecordRoots hands them to
// Store::Prune as GC roots (the store never reads these files).
// A record whose blob is gone from the store is a miss, never an error.
// Thread-safe (records are immutable files; writes are atomic).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/store.h"

#include <nlohmann/json.hpp>

namespace strata::builder {

// Incremental key builder: length-prefixed fields into sha256, so that
// ("ab","c") and ("a","bc") never collide.
class CacheKey {
 public:
  explicit CacheKey(std::string_view kind) { Add(kind); }
  CacheKey& Add(std::string_view field);
  CacheKey& Add(const std::vector<std::string>& fields);
  oci::Digest Finish() { return h_.Finish(); }

 private:
  oci::Digester h_;
};

struct CacheRecord {
  std::string created_by;
  std::string created;  // RFC 3339 time the step first ran (history `created`)
  bool empty_layer = false;
  oci::Descriptor layer;  // when !empty_layer
  oci::Digest diff_id;    // when !empty_layer
};

// The JSON of one record (the file format above); nullopt if malformed.
nlohmann::json CacheRecordToJson(const CacheRecord& record);
std::optional<CacheRecord> CacheRecordFromJson(const nlohmann::json& j);

class BuildCache {
 public:
  explicit BuildCache(const oci::Store& store) : store_(store) {}

  // The record for `key` if it exists and everything it names is in the store.
  std::optional<CacheRecord> Lookup(const oci::Digest& key) const;
  Status Record(const oci::Digest& key, const CacheRecord& record) const;

 private:
  std::filesystem::path PathFor(const oci::Digest& key) const;
  const oci::Store& store_;
};

// --cache-to / --cache-from: a build's records as an ordinary OCI image
// (layers = the cached layer blobs; config = an image config whose extra key
// "strata.build-cache.v1" maps key hex -> record), so any registry can hold
// it and CI runners on fresh machines share one cache.
// ExportCache writes config and manifest into `store` and returns the
// manifest descriptor (push it with the registry client).
Result<oci::Descriptor> ExportCache(
    oci::Store& store, const std::vector<std::pair<oci::Digest, CacheRecord>>& records);
// Writes the records of a pulled cache image into ROOT/cache (records that
// exist locally are kept). Returns how many were added. InvalidArgument if the
// image is not a strata cache.
Result<int> ImportCache(oci::Store& store, const oci::Image& image);

// The digests the records under ROOT/cache keep alive (each record's "blobs"),
// for oci::PruneOptions::extra_roots. Unreadable records keep nothing.
Result<std::vector<oci::Digest>> CacheRecordRoots(const oci::Store& store);
// Removes every record (prune --all); returns how many.
Result<int64_t> DropCacheRecords(const oci::Store& store);

}  // namespace strata::builder
