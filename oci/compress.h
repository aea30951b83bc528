// Layer compression: streaming compressors and decompressors for the codecs
// OCI layers use (gzip, zstd, none).
//
// gzip is block-parallel in the manner of pigz: the input is cut into fixed
// 256 KiB blocks; each block is raw-deflated on a worker thread with the
// previous block's last 32 KiB as its dictionary and ends on a byte boundary
// (Z_SYNC_FLUSH, Z_FINISH for the last one). The blocks are concatenated in
// order behind a fixed 10-byte header (mtime 0, OS 255) and followed by the
// crc32_combine'd CRC and the length: one valid gzip member. Because block
// boundaries and dictionaries depend only on the input, the output is
// byte-identical for any thread count; it depends on the zlib build only.
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
#include <filesystem>
#include <memory>
#include <string_view>

#include "oci/byte_stream.h"
#include "oci/media_types.h"
#include "oci/util/error.h"

namespace strata::oci {

using media_type::Compression;

struct CompressOptions {
  Compression compression = Compression::kGzip;
  // Codec level; -1 picks the default (gzip 1, zstd 3). gzip 0..9, zstd 1..19.
  int level = -1;
  // Worker threads; 0 = hardware concurrency. Never changes the output bytes.
  int threads = 0;
};

// The gzip block size: part of the output format, so never tune it per run.
inline constexpr size_t kGzipBlockSize = 256 * 1024;

// Returns a sink that compresses what is written into `out` (not owned, must
// outlive the compressor). Close() finishes the stream and then closes `out`.
// InvalidArgument for kUnknown or an out-of-range level.
Result<std::unique_ptr<ByteSink>> NewCompressor(const CompressOptions& opts, ByteSink* out);

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
