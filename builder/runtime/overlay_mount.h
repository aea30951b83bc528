// OverlayMount: an overlayfs mount owned by an object; unmounted when the
// object is destroyed (plain umount, retried while busy, lazy MNT_DETACH as a
// last resort). Move-only.
//
// Layers are given top-most first, as the kernel orders `lowerdir=`. The
// mount is made with the new mount API (fsopen/fsconfig/fsmount/move_mount)
// and one `lowerdir+` parameter per layer, so the number of layers is not
// limited by mount(2)'s one-page option string (kernel >= 6.8). On older
// kernels it falls back to a classic mount(2) option string, which fails with
// InvalidArgument when it would exceed a page or a path contains ':' or ','.
//
// redirect_dir, metacopy and index are forced off so that the upper dir is a
// self-contained diff (whiteouts are char 0/0 devices, opaque dirs carry
// trusted.overlay.opaque) that the layer writer can read without the lowers.
//
// Without an upper dir the mount is read-only. A single lower and no upper is
// a read-only view: overlayfs refuses it, so it is a read-only bind mount.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

struct OverlayOptions {
  std::vector<std::filesystem::path> lower_dirs;  // top-most first; at least one
  std::filesystem::path upper_dir;                // empty = read-only mount
  std::filesystem::path work_dir;                 // required with upper_dir, same fs
  std::filesystem::path mountpoint;               // existing directory
  // Mount option `userxattr`: whiteout/opaque markers in user.overlay.*
  // (required for an unprivileged mount in a user namespace: rootless).
  bool userxattr = false;
};

class OverlayMount {
 public:
  // Mounts per `options`. InvalidArgument for missing/relative paths;
  // errno-derived codes when the kernel refuses.
  static Result<OverlayMount> Mount(const OverlayOptions& options);

  OverlayMount() = default;
  OverlayMount(OverlayMount&& o) noexcept;
  OverlayMount& operator=(OverlayMount&& o) noexcept;
  OverlayMount(const OverlayMount&) = delete;
  OverlayMount& operator=(const OverlayMount&) = delete;
  ~OverlayMount();

  // Unmounts now. Lazy-detaches if still busy after retries (and reports
  // that as an error, though the mount is gone from the namespace). OK if not
  // mounted.
  Status Unmount();

  bool mounted() const { return !mountpoint_.empty(); }
  const std::filesystem::path& mountpoint() const { return mountpoint_; }

 private:
  explicit OverlayMount(std::filesystem::path mountpoint) : mountpoint_(std::move(mountpoint)) {}
  std::filesystem::path mountpoint_;
};

// The classic mount(2) option string for `options` (exposed for tests).
// InvalidArgument if a path contains ':' or ',' or the string would be longer
// than a page minus one byte.
Result<std::string> OverlayMountData(const OverlayOptions& options);

}  // namespace strata::builder
