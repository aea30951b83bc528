// ChooseSnapshotter: which Snapshotter a build uses on this machine.
//
// As root in the initial user namespace: OverlaySnapshotter (kernel
// overlayfs, trusted.overlay.* markers). In a user namespace (a rootless
// build, builder/runtime/rootless.h): a probe mounts a small overlay with
// `userxattr` under `scratch_parent`; when the kernel allows it (Linux >= 5.11
// and not refused by policy) OverlaySnapshotter again, else the copy-based
// NativeSnapshotter, which needs no mount at all. The choice and the reason
// are reported so that `-v` can say which one is in use and why.
//
// $STRATA_SNAPSHOTTER=overlay|native overrides the choice (say, to avoid
// overlay on a file system where it misbehaves, or to test the fallback).
//
// fuse-overlayfs is not used: the kernel's unprivileged overlayfs covers
// every kernel Debian 12 ships, and the copy-based fallback every other case.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "builder/engine/snapshotter.h"

namespace strata::builder {

struct SnapshotterChoice {
  std::unique_ptr<Snapshotter> snapshotter;
  std::string name;    // "overlay", "overlay (userxattr)" or "native"
  std::string reason;  // why the fallback was taken; empty otherwise
};

// `forced` (from $STRATA_SNAPSHOTTER) is "" (choose as above), "overlay" or
// "native"; anything else is InvalidArgument naming it. A refused probe is
// the fallback, not an error. Leaves nothing under `scratch_parent` (an
// existing directory).
Result<SnapshotterChoice> ChooseSnapshotter(const std::filesystem::path& scratch_parent,
                                            std::string_view forced = {});

// The probe alone: OK if an overlay with an upper dir and `userxattr` (as
// this process would mount it) can be mounted under `scratch_parent`.
Status ProbeOverlay(const std::filesystem::path& scratch_parent);

}  // namespace strata::builder
