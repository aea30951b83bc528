// Layer writer: turns a directory into a layer blob in one streaming pass.
//
//   walk (each directory's names in byte order, parents before children)
//     -> libarchive tar, PAX "restricted" format (plain ustar headers unless
//        a long name, a large size, a non-ASCII name or an xattr needs PAX)
//     -> sha256 of the tar (the diffID)
//     -> compressor (oci/compress.h), told where each tar entry starts so
//        that gzip members end at content-defined entry boundaries
//        (oci/tar_chunker.h)
//     -> BlobWriter (sha256 of the compressed bytes = the blob digest)
//
// gzip commits use the store's chunk cache (oci/chunk_cache.h): a chunk
// whose member is in the table of a recent layer is copied from that blob
// instead of deflated; the blob is the same bytes either way. The table of
// the new blob is written after its commit.
//
// Entries carry: type (file, dir, symlink, hardlink, fifo, char/block device),
// mode with setuid/setgid/sticky, numeric uid/gid (no user or group names),
// mtime in whole seconds (clamped to SOURCE_DATE_EPOCH when given), xattrs
// (security.capability included; trusted.overlay.* never). No atime/ctime.
// Files with several links are written once and then as hardlinks to the
// first path, tracked by (dev, inode) within the layer. The root directory
// itself is not an entry. Sizes are never held in memory: memory stays flat
// (the compressor's blocks plus one read buffer) whatever the layer size.
//
// With `overlay_upper`, the directory is an overlayfs upper dir: char devices
// 0/0 become `.wh.NAME` and an opaque directory gets `.wh..wh..opq` as its
// first child (oci/whiteout.h).
//
// Thread-safety: functions are reentrant; the compressor uses its own threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "oci/byte_stream.h"
#include "oci/compress.h"
#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

struct TarOptions {
  // Every mtime later than this (unix seconds) is written as this. The caller
  // reads $SOURCE_DATE_EPOCH; the library never looks at the environment.
  std::optional<int64_t> source_date_epoch = std::nullopt;
  // Convert overlayfs whiteouts (see above).
  bool overlay_upper = false;
  // A single-id mapping (a build without root): files owned by this uid/gid
  // are written as owned by root (0), as the container sees them.
  std::optional<uint32_t> root_uid = std::nullopt;
  std::optional<uint32_t> root_gid = std::nullopt;
};

struct LayerWriterOptions {
  CompressOptions compress;
  TarOptions tar;
};

// What a committed layer is: its blob (media type by compression) and the
// digest of its uncompressed tar; for gzip, what became of its chunks.
struct LayerInfo {
  Descriptor descriptor;
  Digest diff_id;
  int64_t uncompressed_size = 0;
  ChunkStats chunks;
};

// Writes the tar of `dir`'s contents to `out`, ending with the end-of-archive
// blocks; does not Close() `out`. When `entries` is given, it is told the
// stream offset of each entry's header and data before they are written
// (offsets count the bytes written to `out`). NotFound if `dir` does not
// exist, Unimplemented for an overlay upper dir with redirected or metacopy
// entries, errors from `out` and `entries` as they are.
Status WriteTar(const std::filesystem::path& dir, const TarOptions& opts, ByteSink* out,
                TarEntryListener* entries = nullptr);

// Commits a layer made from `dir` into `store`. A chunk table that cannot be
// read or written only costs reuse, never the commit.
Result<LayerInfo> CommitLayer(Store& store, const std::filesystem::path& dir,
                              const LayerWriterOptions& opts);

// Commits a layer whose uncompressed tar bytes come from `tar` as they are
// (e.g. an imported tarball), recompressed with `opts`. The tar is not
// parsed: gzip members are cut every kGzipFixedChunk bytes (and reused from
// the chunk cache like CommitLayer's).
Result<LayerInfo> CommitTarStream(Store& store, ByteSource* tar, const CompressOptions& opts);

}  // namespace strata::oci
