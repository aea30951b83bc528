// Rootless builds: an unprivileged user runs `strata build` inside a user
// namespace of its own, as buildah's `unshare` and rootless podman do.
//
// When a verb that writes file systems (build) starts with geteuid() != 0,
// strata re-executes itself in a new user + mount namespace:
//
//   parent (the user, outside)             child (forked)
//   ──────────────────────────             ──────────────
//                                          unshare(CLONE_NEWUSER|CLONE_NEWNS)
//   reads "ready"                  <────   writes "ready"
//   newuidmap PID 0 UID 1 1 S N            (waits)
//   newgidmap PID 0 GID 1 1 S N
//     (or, without subordinate ranges, the child maps 0 → its own id
//      itself: uid_map "0 UID 1", setgroups "deny", gid_map "0 GID 1")
//   writes "go"                    ───>    execv(/proc/self/exe, argv) with
//   waits, forwards SIGINT/TERM/HUP,       _STRATA_ROOTLESS_CHILD=<parent pid>
//   exits with the child's status          and STRATA_ROOT = the user's store
//
// Inside, strata is uid 0 with every capability of its namespace: the store,
// layers, overlay mounts (userxattr) and runc run as for root, runc in
// rootless mode (it detects the user namespace), and files keep the ids the
// container sees (root is 0 in a layer tar, not the user's uid). No setuid
// helper of our own: only Debian's newuidmap/newgidmap (package uidmap),
// which check /etc/subuid and /etc/subgid.
//
// PlanRootless checks the prerequisites first and says, in one line each,
// what is missing and how to fix it: user namespaces disabled
// (user.max_user_namespaces = 0, kernel.unprivileged_userns_clone = 0), no
// newuidmap/newgidmap where the user has subordinate ranges. Without ranges
// the build runs with the single mapping 0 → user: Dockerfiles whose files
// are all root-owned build; a chown to another id fails naming /etc/subuid
// (oci/util/userns.h ChownError).
//
// REQUIRES (RunInRootlessNamespace): a single-threaded process (it forks and
// the child unshares a user namespace, which the kernel refuses to a
// multi-threaded process).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

// Set in the re-executed child's environment (to the parent's pid) so that
// it does not re-execute again.
inline constexpr char kRootlessChildEnv[] = "_STRATA_ROOTLESS_CHILD";

// One subordinate range of /etc/subuid or /etc/subgid.
struct SubIdRange {
  uint32_t start = 0;
  uint32_t count = 0;
  bool operator==(const SubIdRange&) const = default;
};

// The ranges of `user` (by name, or by its decimal `id` as shadow also
// accepts) in the text of /etc/subuid or /etc/subgid ("NAME:START:COUNT" per
// line). Comments, blank and malformed lines and zero counts are skipped.
std::vector<SubIdRange> ParseSubIds(std::string_view text, std::string_view user, uint32_t id);

// One line of /proc/PID/uid_map: `count` ids from `inside` map to `outside`.
struct IdMapping {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
  bool operator==(const IdMapping&) const = default;
};

// 0 → `id`, then the ranges one after another from 1. The kernel takes at
// most 340 lines; ranges beyond that are left out.
std::vector<IdMapping> RootlessIdMap(uint32_t id, const std::vector<SubIdRange>& ranges);

// What the host offers, read by ReadRootlessHost (fields are injectable for
// tests). A missing file is nullopt.
struct RootlessHost {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;                                      // the login name of uid ("" if unknown)
  std::optional<std::string> max_user_namespaces;        // /proc/sys/user/max_user_namespaces
  std::optional<std::string> unprivileged_userns_clone;  // /proc/sys/kernel/... (Debian)
  std::optional<std::string> subuid;                     // /etc/subuid
  std::optional<std::string> subgid;                     // /etc/subgid
  std::string path_env;                                  // $PATH
};
RootlessHost ReadRootlessHost();

struct RootlessPlan {
  std::vector<IdMapping> uid_map;
  std::vector<IdMapping> gid_map;
  // No subordinate ranges: only 0 → the user, written by the child itself.
  bool single_id = false;
  std::filesystem::path newuidmap;  // empty when single_id
  std::filesystem::path newgidmap;
};

// The plan for `host`, or FailedPrecondition with one line naming the
// missing prerequisite and its fix.
Result<RootlessPlan> PlanRootless(const RootlessHost& host);

// A one-line description of the plan for -v ("uid map 0:1000:1 1:200000:65536, ...").
std::string DescribePlan(const RootlessPlan& plan);

// Forks the child per `plan`, which re-executes /proc/self/exe with `argv`
// and `extra_env` ("NAME=VALUE") added; waits for it. Returns its exit code
// (128+N if killed by signal N). Errors: the namespace could not be made or
// mapped (FailedPrecondition naming the cause: EPERM from unshare, the
// output of a refusing newuidmap).
Result<int> RunInRootlessNamespace(const RootlessPlan& plan, char** argv,
                                   const std::vector<std::string>& extra_env);

// The default RUN network's NAT (slirp4netns) opens `tun` inside the
// namespace. In a user namespace the device's owner (host root) is not
// mapped, so only its "other" permission bits count: Debian makes it 0666,
// some hosts 0600. FailedPrecondition naming the device, its mode and the
// ways out when this process cannot open it for reading and writing; OK
// outside a user namespace.
Status CheckRootlessTun(const std::filesystem::path& tun);

// In the re-executed child: ties its life to the parent's (PR_SET_PDEATHSIG)
// and checks the parent is still the one named by kRootlessChildEnv. True if
// this process is such a child.
bool AdoptRootlessChild();

}  // namespace strata::builder
