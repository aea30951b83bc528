// `strata prune` in `docker buildx prune`'s syntax: --filter until=DURATION
// and --keep-storage SIZE, and the pure least-recently-used selection of the
// build cache (cache records and RUN cache mounts) they imply. The verb does
// the I/O (sizes, times, locks, removal); this file only decides.
//
//   --filter until=DURATION   Go's time.ParseDuration syntax (24h, 30m,
//                             1h30m, 1.5h, 500ms); entries last used earlier
//                             than now - DURATION. No other key is supported
//                             (buildx's id, type, inuse, ... are refused).
//   --keep-storage SIZE       buildx's units (docker/go-units RAMInBytes:
//                             512MB = 512 MiB, 1GB = 1 GiB, a bare number is
//                             bytes): remove the least recently used entries
//                             until the build cache uses at most SIZE.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "oci/util/error.h"

namespace strata::cli {

// InvalidArgument naming the value unless it is a non-negative Go duration.
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view value);

// InvalidArgument naming the value unless it is a size in go-units' RAM
// syntax (binary multiples, case-insensitive k/m/g/t/p with optional i and b).
Result<int64_t> ParseBuildxSize(std::string_view value);

struct PruneFilters {
  std::optional<std::chrono::nanoseconds> until;
};
// Each value is KEY=VALUE; InvalidArgument naming an unknown key (buildx's
// other keys included), a missing '=', a repeated key, or a bad duration.
Result<PruneFilters> ParsePruneFilters(const std::vector<std::string>& values);

// One build-cache entry: a cache record (its blobs, by digest string) or a
// RUN cache mount (its own size).
struct CacheEntry {
  std::string name;
  bool is_mount = false;
  int64_t last_used = 0;           // seconds since the epoch
  int64_t size = 0;                // cache mounts
  std::vector<std::string> blobs;  // cache records: the blobs only the cache keeps
};

struct CacheSelection {
  std::optional<int64_t> older_than;    // seconds since the epoch (now - until)
  std::optional<int64_t> keep_storage;  // bytes
};

// Usage of `entries`: mounts' sizes plus each distinct record blob once
// (`blob_size`; unknown blobs count 0).
int64_t CacheUsage(const std::vector<CacheEntry>& entries,
                   const std::unordered_map<std::string, int64_t>& blob_size);

// Walks `entries` least recently used first and calls `remove` for each
// entry older than `older_than` (all when unset), stopping once usage is at
// most `keep_storage` (never when unset). `remove` returns false when the
// entry could not go (a cache mount in use): it then still counts. Returns
// the usage left.
int64_t SelectCacheForRemoval(std::vector<CacheEntry> entries,
                              const std::unordered_map<std::string, int64_t>& blob_size,
                              const CacheSelection& selection,
                              const std::function<bool(const CacheEntry&)>& remove);

}  // namespace strata::cli
