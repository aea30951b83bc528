// ChunkCache: where the gzip members of recently committed layer blobs are,
// so that a commit copies a member instead of deflating the same chunk again
// (never recompress what did not change). The cache only saves CPU: a blob
// is byte-identical with and without it, because a member is reused only
// when written with the same codec parameters (GzipMemberParams) and after
// the compressor has checked that it inflates to exactly the chunk.
//
// On disk, one table per gzip layer blob, owned by this file alone:
//
//   ROOT/chunks/sha256/<blob hex>     (written with AtomicFile, mode 0644)
//
//     strata-chunks 1
//     params <GzipMemberParams, e.g. "libdeflate-1.14 level=1">
//     <chunk sha256 hex> <member offset> <member length> <uncompressed size>
//     ...                                         (one line per deflated member)
//
// Stored (incompressible) members are not listed: copying them costs as much
// as storing them again. A table whose blob is gone, that cannot be read or
// parsed, or whose params differ is ignored, never an error; a line that
// does not parse or points outside its blob is skipped. Only the kMaxTables
// most recent tables (by mtime) are kept: WriteChunkTable removes older ones,
// and Prune removes the table of every blob it deletes (SweepChunkTables).
//
// Thread-safety: a loaded ChunkCache is immutable; Fetch may be called from
// any number of threads (pread on fds opened at Load).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "oci/compress.h"
#include "oci/digest.h"
#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {

class Store;

class ChunkCache : public GzipMemberCache {
 public:
  static constexpr size_t kMaxTables = 64;

  // Loads the members of the kMaxTables most recent tables under `store`
  // written with `params`. Never fails: what cannot be used is skipped.
  static std::unique_ptr<ChunkCache> Load(const Store& store, std::string params);

  const std::string& params() const override { return params_; }
  bool Fetch(const Digest& chunk, uint64_t size, std::vector<uint8_t>* out) const override;

  // Members known (distinct chunks) and tables used.
  size_t members() const { return index_.size(); }
  size_t tables() const { return blobs_.size(); }

 private:
  struct Location {
    size_t blob;  // index into blobs_
    uint64_t offset;
    uint64_t length;
    uint64_t size;
  };
  explicit ChunkCache(std::string params) : params_(std::move(params)) {}
  std::string params_;
  std::vector<UniqueFd> blobs_;
  std::unordered_map<std::string, Location> index_;  // chunk hex -> member
};

// Writes the table of `blob` (a committed gzip layer) listing `members`, then
// removes the oldest tables beyond kMaxTables. Writes nothing for an empty
// list. Errors of the file system come back as they are; callers may ignore
// them (a missing table only costs reuse).
Status WriteChunkTable(const Store& store, const Digest& blob, std::string_view params,
                       const std::vector<GzipMember>& members);

// Removes the tables whose blob is not in the store (Prune, after it deleted
// blobs). Returns how many were removed.
int64_t SweepChunkTables(const Store& store);

}  // namespace strata::oci
