// Snapshotter: how the engine turns a chain of layer snapshots into a file
// system a step can read (a view) or change (an active snapshot), and gets
// the change back as a directory in overlay-upper form.
//
// Lowers are snapshot directories in overlay form (oci/snapshots.h: one
// layer each, whiteouts as char 0/0 devices, opaque dirs marked with
// trusted.overlay.opaque), given top-most first, as overlayfs orders them.
//
//   OverlaySnapshotter  overlayfs mounts (root): a view is a read-only
//                       overlay, an active snapshot an overlay with a fresh
//                       upper dir. The production implementation.
//   NativeSnapshotter   plain copies (no mount, no privilege): a view or an
//                       active snapshot is the lowers merged into a new
//                       directory; Finish() computes the diff against the
//                       lowers. The engine's hermetic tests run on it, and it
//                       is the fallback where overlay is refused.
//
// Both leave scratch directories only under `scratch_parent` (the store's
// snapshots dir), named so that SweepSnapshots removes what a killed
// process left (".view-", ".run-").
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

// A file system prepared by a Snapshotter. Destroying it releases it
// (unmounts, removes scratch dirs) without reporting errors.
class Mounted {
 public:
  virtual ~Mounted() = default;
  // The root of the file system (absolute).
  virtual const std::filesystem::path& root() const = 0;
};

class ActiveSnapshot : public Mounted {
 public:
  // Stops changes (unmounts) and returns the directory holding what changed
  // since Prepare, in overlay-upper form: new and changed entries as they
  // are, deleted ones as char 0/0 devices, a directory that replaced a lower
  // one's contents with trusted.overlay.opaque=y. The directory stays valid
  // until this object is destroyed, and may be moved away (AdoptSnapshot).
  // REQUIRES: called once.
  virtual Result<std::filesystem::path> Finish() = 0;
};

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;
  // A read-only file system of `lowers` (top-most first; may be empty: an
  // empty directory).
  virtual Result<std::unique_ptr<Mounted>> View(const std::vector<std::filesystem::path>& lowers,
                                                const std::filesystem::path& scratch_parent) = 0;
  // A writable file system over `lowers`, whose changes Finish() returns.
  virtual Result<std::unique_ptr<ActiveSnapshot>> Prepare(
      const std::vector<std::filesystem::path>& lowers,
      const std::filesystem::path& scratch_parent) = 0;
};

}  // namespace strata::builder
