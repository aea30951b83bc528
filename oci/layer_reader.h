// Layer reader / applier: streams a layer blob onto a directory.
//
//   BlobReader (verifies the blob digest at EOF)
//     -> magic-byte check against the declared compression
//     -> decompressor -> sha256 (the diffID) + size limit
//     -> libarchive tar reader (tar formats only) -> entries applied to disk
//
// Safety: the target directory is a root that nothing in the layer may leave.
// Entry paths are cleaned ("./a//b" -> "a/b"); absolute paths and ".."
// components are refused. Parent directories are resolved with openat2
// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so a symlink met on the way (from
// this or a lower layer) is followed as if the target were "/" and can never
// point outside it; the final component is never followed. Hardlinks must
// name a path written earlier in the same layer. Devices are refused unless
// `allow_devices` (only for root applying a layer for RUN). trusted.overlay.*
// xattrs in a layer are dropped. The uncompressed stream stops with an error
// at `max_uncompressed_bytes` (decompression bombs).
//
// Whiteouts (oci/whiteout.h) are applied in one of two forms:
//   kFlattened: `.wh.NAME` deletes NAME, `.wh..wh..opq` deletes what the
//               directory held before this layer; no marker is left.
//   kOverlay:   the target is a fresh directory per layer (a snapshot);
//               `.wh.NAME` becomes a char device 0/0, `.wh..wh..opq` the
//               xattr trusted.overlay.opaque=y, as overlayfs expects of a
//               lowerdir.
// Per the image-spec, a whiteout only hides lower layers: paths written by
// the same layer survive it.
//
// Directory modes and mtimes are set after their contents. Errors name the
// layer and the entry path: "layer sha256:...: entry \"a/b\": ...".
// Thread-safety: reentrant; one call per target directory at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "oci/byte_stream.h"
#include "oci/compress.h"
#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

enum class ApplyForm { kFlattened, kOverlay };

struct ApplyOptions {
  ApplyForm form = ApplyForm::kFlattened;
  // Create char/block devices from the layer. Otherwise a device entry is
  // PermissionDenied.
  bool allow_devices = false;
  // chown entries to their numeric uid/gid (requires root). When false the
  // files belong to the caller, and xattrs the caller may not set
  // (trusted.*, security.*) are skipped instead of failing.
  bool preserve_owners = true;
  // Upper bound of the uncompressed tar; InvalidArgument beyond it.
  uint64_t max_uncompressed_bytes = uint64_t{64} << 30;
};

struct ApplyResult {
  Digest diff_id;  // sha256 of the uncompressed tar
  uint64_t uncompressed_size = 0;
  uint64_t entries = 0;
};

// Applies the tar stream in `compressed` (compressed with `compression`,
// which the first bytes must confirm) onto `target` (must exist). `layer_name`
// is used in error messages. Reads `compressed` to its end, so a verifying
// source (BlobReader) gets to check its digest.
// Errors: InvalidArgument for hostile or malformed entries, a magic/compression
// mismatch or the size limit; PermissionDenied for devices not allowed;
// DataLoss for corrupt data; errno-based codes for file-system failures.
Result<ApplyResult> ApplyTar(ByteSource* compressed, Compression compression,
                             const std::filesystem::path& target, const ApplyOptions& opts,
                             std::string_view layer_name);

// Applies a layer blob from `store`. Compression comes from the media type.
// `expected_diff_id` (if valid()) must match the uncompressed digest
// (DataLoss otherwise, after the layer was applied: callers unpack into a
// scratch directory they discard on error).
Result<ApplyResult> ApplyLayer(const Store& store, const Descriptor& layer,
                               const Digest& expected_diff_id, const std::filesystem::path& target,
                               const ApplyOptions& opts);

// Wraps a BlobReader as a ByteSource.
class BlobSource : public ByteSource {
 public:
  explicit BlobSource(BlobReader* reader) : reader_(reader) {}
  Result<size_t> Read(void* buf, size_t size) override { return reader_->Read(buf, size); }

 private:
  BlobReader* reader_;
};

}  // namespace strata::oci
