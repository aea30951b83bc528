#include "builder/runtime/build_namespace.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "oci/util/unique_fd.h"

namespace strata::builder {
namespace {

// In the child: report and die. It has no caller to return an error to that
// the keeper would see, so it prints like main() would and exits 1.
[[noreturn]] void ChildFail(const char* step) {
  std::fprintf(stderr, "strata: build namespace: %s: %s\n", step, std::strerror(errno));
  ::_exit(1);
}

}  // namespace

Result<std::optional<int>> EnterBuildNamespaces() {
  if (::unshare(CLONE_NEWPID) != 0) {
    if (errno == EPERM && ::geteuid() != 0) return std::optional<int>();
    return ErrnoError(errno, "build namespace: unshare(CLONE_NEWPID)");
  }
  // The child learns that the keeper died before PR_SET_PDEATHSIG took
  // effect from EOF on this pipe (getppid() is 0 across pid namespaces).
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd alive_r(p[0]), alive_w(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "build namespace: fork");
  if (pid == 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail("prctl(PR_SET_PDEATHSIG)");
    alive_w.Reset();
    pollfd pf{alive_r.get(), POLLIN, 0};
    if (::poll(&pf, 1, 0) > 0 && (pf.revents & POLLHUP)) ::_exit(1);  // keeper already gone
    alive_r.Reset();
    if (::unshare(CLONE_NEWNS) != 0) ChildFail("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      ChildFail("make / private");
    }
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      ChildFail("mount /proc");
    }
    return std::optional<int>();
  }
  alive_r.Reset();
  // The keeper: wait, keeping alive_w open until the child is gone.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, "build namespace: waitpid");
  }
  if (WIFEXITED(status)) return std::optional<int>(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::optional<int>(128 + WTERMSIG(status));
  return std::optional<int>(1);
}

}  // namespace strata::builder
