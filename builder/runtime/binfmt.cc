#include "builder/runtime/binfmt.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oci/util/file_util.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

// The one line a build's error tells the user to run.
std::string InstallHint(const std::string& arch) {
  return fmt::format(
      "run `strata binfmt --install {}` as root (it needs Debian's qemu-user-static: "
      "apt-get install qemu-user-static)",
      arch);
}

// Writes `text` to a binfmt_misc control file in one write(2), as the kernel
// requires.
Status WriteControl(const fs::path& path, std::string_view text) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(path, O_WRONLY));
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return ErrnoError(errno, fmt::format("write {}", path.string()));
  if (static_cast<size_t>(n) != text.size()) {
    return MakeError(ErrorCode::kInternal, "write {}: short write", path.string());
  }
  return OkStatus();
}

// The directory as the user knows it (a pinned one is /proc/self/fd/N).
std::string Shown(const fs::path& dir) {
  return dir.string().starts_with("/proc/self/fd/") ? std::string(kBinfmtMiscDir) : dir.string();
}

}  // namespace

// OCI (GOARCH) architecture -> qemu's name.
constexpr std::pair<std::string_view, std::string_view> kArchTable[] = {
    {"amd64", "x86_64"},       {"arm64", "aarch64"}, {"arm", "arm"},       {"386", "i386"},
    {"ppc64le", "ppc64le"},    {"ppc64", "ppc64"},   {"s390x", "s390x"},   {"riscv64", "riscv64"},
    {"mips64le", "mips64el"},  {"mips64", "mips64"}, {"mipsle", "mipsel"}, {"mips", "mips"},
    {"loong64", "loongarch64"}};

Result<std::string> QemuArch(const oci::Platform& p) {
  if (p.os != "linux") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "platform {}: strata builds linux images only (unknown os \"{}\")",
                     p.ToString(), p.os);
  }
  for (const auto& [oci_arch, qemu] : kArchTable) {
    if (p.architecture == oci_arch) return std::string(qemu);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "platform {}: unknown architecture \"{}\" (known: amd64, arm64, arm, 386, "
                   "ppc64le, ppc64, s390x, riscv64, mips64le, mips64, mipsle, mips, loong64)",
                   p.ToString(), p.architecture);
}

Result<std::string> QemuArchOfName(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    STRATA_ASSIGN_OR_RETURN(auto p, oci::Platform::Parse(name));
    return QemuArch(p);
  }
  for (const auto& [oci_arch, qemu] : kArchTable) {
    if (name == oci_arch || name == qemu) return std::string(qemu);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown architecture \"{}\" (want a platform such as linux/arm64, an "
                   "architecture such as arm64, or qemu's name such as aarch64)",
                   name);
}

std::optional<oci::Platform> PlatformOfQemuArch(std::string_view qemu_arch) {
  for (const auto& [oci_arch, qemu] : kArchTable) {
    if (qemu_arch == qemu) {
      oci::Platform p;
      p.os = "linux";
      p.architecture = std::string(oci_arch);
      return p;
    }
  }
  return std::nullopt;
}

std::vector<BinfmtHandler> ListQemuHandlers(const fs::path& binfmt_dir) {
  std::vector<BinfmtHandler> out;
  std::error_code ec;
  for (fs::directory_iterator it(binfmt_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (!n.starts_with("qemu-")) continue;
    auto text = ReadFile(it->path());
    if (!text) continue;
    auto h = ParseBinfmtHandler(n, *text);
    if (h) out.push_back(std::move(*h));
  }
  std::sort(out.begin(), out.end(),
            [](const BinfmtHandler& a, const BinfmtHandler& b) { return a.name < b.name; });
  return out;
}

bool NeedsEmulation(const oci::Platform& target, const oci::Platform& host) {
  if (target.architecture == host.architecture) return false;
  if (host.architecture == "amd64" && target.architecture == "386") return false;
  if (host.architecture == "arm64" && target.architecture == "arm" &&
      (target.variant == "v7" || target.variant == "v6" || target.variant.empty())) {
    return false;
  }
  return true;
}

Result<BinfmtHandler> ParseBinfmtHandler(std::string_view name, std::string_view text) {
  BinfmtHandler h;
  h.name = std::string(name);
  bool saw_state = false;
  size_t i = 0;
  while (i < text.size()) {
    size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(i, nl - i);
    i = nl + 1;
    if (line == "enabled" || line == "disabled") {
      h.enabled = line == "enabled";
      saw_state = true;
    } else if (line.starts_with("interpreter ")) {
      h.interpreter = std::string(line.substr(12));
    } else if (line.starts_with("flags:")) {
      std::string_view f = line.substr(6);
      while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
      h.flags = std::string(f);
    }
  }
  if (!saw_state) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "binfmt_misc/{}: not a handler's status (no enabled/disabled line)", name);
  }
  return h;
}

