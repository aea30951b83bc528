// Docker's default seccomp profile, as the project's own table, rendered into
// the OCI runtime spec's `linux.seccomp` for the runtime (runc) to load.
//
// Semantics follow moby's profiles/seccomp/default.json and the way dockerd
// resolves it for one container:
//   - default action SCMP_ACT_ERRNO with errno EPERM (1): every syscall not
//     listed fails with EPERM;
//   - an allow-list of syscall names, plus argument-filtered rules: personality
//     only with the few personas docker allows, clone only without namespace
//     flags (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP) unless
//     CAP_SYS_ADMIN is held, clone3 answered with ENOSYS so libc falls back to
//     clone, socket allowed for every family except AF_VSOCK (40);
//   - rules that apply only on some architectures (`arches`) or only with some
//     capabilities in the bounding set (`caps`), or are dropped by
//     `excludes`; a rule needing a newer kernel (minKernel) is left out on
//     older kernels;
//   - `architectures`: the native architecture plus its compat
//     sub-architectures (x86_64 -> x86 and x32, aarch64 -> arm, ...).
// Syscall names the kernel/libseccomp does not know on an architecture are
// skipped by runc, as with docker.
//
// Pure functions (HostSeccompArch/HostKernelVersion read uname); thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace strata::builder {

// A kernel version, compared (major, minor).
struct KernelVersion {
  int major = 0;
  int minor = 0;
  auto operator<=>(const KernelVersion&) const = default;
};

// The Go-style name of the host architecture docker's profile uses in
// `arches` ("amd64", "arm64", "s390x", "ppc64le", "riscv64", "arm", "386"),
// derived from uname(2)'s machine. Unknown machines are returned as is.
std::string HostSeccompArch();

// The running kernel's version from uname(2); {0, 0} if it cannot be parsed.
KernelVersion HostKernelVersion();

// Docker's default profile resolved for a process whose bounding set is
// `capabilities` ("CAP_"-prefixed) on architecture `arch` (HostSeccompArch()
// form) and kernel `kernel`: the JSON object for config.json's
// `linux.seccomp`.
nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& capabilities,
                                     std::string_view arch, KernelVersion kernel);

}  // namespace strata::builder
