// User namespaces: whether this process runs in one other than the initial
// namespace (a rootless build re-executes strata inside one, see
// builder/runtime/rootless.h), and what that changes for file systems.
//
// Inside a user namespace "root" owns only the ids mapped to it: a chown to
// an unmapped id fails with EINVAL, and trusted.* xattrs (CAP_SYS_ADMIN in
// the initial namespace) cannot be set, so overlayfs is mounted with
// `userxattr` and reads its opaque markers from user.overlay.* instead of
// trusted.overlay.* (overlayfs.rst, "Permission model"). Every snapshot a
// store holds is written by the same kind of process (a rootless store is
// the user's own), so the choice follows the process.
//
// Pure functions over /proc/self/uid_map; the parse is exposed for tests.
// Thread-safe (the map is read once).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include "oci/util/error.h"

namespace strata {

// True if `uid_map` (the text of /proc/PID/uid_map) is the initial
// namespace's identity map "0 0 4294967295".
bool IsInitialUidMap(std::string_view uid_map);

// True if `id` is inside one of the ranges of `id_map` (the text of
// /proc/PID/uid_map or gid_map: "INSIDE OUTSIDE COUNT" per line).
bool IdInMap(std::string_view id_map, uint32_t id);
// IdInMap over this process's /proc/self/gid_map.
bool GidMappedInProcess(uint32_t gid);

// True if this process runs in a user namespace other than the initial one
// (read once from /proc/self/uid_map; unreadable counts as initial).
bool InUserNamespace();

// The overlay xattr prefix this process's mounts use and its snapshots
// carry: "trusted.overlay." in the initial user namespace, "user.overlay."
// (mount option userxattr) in another.
std::string_view OverlayXattrPrefixForProcess();
// The opaque-directory marker that goes with it (PREFIX + "opaque").
std::string_view OverlayOpaqueXattrForProcess();

// The error for a chown of `what` to uid:gid that failed with `err`. In a
// user namespace EINVAL means an id that is not mapped: the message then
// names /etc/subuid and /etc/subgid, where a rootless user gets the range
// that maps it. Otherwise an ordinary errno error.
std::unexpected<Error> ChownError(int err, std::string_view what, uid_t uid, gid_t gid);

}  // namespace strata
