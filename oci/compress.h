// Layer compression: streaming compressors and decompressors for the codecs
// OCI layers use (gzip, zstd, none).
//
// gzip is a multi-member stream (RFC 1952 2.2: "a gzip file consists of a
// series of members"): the input is cut into chunks, each chunk is deflated
// on its own by libdeflate on a worker thread and wrapped as one complete
// gzip member -- a fixed 10-byte header (1f 8b 08, FLG 0, MTIME 0, XFL 0,
// OS 255: nothing machine-specific), the raw deflate stream, CRC32 and ISIZE
// -- and the members are concatenated in input order. Every gzip reader
// (zlib, Go's compress/gzip, hence containerd, podman, skopeo, umoci; gzip -d)
// reads the concatenation as one stream.
//
// Why members rather than one stream with sync-flushed blocks (pigz): a
// member depends only on its own chunk, so a chunk that was compressed
// before can be copied from an earlier blob (GzipMemberCache, the chunk cache
// of oci/chunk_cache.h) and the blob is byte-identical to a fresh one; and
// libdeflate compresses whole buffers only, 2-3x faster than zlib at the
// same level. The cost is that each member starts with an empty window; on
// the 230 MB tree of docs/PERFORMANCE.md the layer is still 1% (level 6) to
// 5% (level 1) smaller than zlib's single stream. libdeflate's output is
// deterministic for a given version (ebiggers/libdeflate#400) but may change
// with an upgrade, as zlib's could: the version is in GzipMemberParams.
//
// Chunks: by default every kGzipFixedChunk bytes; a layer's tar writer may
// instead tell a LayerCompressor where tar entries start, and members then
// end where oci/tar_chunker.h decides (content-defined, at entry boundaries).
// A chunk whose byte histogram is flat (random or already compressed data;
// an integer test) is written as deflate stored blocks without running
// deflate, as is any chunk that deflate would not shrink.
//
// Levels: strata's gzip levels 0..9 (default 1) are libdeflate's levels 0..8
// unchanged, and 9 is libdeflate's 12 (its slowest, smallest). 0 stores.
// The output depends only on the input, the chunk boundaries, the level and
// the libdeflate version (GzipMemberParams) -- never on the thread count.
//
// zstd uses libzstd's own workers. Its multi-threaded mode (nbWorkers >= 1)
// cuts jobs at a fixed job size, so its output does not depend on the number
// of workers; the single-threaded mode (nbWorkers = 0) emits different bytes,
// so strata always runs zstd with at least one worker and a pinned job size.
//
// Thread-safety: a compressor or decompressor is used from one thread; the
// gzip compressor runs its own worker threads internally and joins them on
// Close() or destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "oci/byte_stream.h"
#include "oci/digest.h"
#include "oci/media_types.h"
#include "oci/tar_chunker.h"
#include "oci/util/error.h"

