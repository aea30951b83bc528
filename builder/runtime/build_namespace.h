// Runs the rest of a build in a private mount namespace and a new pid
// namespace, so that nothing a build starts or mounts outlives it.
//
// EnterBuildNamespaces() works like fork(2): the calling process (the
// "keeper") unshares a pid namespace and forks; the child becomes pid 1 of
// that namespace, dies with SIGKILL when the keeper dies
// (PR_SET_PDEATHSIG), unshares its mount namespace, makes every mount in it
// private (MS_REC|MS_PRIVATE on /) and mounts a fresh /proc for the new pid
// namespace (as `unshare --pid --fork --mount-proc`, so runc reads the
// right /proc), then returns to continue the build. The keeper only waits
// and returns the child's exit status.
//
// What this buys: when strata dies, even by SIGKILL, the kernel kills every
// process of the pid namespace (runc, the container, the NAT helper), and
// the mount namespace, with every overlay and network-namespace mount the
// build made, disappears with its last process. Nothing mounted during the
// build is ever visible in the host's mount namespace. What stays on disk
// (runtime state, bundles, work dirs) is reaped by the next strata command
// (run_reaper.h).
//
// Because the child is pid 1 of its namespace, signals sent to it from
// outside without a handler (SIGINT, SIGTERM) are ignored by the kernel;
// they reach the keeper, whose death then SIGKILLs the child.
//
// REQUIRES: the calling process has a single thread (fork copies only the
// calling thread) and no open store yet (locks are per open file).
#pragma once

#include <optional>

#include "oci/util/error.h"

namespace strata::builder {

// In the keeper: the child's exit code (128+N if killed by signal N), to
// exit with. In the child: std::nullopt, continue the build. Errors (in the
// caller, nothing forked or, if forked, the child is gone): the namespace
// syscalls failed. Without CAP_SYS_ADMIN (a non-root user) it returns
// nullopt without isolation: such a process cannot run containers anyway.
Result<std::optional<int>> EnterBuildNamespaces();

}  // namespace strata::builder
