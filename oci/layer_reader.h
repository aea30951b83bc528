// Layer reader / applier: streams a layer blob onto a directory.
//
//   BlobReader (verifies the blob digest at EOF)
//     -> magic-byte check against the declared compression
//     -> decompressor -> sha256 (the diffID) + size limit
//     -> libarchive tar reader (tar formats only) -> entries applied to disk
//
// Safety: the target directory is a root that nothing in the layer may leave.
// Entry paths are cleaned ("./a//b" -> "a/b"); absolute paths and ".."
// components are refused. Parent directories are resolved inside the root,
// one component at a time (openat with O_NOFOLLOW): a symlink met on the way
// (from this or a lower layer) is followed as if the root were "/", so it can
// never point outside it, and directories missing at its in-root target are
// created there (`a -> /b/c` then `a/f` writes b/c/f, as containerd and moby
// do). The final component is never followed: every operation on an entry
// (create, chown, chmod, xattrs, times, unlink, whiteout removal) is an f*()
// call on an fd opened O_NOFOLLOW (files, directories) or an *at() call on
// the resolved parent's fd with AT_SYMLINK_NOFOLLOW (symlinks, fifos and
// devices, which are never opened). A hardlink names a path inside the root
// ("/x" and "x" are the same path; ".." is refused); its target must exist
// and must not be a directory. Devices are refused unless `allow_devices`
// (only for root applying a layer for RUN). trusted.overlay.* xattrs in a
// layer are dropped. The uncompressed stream stops with an error as soon as
// it passes `max_uncompressed_bytes` (decompression bombs).
//
// Failure leaves no partial layer behind: when applying into an empty
// directory, everything written is removed and the directory is empty again.
// Onto an existing tree, every path the layer created or replaced (including
// the file being written when the error struck, e.g. ENOSPC) is removed;
// what its whiteouts deleted or its entries replaced stays deleted, and
// directories it merged into keep the owner, xattrs and opaque marker it gave
// them. Callers that need the tree unchanged apply into a scratch directory
// (snapshots do).
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
// layer and the entry path: "layer sha256:...: entry \"a/b\": ...". A stream
// that cannot be read (decompression or tar framing fails, an entry has no
// name, the digest does not match) is reported as "layer NAME is corrupt:
// <reason>", with "digest mismatch: expected X, got Y" when the blob's bytes
// do not hash to its name.
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
#include "oci/util/strings.h"

namespace strata::oci {

enum class ApplyForm { kFlattened, kOverlay };

// Default bound of one uncompressed layer (ApplyOptions, UnpackOptions,
// SnapshotOptions); the CLI sets it with --max-layer-size or
// STRATA_MAX_LAYER_SIZE.
inline constexpr uint64_t kDefaultMaxLayerBytes = uint64_t{64} << 30;

// Byte sizes for the limit (oci/util/strings.h).
using strata::FormatByteSize;
using strata::ParseByteSize;

struct ApplyOptions {
  ApplyForm form = ApplyForm::kFlattened;
  // Create char/block devices from the layer. Otherwise a device entry is
  // PermissionDenied.
  bool allow_devices = false;
  // Leave device entries out instead (and say nothing): a rootless build's
  // snapshots, where mknod needs a privilege no user namespace has. As moby
  // and containers/storage do in a user namespace; the layer itself keeps
  // them, and RUN gets its /dev from the runtime anyway.
  bool skip_devices = false;
  // kOverlay: the xattr that marks an opaque directory, as the overlay mount
  // that uses the snapshot reads it (user.overlay.opaque under `userxattr`,
  // rootless: oci/util/userns.h).
  std::string_view opaque_xattr = "trusted.overlay.opaque";
  // chown entries to their numeric uid/gid (requires root). When false the
  // files belong to the caller, and xattrs the caller may not set
  // (trusted.*, security.*) are skipped instead of failing.
  bool preserve_owners = true;
  // Upper bound of the uncompressed tar, checked as it streams;
  // InvalidArgument (naming the limit and the layer) beyond it.
  uint64_t max_uncompressed_bytes = kDefaultMaxLayerBytes;
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
// On error the target is restored as described at the top of this file.
// Errors: InvalidArgument for hostile or malformed entries, a magic/compression
// mismatch or the size limit; PermissionDenied for devices not allowed;
// DataLoss for corrupt data; errno-based codes for file-system failures
// (ENOSPC is Unavailable).
Result<ApplyResult> ApplyTar(ByteSource* compressed, Compression compression,
                             const std::filesystem::path& target, const ApplyOptions& opts,
                             std::string_view layer_name);

// Applies a layer blob from `store`. Compression comes from the media type.
// `expected_diff_id` (if valid()) must match the uncompressed digest
// (DataLoss otherwise; the applied layer is rolled back like any failure).
// When the stream fails, the blob is re-hashed to tell a corrupt blob
// (DataLoss, "layer sha256:... is corrupt: digest mismatch: expected X, got
// Y") from a well-formed blob holding a bad layer.
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
