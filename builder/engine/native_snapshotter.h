// NativeSnapshotter: the Snapshotter (snapshotter.h) made of plain copies —
// no mount, no privilege. The engine's hermetic tests run on it, and it is
// the fallback where overlayfs is refused.
//
//   View(lowers)     <scratch_parent>/.view-XXXXXX/merged: the lowers merged.
//                    Regular files are hard-linked to the lowers' (copied when
//                    that fails, e.g. across file systems), so a view is cheap
//                    and MUST NOT be written (the contract: read-only).
//   Prepare(lowers)  <scratch_parent>/.run-XXXXXX/merged: the lowers merged,
//                    every file copied (copy_file_range: reflinks where the
//                    file system has them). Finish() writes the difference
//                    between `merged` and the lowers into .run-XXXXXX/upper.
//
// Merging follows overlayfs's lookup exactly, per path, top-most lower first:
// a char 0/0 device (whiteout) hides the path in every lower below; a
// non-directory hides everything below; a directory merges with the
// directories below it until one is marked opaque (trusted.overlay.opaque=y,
// or user.overlay.opaque=y as unprivileged overlayfs writes it) or a lower
// has a non-directory or a whiteout there. Modes (set-id and sticky bits
// too), mtimes (nanoseconds), symlink targets, fifos and xattrs are kept
// (trusted.overlay.* and user.overlay.* never; xattrs the caller may not set
// are skipped when not preserving owners); owners are kept when
// `preserve_owners` (root), else everything belongs to the caller. Devices
// other than whiteouts need root (mknod); without it View/Prepare fail with
// PermissionDenied naming the path.
//
// Confinement: lowers are hostile trees. They are walked one directory fd at
// a time, every name opened O_NOFOLLOW|O_DIRECTORY or read with
// fstatat(AT_SYMLINK_NOFOLLOW)/readlinkat; a symlink in a lower (`etc ->
// /host/etc`) is copied as a symlink and never followed, and a directory in
// a higher lower at the same path replaces it (overlayfs does the same), so
// nothing is ever written outside the scratch dir. `merged` and `upper` are
// written only through fds of directories this class created.
//
// Finish(): the diff, in overlay-upper form (what overlayfs's upper dir
// would hold, minus copy-up noise). Per path, `merged` is compared with what
// the lowers show there:
//   - absent in merged, visible in the lowers   -> char 0/0 whiteout
//   - type, mode, owner (only when preserving owners: otherwise the merged
//     copy is the caller's by construction), mtime (ns), xattrs, symlink
//     target or device number differ         -> the entry, copied (a
//     directory that is new or replaced a non-directory is copied whole)
//   - a regular file with equal metadata is unchanged if its inode still has
//     the ctime it had when Prepare made it (any write, truncate, rename,
//     link or chmod since moves ctime, and userland cannot set it back);
//     otherwise its bytes are compared with the lower's, so a rewrite with
//     identical content and a restored mtime is still no change.
//   - a directory that stayed a directory is written only if its own
//     metadata changed or something below it is written; it then carries the
//     merged metadata. Directories are never marked opaque: a directory that
//     was emptied and re-filled (`rm -rf d && mkdir d`) gets a whiteout per
//     lower child that is gone, which means the same in every layer form, and
//     needs no trusted.* xattr — so Finish works unprivileged. (A directory
//     over a lower non-directory needs no marker: nothing below shows
//     through it.)
// An unchanged step yields an empty `upper`. Hard links made by the step
// between new files are kept in `upper`.
//
// Limits: a lower file the caller cannot read (mode 0 as non-root) fails
// Prepare with PermissionDenied; a directory the step made unreadable fails
// Finish the same way.
//
// Thread-safety: a NativeSnapshotter holds only options; it may be used from
// several threads. A Mounted/ActiveSnapshot is used by one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "builder/engine/snapshotter.h"

namespace strata::builder {

struct NativeSnapshotterOptions {
  // chown every entry to its lower's uid/gid and compare owners in Finish.
  // Requires root (CAP_CHOWN); the default is whether we are root.
  bool preserve_owners;
  // Hard-link View files to the lowers' instead of copying them.
  bool link_views = true;
  NativeSnapshotterOptions();
};

class NativeSnapshotter : public Snapshotter {
 public:
  explicit NativeSnapshotter(NativeSnapshotterOptions opts = {}) : opts_(opts) {}

  // Errors: NotFound if a lower is missing, PermissionDenied for an entry
  // the caller may not create or read, errno-based codes otherwise. Nothing
  // is left under `scratch_parent` on error.
  Result<std::unique_ptr<Mounted>> View(const std::vector<std::filesystem::path>& lowers,
                                        const std::filesystem::path& scratch_parent) override;
  Result<std::unique_ptr<ActiveSnapshot>> Prepare(
      const std::vector<std::filesystem::path>& lowers,
      const std::filesystem::path& scratch_parent) override;

 private:
  NativeSnapshotterOptions opts_;
};

}  // namespace strata::builder