Result<PinnedBinfmtDir> PinBinfmtDir(const fs::path& binfmt_dir) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(binfmt_dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  PinnedBinfmtDir out;
  out.path = fmt::format("/proc/self/fd/{}", fd.get());
  out.fd = std::move(fd);
  return out;
}

bool BinfmtMounted(const fs::path& binfmt_dir) {
  std::error_code ec;
  return fs::exists(binfmt_dir / "register", ec);
}

Status CheckEmulation(const oci::Platform& target, const oci::Platform& host,
                      const fs::path& binfmt_dir) {
  STRATA_ASSIGN_OR_RETURN(std::string arch, QemuArch(target));
  if (!NeedsEmulation(target, host)) return OkStatus();
  const std::string what = fmt::format("RUN for {} on this {} host needs QEMU emulation",
                                       target.ToString(), host.ToString());
  if (!BinfmtMounted(binfmt_dir)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, but binfmt_misc is not mounted at {}: {} (it mounts binfmt_misc)", what,
                     Shown(binfmt_dir), InstallHint(arch));
  }
  // binfmt_misc as a whole can be switched off (echo 0 > status).
  if (auto status = ReadFile(binfmt_dir / "status"); status && status->starts_with("disabled")) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, but binfmt_misc is disabled as a whole: run `echo 1 > {}/status` as root",
                     what, Shown(binfmt_dir));
  }
  const std::string name = "qemu-" + arch;
  auto text = ReadFile(binfmt_dir / name);
  if (!text) {
    if (text.error().code() != ErrorCode::kNotFound) {
      return Unexpected(text.error().Wrap(what));
    }
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, and no binfmt_misc handler {} is registered: {}", what, name,
                     InstallHint(arch));
  }
  STRATA_ASSIGN_OR_RETURN(auto h, ParseBinfmtHandler(name, *text));
  if (!h.enabled) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, and the binfmt_misc handler {} is disabled: {}", what, name,
                     InstallHint(arch));
  }
  if (h.flags.find('F') == std::string::npos) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, and the binfmt_misc handler {} lacks the F flag (flags \"{}\"), so its "
                     "interpreter {} cannot be found inside the build's container: {} (it "
                     "registers it again with F)",
                     what, name, h.flags, h.interpreter, InstallHint(arch));
  }
  std::error_code ec;
  if (!fs::exists(h.interpreter, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}, and the interpreter {} of binfmt_misc handler {} does not exist: {}",
                     what, h.interpreter, name, InstallHint(arch));
  }
  return OkStatus();
}

Result<BinfmtRule> ParseBinfmtRule(std::string_view line) {
  // :name:type:offset:magic:mask:interpreter:flags — the first character is
  // the delimiter (binfmt-misc.rst).
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, "binfmt rule \"{}\": {}", line, why);
  };
  if (line.size() < 2) return bad("too short");
  const char delim = line.front();
  std::vector<std::string> fields;
  size_t i = 1;
  while (true) {
    size_t j = line.find(delim, i);
    if (j == std::string_view::npos) {
      fields.emplace_back(line.substr(i));
      break;
    }
    fields.emplace_back(line.substr(i, j - i));
    i = j + 1;
  }
  if (fields.size() != 7) return bad("want :name:type:offset:magic:mask:interpreter:flags");
  if (fields[0].empty() || fields[0].find('/') != std::string::npos) return bad("bad name");
  if (fields[1] != "M" && fields[1] != "E") return bad("type must be M or E");
  if (fields[5].empty()) return bad("no interpreter");
  for (char c : fields[6]) {
    if (std::string_view("POCF").find(c) == std::string_view::npos) {
      return bad(fmt::format("unknown flag '{}'", c));
    }
  }
  BinfmtRule r;
  r.name = fields[0];
  r.interpreter = fields[5];
  r.flags = fields[6];
  if (r.flags.find('F') == std::string::npos) r.flags += 'F';
  r.line = std::string(1, delim);
  for (size_t k = 0; k < 6; ++k) r.line += fields[k] + delim;
  r.line += r.flags;
  return r;
}

