// TarChunker: where the gzip members of a layer end. Part of the layer
// format: changing a constant here changes every gzip layer digest.
//
// A gzip layer is a sequence of independent gzip members (oci/compress.h),
// one per chunk of the uncompressed tar. Chunk boundaries depend only on the
// tar's content, so that a commit after a small change cuts the same chunks
// as before everywhere but around the change, and the chunk cache
// (oci/chunk_cache.h) copies those members instead of deflating them again.
//
// The rule, applied at each tar entry (in stream order):
//   - before the entry's header, cut if
//       * the previous entry had >= kBigEntry bytes of data (a cut follows
//         the end of a big entry, its padding included), or
//       * this entry has >= kBigEntry bytes of data (it starts its own
//         chunk), or
//       * at least kMaxChunk bytes were written since the last cut, or
//       * at least kMinChunk bytes were written since the last cut and
//         NameHash(path) % kCutModulus == 0;
//   - inside a big entry's data, cut every kBigEntry bytes from the first
//     data byte (the header and the first kBigEntry data bytes are a chunk).
// The end-of-archive blocks belong to the last chunk. Chunks are therefore
// at most about kMaxChunk + kBigEntry bytes (plus one entry's PAX header).
//
// Why these values: deflate members share no dictionary, so each member pays
// for a cold start (~32 KiB of warm-up and a header/trailer of 18 bytes);
// with kMinChunk = 256 KiB and a cut on 1 in 8 names the average chunk of a
// tree of small files is ~300-400 KiB and the size cost ~0.2% (measured in
// docs/PERFORMANCE.md against one stream over the whole tar). A
// changed file changes its own chunk and, until the next name that cuts in
// both streams, the following one: ~0.5 MiB of recompression. Cutting on the
// name hash (not the header bytes) keeps boundaries where they were when only
// a file's mtime or size changed. 1 MiB pieces of big files bound memory
// (a few chunks per worker are in flight) and make a changed big file reuse
// every piece before the change.
//
// Thread-safety: none; one per stream.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>

#include "oci/util/error.h"

namespace strata::oci {

// Told by a tar writer (oci/layer_writer's walker) where entries start.
// Offsets are positions in the uncompressed tar stream, so a listener that
// receives the bytes later (buffered, on another stage) still cuts at the
// right place. Calls come in stream order and before the bytes at their
// offsets have been written to the listener.
class TarEntryListener {
 public:
  virtual ~TarEntryListener() = default;
  // The header of entry `path` (its PAX extension first, if any) starts at
  // `offset`; the entry carries `data_size` bytes of file data.
  virtual Status OnEntryHeader(uint64_t offset, std::string_view path, int64_t data_size) = 0;
  // The entry's data starts at `offset` (after its header).
  virtual Status OnEntryData(uint64_t offset) = 0;
};

class TarChunker {
 public:
  static constexpr uint64_t kMinChunk = 256 * 1024;
  static constexpr uint64_t kMaxChunk = 1024 * 1024;
  static constexpr uint64_t kBigEntry = 1024 * 1024;
  static constexpr uint64_t kCutModulus = 8;

  // 64-bit FNV-1a of the path, finished with the splitmix64 mixer so that its
  // low bits are usable. Fixed forever (part of the format).
  static uint64_t NameHash(std::string_view path);

  // Feed the walker's events. InvalidArgument if offsets go backwards.
  Status OnEntryHeader(uint64_t offset, std::string_view path, int64_t data_size);
  Status OnEntryData(uint64_t offset);

  // The smallest cut offset > `pos` decided so far, or UINT64_MAX. Cuts at
  // or before `pos` are forgotten.
  uint64_t NextCutAfter(uint64_t pos);
  // True if a cut was decided exactly at `pos` (and forgets cuts <= pos).
  bool CutAt(uint64_t pos);

 private:
  std::deque<uint64_t> cuts_;  // decided, ascending
  uint64_t last_cut_ = 0;      // offset of the last decided cut
  uint64_t last_offset_ = 0;
  bool prev_big_ = false;
  int64_t pending_big_size_ = -1;  // a big entry whose data offset is next
  // Periodic cuts inside a big entry's data: data_start + k * kBigEntry for
  // k >= 1 while < big_end_.
  uint64_t big_start_ = 0;
  uint64_t big_end_ = 0;
};

}  // namespace strata::oci
