// OverlaySnapshotter: the Snapshotter of rootful builds, on overlayfs
// (builder/runtime/overlay_mount.h). A view is a read-only overlay of the
// lowers; an active snapshot an overlay with a fresh upper dir, whose upper
// dir (redirect_dir/metacopy/index off: a self-contained diff) is the change.
#pragma once

#include "builder/engine/snapshotter.h"

namespace strata::builder {

class OverlaySnapshotter : public Snapshotter {
 public:
  Result<std::unique_ptr<Mounted>> View(const std::vector<std::filesystem::path>& lowers,
                                        const std::filesystem::path& scratch_parent) override;
  Result<std::unique_ptr<ActiveSnapshot>> Prepare(
      const std::vector<std::filesystem::path>& lowers,
      const std::filesystem::path& scratch_parent) override;
};

}  // namespace strata::builder