Status EnsureBinfmtMounted(const fs::path& binfmt_dir) {
  if (BinfmtMounted(binfmt_dir)) return OkStatus();
  if (::mount("binfmt_misc", binfmt_dir.c_str(), "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0) {
    int err = errno;
    return ErrnoError(err, fmt::format("mount binfmt_misc on {}", binfmt_dir.string()));
  }
  return OkStatus();
}

std::vector<std::string> AvailableQemuArches(const fs::path& conf_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(conf_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.starts_with("qemu-") && n.ends_with(".conf")) out.push_back(n.substr(5, n.size() - 10));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> InstallBinfmtHandler(const std::string& qemu_arch, const fs::path& binfmt_dir,
                                  const fs::path& conf_dir) {
  if (qemu_arch.empty() || qemu_arch.find('/') != std::string::npos ||
      qemu_arch.find("..") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "binfmt: bad architecture name \"{}\"",
                     qemu_arch);
  }
  fs::path conf = conf_dir / ("qemu-" + qemu_arch + ".conf");
  auto text = ReadFile(conf);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kNotFound,
                       "binfmt {}: no rule {} (install Debian's qemu-user-static; known here: "
                       "{})",
                       qemu_arch, conf.string(), fmt::join(AvailableQemuArches(conf_dir), " "));
    }
    return Unexpected(text.error());
  }
  // The first rule line of the file (comments and blank lines skipped).
  std::string_view rest = *text;
  std::string_view rule_line;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view l = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (l.empty() || l.front() == '#' || l.front() == ';') continue;
    rule_line = l;
    break;
  }
  auto rule = ParseBinfmtRule(rule_line);
  if (!rule) return Unexpected(rule.error().Wrap(conf.string()));
  std::error_code ec;
  if (!fs::exists(rule->interpreter, ec)) {
    return MakeError(ErrorCode::kNotFound,
                     "binfmt {}: interpreter {} (named by {}) does not exist (install Debian's "
                     "qemu-user-static)",
                     qemu_arch, rule->interpreter, conf.string());
  }
  STRATA_RETURN_IF_ERROR(EnsureBinfmtMounted(binfmt_dir));
  if (auto cur = ReadFile(binfmt_dir / rule->name)) {
    auto h = ParseBinfmtHandler(rule->name, *cur);
    if (h && h->enabled && h->flags.find('F') != std::string::npos &&
        h->interpreter == rule->interpreter) {
      return false;
    }
    // Another registration of the name (no F, another interpreter): replace.
    STRATA_RETURN_IF_ERROR(WriteControl(binfmt_dir / rule->name, "-1"));
  }
  if (auto s = WriteControl(binfmt_dir / "register", rule->line); !s) {
    return Unexpected(s.error().Wrap(fmt::format("binfmt {}: register {}", qemu_arch, rule->name)));
  }
  return true;
}

Result<bool> UninstallBinfmtHandler(const std::string& qemu_arch, const fs::path& binfmt_dir) {
  if (qemu_arch.empty() || qemu_arch.find('/') != std::string::npos ||
      qemu_arch.find("..") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "binfmt: bad architecture name \"{}\"",
                     qemu_arch);
  }
  fs::path p = binfmt_dir / ("qemu-" + qemu_arch);
  std::error_code ec;
  if (!fs::exists(p, ec)) return false;
  STRATA_RETURN_IF_ERROR(WriteControl(p, "-1"));
  return true;
}

}  // namespace strata::builder
