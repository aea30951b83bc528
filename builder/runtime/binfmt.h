// binfmt_misc handlers for running foreign-architecture binaries (RUN of a
// stage built for another platform) under QEMU user-mode emulation.
//
// A RUN for linux/arm64 on an amd64 host execs arm64 ELF files; the kernel
// hands them to the interpreter of a matching binfmt_misc handler. strata
// uses Debian's qemu-user-static handlers (/usr/lib/binfmt.d/qemu-*.conf,
// named "qemu-<qemu arch>") and requires the F (fix-binary) flag: the kernel
// then opens the interpreter when the handler is registered, so it works
// inside the container's mount namespace without bind-mounting qemu into
// the rootfs (what BuildKit and tonistiigi/binfmt rely on too).
//
// Registering is an explicit, privileged act (`strata binfmt --install`),
// never a side effect of a build: a build only checks (CheckEmulation) and
// says what to run. The binfmt_misc directory and the binfmt.d directory are
// parameters so tests use fake ones. Functions here are stateless; the
// kernel's binfmt_misc is the only shared state (writes are single lines).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {

inline constexpr std::string_view kBinfmtMiscDir = "/proc/sys/fs/binfmt_misc";
inline constexpr std::string_view kBinfmtConfDir = "/usr/lib/binfmt.d";

// QEMU's name of the architecture of `p` ("aarch64" for linux/arm64,
// "arm" for linux/arm/v7, "x86_64", "i386", "ppc64le", "s390x",
// "riscv64", "mips64el", "loongarch64"); InvalidArgument naming the platform
// for an os other than linux or an architecture strata does not know.
Result<std::string> QemuArch(const oci::Platform& p);

// The qemu arch a user names: a platform ("linux/arm64"), an OCI
// architecture ("arm64") or a qemu name ("aarch64"). InvalidArgument naming
// it when it is none of those.
Result<std::string> QemuArchOfName(std::string_view name);

// The platform a qemu arch emulates ("aarch64" -> linux/arm64); nullopt for
// names strata does not map.
std::optional<oci::Platform> PlatformOfQemuArch(std::string_view qemu_arch);

// Whether RUN for `target` on `host` needs emulation: false for the host's
// own architecture (and 386 on amd64, arm on arm64, which those CPUs run
// natively).
bool NeedsEmulation(const oci::Platform& target, const oci::Platform& host);

// One registered handler, as binfmt_misc/<name> shows it.
struct BinfmtHandler {
  std::string name;  // "qemu-aarch64"
  bool enabled = false;
  std::string interpreter;
  std::string flags;  // "OCF", "POCF" (letters after "flags: ")
};

// Parses the text of binfmt_misc/<name>. InvalidArgument if it is not a
// handler's status.
Result<BinfmtHandler> ParseBinfmtHandler(std::string_view name, std::string_view text);

// OK when RUN for `target` can run here: native, or a qemu-<arch> handler in
// `binfmt_dir` that is enabled, has the F flag and an interpreter that
// exists. Otherwise FailedPrecondition saying what is wrong (binfmt_misc not
// mounted or switched off, no handler, disabled, no F flag) and exactly what to run
// (`strata binfmt --install <arch>`, as root, with Debian's
// qemu-user-static installed).
Status CheckEmulation(const oci::Platform& target, const oci::Platform& host,
                      const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

// Every registered qemu-* handler in `binfmt_dir`, sorted by name (one that
// cannot be read or parsed is left out).
std::vector<BinfmtHandler> ListQemuHandlers(
    const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

// A handler line of a binfmt.d file (:name:type:offset:magic:mask:interp:flags).
struct BinfmtRule {
  std::string name;
  std::string line;  // as written to binfmt_misc/register, flags rewritten
  std::string interpreter;
  std::string flags;
};
// Parses `line` and makes sure its flags include F (keeping the others, as
// tonistiigi/binfmt keeps C/O/P). InvalidArgument naming the line if it is
// not a binfmt_misc rule.
Result<BinfmtRule> ParseBinfmtRule(std::string_view line);

// Mounts binfmt_misc at `binfmt_dir` unless it is mounted there already
// (its `register` file exists). PermissionDenied without root.
Status EnsureBinfmtMounted(const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

// An O_PATH descriptor of `binfmt_dir` (close-on-exec), and the path that
// reaches it through it (/proc/self/fd/N): a build opens it before it enters
// its own mount namespace and mounts a fresh /proc, where binfmt_misc is not
// mounted, so that CheckEmulation still sees the host's handlers.
struct PinnedBinfmtDir {
  UniqueFd fd;
  std::filesystem::path path;
};
Result<PinnedBinfmtDir> PinBinfmtDir(const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

// Whether binfmt_misc is mounted at `binfmt_dir` (its register file exists).
bool BinfmtMounted(const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

// The qemu arches with a rule in `conf_dir` (qemu-<arch>.conf), sorted.
std::vector<std::string> AvailableQemuArches(
    const std::filesystem::path& conf_dir = kBinfmtConfDir);

// Registers the handler for `qemu_arch` from conf_dir/qemu-<arch>.conf with
// the F flag. A handler that is already registered with F and the same
// interpreter is left alone (returns false); one without F is removed and
// registered again. NotFound naming the file (and the package to install)
// when there is no rule; the kernel's refusal as PermissionDenied/Internal.
Result<bool> InstallBinfmtHandler(const std::string& qemu_arch,
                                  const std::filesystem::path& binfmt_dir = kBinfmtMiscDir,
                                  const std::filesystem::path& conf_dir = kBinfmtConfDir);

// Removes the qemu-<arch> handler; false when none is registered.
Result<bool> UninstallBinfmtHandler(const std::string& qemu_arch,
                                    const std::filesystem::path& binfmt_dir = kBinfmtMiscDir);

}  // namespace strata::builder
