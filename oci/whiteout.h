// Whiteouts: how a layer says "this path from the layers below is gone".
//
// Two encodings meet here (OCI image-spec layer.md, "Whiteouts"):
//   OCI (in a layer tar)        overlayfs (in a directory on disk)
//   dir/.wh.NAME                dir/NAME as a char device 0/0
//   dir/.wh..wh..opq            dir with xattr trusted.overlay.opaque = "y"
// The writer turns an overlay upper dir into the OCI form; the applier turns
// the OCI form into deletions (flattened rootfs) or back into the overlay form
// (a snapshot usable as a lowerdir). Other names with the `.wh..wh.` prefix
// are reserved metadata (aufs) and carry no meaning for strata.
// Pure functions; thread-safe.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace strata::oci {

inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
inline constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
inline constexpr std::string_view kOverlayOpaqueXattr = "trusted.overlay.opaque";
// Every trusted.overlay.* xattr belongs to the overlay mount that wrote it; a
// layer never carries one, and the applier never takes one from a layer.
inline constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";
// The same markers of an overlay mounted with `userxattr` (rootless, in a user
// namespace: oci/util/userns.h). They are as private to the mount as the
// trusted ones: a layer never carries one either.
inline constexpr std::string_view kUserOverlayOpaqueXattr = "user.overlay.opaque";
inline constexpr std::string_view kUserOverlayXattrPrefix = "user.overlay.";

// True for an xattr of either overlay namespace (trusted.overlay.*, user.overlay.*).
bool IsOverlayXattr(std::string_view name);
// True for either opaque marker.
bool IsOverlayOpaqueXattr(std::string_view name);

enum class WhiteoutKind {
  kNone,     // an ordinary name
  kFile,     // .wh.NAME: delete NAME
  kOpaque,   // .wh..wh..opq: hide the lower contents of the directory
  kMeta,     // other .wh..wh.* names: ignored
  kInvalid,  // .wh. followed by nothing, "." or "..", or a '/'
};

struct Whiteout {
  WhiteoutKind kind = WhiteoutKind::kNone;
  std::string target;  // NAME for kFile
};

// Classifies one path component (a base name, not a path).
Whiteout ClassifyWhiteout(std::string_view base);

// The OCI whiteout entry name for a deleted NAME: ".wh.NAME".
std::string WhiteoutName(std::string_view name);

// True for overlayfs's whiteout: a character device with device number 0/0.
bool IsOverlayWhiteout(const struct stat& st);

}  // namespace strata::oci
