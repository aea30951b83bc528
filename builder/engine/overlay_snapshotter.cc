#include "builder/engine/overlay_snapshotter.h"

#include "builder/runtime/overlay_mount.h"
#include "oci/util/file_util.h"
#include "oci/util/userns.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

// `lowers`, or an empty directory under `dir` when there are none (overlayfs
// needs at least one lower).
Result<std::vector<fs::path>> LowersOrEmpty(const std::vector<fs::path>& lowers,
                                            const fs::path& dir) {
  if (!lowers.empty()) return lowers;
  STRATA_RETURN_IF_ERROR(MakeDirs(dir / "empty"));
  return std::vector<fs::path>{dir / "empty"};
}

class OverlayView : public Mounted {
 public:
  OverlayView(ScopedTempDir dir, OverlayMount mount)
      : dir_(std::move(dir)), mount_(std::move(mount)), root_(dir_.path() / "merged") {}
  const fs::path& root() const override { return root_; }

 private:
  ScopedTempDir dir_;   // destroyed after mount_
  OverlayMount mount_;  // NOLINT: declared after dir_ on purpose
  fs::path root_;
};

class OverlayActive : public ActiveSnapshot {
 public:
  OverlayActive(ScopedTempDir dir, OverlayMount mount)
      : dir_(std::move(dir)), mount_(std::move(mount)), root_(dir_.path() / "merged") {}
  const fs::path& root() const override { return root_; }
  Result<fs::path> Finish() override {
    STRATA_RETURN_IF_ERROR(mount_.Unmount());
    return dir_.path() / "upper";
  }

 private:
  ScopedTempDir dir_;
  OverlayMount mount_;
  fs::path root_;
};

}  // namespace

Result<std::unique_ptr<Mounted>> OverlaySnapshotter::View(const std::vector<fs::path>& lowers,
                                                          const fs::path& scratch_parent) {
  STRATA_ASSIGN_OR_RETURN(auto dir, ScopedTempDir::Create(scratch_parent, ".view-"));
  STRATA_ASSIGN_OR_RETURN(auto lower_dirs, LowersOrEmpty(lowers, dir.path()));
  STRATA_RETURN_IF_ERROR(MakeDirs(dir.path() / "merged"));
  OverlayOptions o;
  o.lower_dirs = std::move(lower_dirs);
  o.mountpoint = dir.path() / "merged";
  o.userxattr = InUserNamespace();
  STRATA_ASSIGN_OR_RETURN(auto mount, OverlayMount::Mount(o));
  return std::make_unique<OverlayView>(std::move(dir), std::move(mount));
}

Result<std::unique_ptr<ActiveSnapshot>> OverlaySnapshotter::Prepare(
    const std::vector<fs::path>& lowers, const fs::path& scratch_parent) {
  STRATA_ASSIGN_OR_RETURN(auto dir, ScopedTempDir::Create(scratch_parent, ".run-"));
  for (const char* d : {"upper", "work", "merged"})
    STRATA_RETURN_IF_ERROR(MakeDirs(dir.path() / d));
  STRATA_ASSIGN_OR_RETURN(auto lower_dirs, LowersOrEmpty(lowers, dir.path()));
  OverlayOptions o;
  o.lower_dirs = std::move(lower_dirs);
  o.upper_dir = dir.path() / "upper";
  o.work_dir = dir.path() / "work";
  o.mountpoint = dir.path() / "merged";
  o.userxattr = InUserNamespace();
  auto mount = OverlayMount::Mount(o);
  if (!mount) return Unexpected(mount.error().Wrap("mount overlay"));
  return std::make_unique<OverlayActive>(std::move(dir), std::move(*mount));
}

}  // namespace strata::builder