namespace strata::oci {

using media_type::Compression;

struct CompressOptions {
  Compression compression = Compression::kGzip;
  // Codec level; -1 picks the default (gzip 1, zstd 3). gzip 0..9 (see
  // above for libdeflate's), zstd 1..19.
  int level = -1;
  // Worker threads; 0 = hardware concurrency. Never changes the output bytes.
  int threads = 0;
};

// The gzip chunk size of a stream without tar entry boundaries: part of the
// output format, so never tune it per run.
inline constexpr size_t kGzipFixedChunk = 1024 * 1024;

// Returns a sink that compresses what is written into `out` (not owned, must
// outlive the compressor). Close() finishes the stream and then closes `out`.
// gzip members are cut every kGzipFixedChunk bytes.
// InvalidArgument for kUnknown or an out-of-range level.
Result<std::unique_ptr<ByteSink>> NewCompressor(const CompressOptions& opts, ByteSink* out);

// The codec parameters of the gzip members written at strata level `level`
// (-1 = default), e.g. "libdeflate-1.14 level=1": equal parameters and equal
// chunks give equal members, which is what makes a member reusable.
std::string GzipMemberParams(int level);

// One gzip member of a blob.
struct GzipMember {
  Digest chunk;         // sha256 of its uncompressed bytes
  uint64_t offset = 0;  // of the member in the blob
  uint64_t length = 0;  // compressed bytes, gzip header and trailer included
  uint64_t size = 0;    // uncompressed bytes
};

// Members written before, to copy instead of deflating the same chunk again
// (oci/chunk_cache.h). Implementations are thread-safe: workers call Fetch.
class GzipMemberCache {
 public:
  virtual ~GzipMemberCache() = default;
  // GzipMemberParams of every member Fetch returns.
  virtual const std::string& params() const = 0;
  // Reads into `out` the bytes of a member whose uncompressed bytes are
  // `size` bytes hashing to `chunk`. False if none is known or it cannot be
  // read. The caller verifies what it gets (header, trailer, inflate).
  virtual bool Fetch(const Digest& chunk, uint64_t size, std::vector<uint8_t>* out) const = 0;
};

// What a gzip compressor did with its chunks.
struct ChunkStats {
  int64_t reused = 0;      // members copied from the GzipMemberCache
  int64_t compressed = 0;  // members deflated
  int64_t stored = 0;      // members of stored blocks (incompressible chunks)
};

struct LayerCompressOptions {
  // Cut gzip members where the TarEntryListener calls decide (TarChunker),
  // and after 16 MiB without a cut (a guard WriteTar never reaches);
  // false: every kGzipFixedChunk bytes.
  bool tar_entries = false;
  // Reuse members from here (not owned; must outlive the compressor). Used
  // only when its params() match the level's GzipMemberParams.
  const GzipMemberCache* cache = nullptr;
  // Hash each deflated chunk and list its member in members().
  bool record_members = false;
};

// A compressor for layers: a ByteSink that also takes tar entry boundaries.
// For zstd and none the boundaries are ignored and the stats stay zero.
class LayerCompressor : public ByteSink, public TarEntryListener {
 public:
  // Valid after Close().
  virtual ChunkStats stats() const = 0;
  // The deflated (reused or compressed) members, in blob order, when
  // record_members was set; stored members are never listed.
  virtual const std::vector<GzipMember>& members() const = 0;
};

// NewCompressor with member boundaries, reuse and records (see above).
Result<std::unique_ptr<LayerCompressor>> NewLayerCompressor(const CompressOptions& opts,
                                                            const LayerCompressOptions& lopts,
                                                            ByteSink* out);

// Returns a source that yields the decompressed bytes of `in` (not owned).
// gzip accepts concatenated members. Trailing garbage, a truncated stream or a
// bad checksum is DataLoss.
Result<std::unique_ptr<ByteSource>> NewDecompressor(Compression compression, ByteSource* in);

// The one decompressor for whatever strata reads compressed: layers of
// docker archives, archives given to `load`, ADD of local tar archives.
// Returns a source of the decompressed bytes of `in` (not owned), detected
// from its first bytes: gzip and zstd through NewDecompressor; xz, bzip2 and
// lz4 through libarchive's in-process filters (never an external program);
// anything else passes through unchanged. Corrupt data is DataLoss; errors of
// `in` come back unchanged. (oci/decompress.cc)
Result<std::unique_ptr<ByteSource>> NewAutoDecompressor(ByteSource* in);
// NewAutoDecompressor over the file at `path`, which the source owns. Open
// errors (NotFound, ...) name the path.
Result<std::unique_ptr<ByteSource>> OpenDecompressedFile(const std::filesystem::path& path);

// Compression recognised from the first bytes of a stream (at least 4 bytes
// for a definite answer): gzip 1f 8b, zstd 28 b5 2f fd, otherwise kNone.
Compression DetectCompression(std::string_view head);

// "gzip", "zstd", "none".
std::string_view CompressionName(Compression c);

// The OCI layer media type for a compression (kNone -> plain tar).
std::string_view LayerMediaType(Compression c);

}  // namespace strata::oci
