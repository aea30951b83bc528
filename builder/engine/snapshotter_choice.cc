#include "builder/engine/snapshotter_choice.h"

#include "builder/engine/native_snapshotter.h"
#include "builder/engine/overlay_snapshotter.h"
#include "oci/util/file_util.h"
#include "oci/util/userns.h"

namespace strata::builder {

Status ProbeOverlay(const std::filesystem::path& scratch_parent) {
  // Two lowers and an upper, as a RUN step mounts them: the probe must fail
  // where a step would.
  STRATA_ASSIGN_OR_RETURN(auto dir, ScopedTempDir::Create(scratch_parent, ".run-probe-"));
  for (const char* d : {"l1", "l2"}) STRATA_RETURN_IF_ERROR(MakeDirs(dir.path() / d));
  OverlaySnapshotter overlay;
  STRATA_ASSIGN_OR_RETURN(auto active,
                          overlay.Prepare({dir.path() / "l1", dir.path() / "l2"}, dir.path()));
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(active->root() / "probe", "x"));
  STRATA_ASSIGN_OR_RETURN(auto upper, active->Finish());
  std::error_code ec;
  if (!std::filesystem::is_regular_file(upper / "probe", ec)) {
    return MakeError(ErrorCode::kInternal, "overlay probe: the write did not reach the upper dir");
  }
  return OkStatus();
}

Result<SnapshotterChoice> ChooseSnapshotter(const std::filesystem::path& scratch_parent,
                                            std::string_view forced) {
  SnapshotterChoice c;
  if (forced == "native") {
    c.snapshotter = std::make_unique<NativeSnapshotter>();
    c.name = "native";
    c.reason = "STRATA_SNAPSHOTTER=native";
    return c;
  }
  if (forced == "overlay") {
    c.snapshotter = std::make_unique<OverlaySnapshotter>();
    c.name = InUserNamespace() ? "overlay (userxattr)" : "overlay";
    c.reason = "STRATA_SNAPSHOTTER=overlay";
    return c;
  }
  if (!forced.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "STRATA_SNAPSHOTTER={}: want overlay or native",
                     forced);
  }
  if (!InUserNamespace()) {
    c.snapshotter = std::make_unique<OverlaySnapshotter>();
    c.name = "overlay";
    return c;
  }
  if (auto s = ProbeOverlay(scratch_parent); !s) {
    c.snapshotter = std::make_unique<NativeSnapshotter>();
    c.name = "native";
    c.reason = "overlay refused in the user namespace: " + s.error().message();
    return c;
  }
  c.snapshotter = std::make_unique<OverlaySnapshotter>();
  c.name = "overlay (userxattr)";
  return c;
}

}  // namespace strata::builder
