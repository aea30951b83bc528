#include "builder/runtime/runtime_spec.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "builder/runtime/run_network.h"
#include "builder/runtime/seccomp_profile.h"

namespace strata::builder {
namespace {

using nlohmann::json;

bool IsAbsolute(std::string_view p) { return !p.empty() && p.front() == '/'; }

json Mount(std::string_view destination, std::string_view type, std::string_view source,
           std::vector<std::string> options) {
  return json{{"destination", destination},
              {"type", type},
              {"source", source},
              {"options", std::move(options)}};
}

const std::map<std::string, int, std::less<>>& RlimitResources() {
  static const std::map<std::string, int, std::less<>> kMap = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  return kMap;
}

std::string_view EnvKey(std::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

Result<NetworkMode> ParseNetworkMode(std::string_view s) {
  if (s == "default" || s.empty()) return NetworkMode::kPrivate;
  if (s == "host") return NetworkMode::kHost;
  if (s == "none") return NetworkMode::kNone;
  return MakeError(ErrorCode::kInvalidArgument,
                   "network mode \"{}\" not supported (want default, none or host)", s);
}

std::string_view NetworkModeName(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kPrivate:
      return "default";
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kHost:
      return "host";
  }
  return "default";
}

Result<SecurityMode> ParseSecurityMode(std::string_view s) {
  if (s == "sandbox" || s.empty()) return SecurityMode::kSandbox;
  if (s == "insecure") return SecurityMode::kInsecure;
  return MakeError(ErrorCode::kInvalidArgument,
                   "security mode \"{}\" not supported (want sandbox or insecure)", s);
}

std::string_view SecurityModeName(SecurityMode mode) {
  return mode == SecurityMode::kInsecure ? "insecure" : "sandbox";
}

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> kCaps = {
      "CAP_CHOWN",       "CAP_DAC_OVERRIDE",     "CAP_FSETID",     "CAP_FOWNER",
      "CAP_MKNOD",       "CAP_SETGID",           "CAP_SETUID",     "CAP_SETFCAP",
      "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
      "CAP_AUDIT_WRITE",
  };
  return kCaps;
}

const std::vector<std::string>& AllCapabilities() {
  // In kernel order (capability.h), 0 to 40.
  static const std::vector<std::string> kCaps = {
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_DAC_READ_SEARCH",
      "CAP_FOWNER",
      "CAP_FSETID",
      "CAP_KILL",
      "CAP_SETGID",
      "CAP_SETUID",
      "CAP_SETPCAP",
      "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO",
      "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",
      "CAP_SYS_ADMIN",
      "CAP_SYS_BOOT",
      "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",
      "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",
      "CAP_LEASE",
      "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN",
      "CAP_SYSLOG",
      "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",
      "CAP_AUDIT_READ",
      "CAP_PERFMON",
      "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE",
  };
  return kCaps;
}

std::vector<std::string> BoundingCapabilities() {
  std::vector<std::string> out;
  const auto& all = AllCapabilities();
  for (size_t i = 0; i < all.size(); ++i) {
    if (::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(i), 0, 0, 0) == 1) {
      out.push_back(all[i]);
    }
  }
  return out;
}

std::vector<Rlimit> DefaultRlimits() { return {Rlimit{"RLIMIT_NOFILE", 1024, 1024}}; }

const std::vector<std::string>& DefaultMaskedPaths() {
  static const std::vector<std::string> kPaths = {
      "/proc/asound",     "/proc/acpi",        "/proc/interrupts",
      "/proc/kcore",      "/proc/keys",        "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap",
  };
  return kPaths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  static const std::vector<std::string> kPaths = {
      "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
  };
  return kPaths;
}

std::vector<std::string> WithDefaultEnv(const std::vector<std::string>& env,
                                        std::string_view home) {
  std::vector<std::string> out;
  std::map<std::string, size_t, std::less<>> index;
  for (const std::string& e : env) {
    std::string key(EnvKey(e));
    if (auto it = index.find(key); it != index.end()) {
      out[it->second] = e;
    } else {
      index.emplace(key, out.size());
      out.push_back(e);
    }
  }
  if (!index.contains("PATH")) out.push_back(fmt::format("PATH={}", kDefaultPath));
  if (!index.contains("HOME")) out.push_back(fmt::format("HOME={}", home.empty() ? "/" : home));
  return out;
}

Result<json> GenerateRuntimeSpec(const RuntimeSpecOptions& o) {
  if (o.args.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty command");
  if (!IsAbsolute(o.cwd)) {
    return MakeError(ErrorCode::kInvalidArgument, "working directory \"{}\" is not absolute",
                     o.cwd);
  }
  if (!o.rootfs.is_absolute()) {
    return MakeError(ErrorCode::kInvalidArgument, "rootfs \"{}\" is not absolute",
                     o.rootfs.string());
  }
  for (const std::string& e : o.env) {
    if (e.find('=') == std::string::npos || e.front() == '=') {
      return MakeError(ErrorCode::kInvalidArgument, "invalid environment entry \"{}\"", e);
    }
  }
  if (o.network == NetworkMode::kPrivate && !o.network_namespace.is_absolute()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the default network needs an absolute network namespace path, got \"{}\"",
                     o.network_namespace.string());
  }
  const bool insecure = o.security == SecurityMode::kInsecure;

  const std::vector<std::string>& cap_list = !insecure ? DefaultCapabilities()
                                             : o.insecure_capabilities.empty()
                                                 ? AllCapabilities()
                                                 : o.insecure_capabilities;
  json caps = cap_list;
  json user{{"uid", o.uid}, {"gid", o.gid}};
  if (!o.additional_gids.empty()) user["additionalGids"] = o.additional_gids;
  json process{
      {"terminal", false},
      {"user", std::move(user)},
      {"args", o.args},
      {"env", o.env},
      {"cwd", o.cwd},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"noNewPrivileges", !insecure},
  };
  if (!o.rlimits.empty()) {
    json limits = json::array();
    for (const Rlimit& r : o.rlimits) {
      limits.push_back({{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}});
    }
    process["rlimits"] = std::move(limits);
  }

  json mounts = json::array();
  mounts.push_back(Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  std::vector<std::string> devpts_opts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                          "mode=0620"};
  if (!o.rootless || o.tty_gid_mapped) devpts_opts.push_back("gid=5");
  mounts.push_back(Mount("/dev/pts", "devpts", "devpts", std::move(devpts_opts)));
  mounts.push_back(Mount("/dev/shm", "tmpfs", "shm",
                         {"nosuid", "noexec", "nodev", "mode=1777",
                          o.shm_size_bytes == 0 ? std::string("size=65536k")
                                                : fmt::format("size={}", o.shm_size_bytes)}));
  mounts.push_back(Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (o.rootless && o.network == NetworkMode::kHost) {
    // The host's network namespace is not ours: the kernel refuses a sysfs
    // mount, so the host's /sys is bound, read-only (as rootless runc/podman do).
    mounts.push_back(Mount("/sys", "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    mounts.push_back(Mount("/sys", "sysfs", "sysfs",
                           insecure ? std::vector<std::string>{"nosuid", "noexec", "nodev", "rw"}
                                    : std::vector<std::string>{"nosuid", "noexec", "nodev", "ro"}));
  }

  auto add_bind = [&](std::string_view dest, const std::filesystem::path& src, bool ro) {
    std::vector<std::string> opts = {"rbind", "rprivate", "nosuid", "nodev"};
    if (ro) opts.push_back("ro");
    mounts.push_back(Mount(dest, "bind", src.string(), std::move(opts)));
  };
  if (!o.hosts_file.empty()) add_bind("/etc/hosts", o.hosts_file, true);
  if (!o.resolv_conf_file.empty()) add_bind("/etc/resolv.conf", o.resolv_conf_file, true);
  if (!o.hostname_file.empty()) add_bind("/etc/hostname", o.hostname_file, true);

  for (const BindMount& b : o.binds) {
    if (!IsAbsolute(b.destination) || !b.source.is_absolute()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "bind mount {} -> {}: both paths must be absolute", b.source.string(),
                       b.destination);
    }
    std::vector<std::string> opts = {"rbind", "rprivate"};
    if (b.read_only) opts.push_back("ro");
    mounts.push_back(Mount(b.destination, "bind", b.source.string(), std::move(opts)));
  }
  for (const TmpfsMount& t : o.tmpfs) {
    if (!IsAbsolute(t.destination)) {
      return MakeError(ErrorCode::kInvalidArgument, "tmpfs mount {}: path must be absolute",
                       t.destination);
    }
    std::vector<std::string> opts = {"nosuid", "nodev", fmt::format("mode={:o}", t.mode)};
    if (t.size_bytes > 0) opts.push_back(fmt::format("size={}", t.size_bytes));
    mounts.push_back(Mount(t.destination, "tmpfs", "tmpfs", std::move(opts)));
  }

  json namespaces = json::array();
  for (const char* ns : {"pid", "ipc", "uts", "mount"}) namespaces.push_back({{"type", ns}});
  if (o.network == NetworkMode::kNone) namespaces.push_back({{"type", "network"}});
  if (o.network == NetworkMode::kPrivate) {
    namespaces.push_back({{"type", "network"}, {"path", o.network_namespace.string()}});
  }

  // No linux.devices: the runtime spec requires runtimes to create exactly
  // the minimal set (null, zero, full, random, urandom, tty, ptmx) with the
  // matching device-cgroup rules. Listing them again makes runc 1.1 drop its
  // defaults' cgroup rules, and opening /dev/null then fails with EPERM.
  json linux_section{{"namespaces", std::move(namespaces)}};
  if (!insecure) {
    linux_section["maskedPaths"] = DefaultMaskedPaths();
    linux_section["readonlyPaths"] = DefaultReadonlyPaths();
    linux_section["seccomp"] =
        DefaultSeccompProfile(cap_list, HostSeccompArch(), HostKernelVersion());
  }
  if (o.pids_limit > 0 && !o.rootless)
    linux_section["resources"] = {{"pids", {{"limit", o.pids_limit}}}};

  json spec{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", o.rootfs.string()}, {"readonly", false}}},
      {"hostname", o.hostname},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux_section)},
  };
  return spec;
}

Result<std::vector<Rlimit>> ClampRlimits(const std::vector<Rlimit>& limits) {
  std::vector<Rlimit> out;
  for (const Rlimit& r : limits) {
    auto it = RlimitResources().find(r.type);
    if (it == RlimitResources().end()) {
      return MakeError(ErrorCode::kInvalidArgument, "unknown rlimit type \"{}\"", r.type);
    }
    struct rlimit cur;
    if (::getrlimit(it->second, &cur) != 0) {
      return ErrnoError(errno, fmt::format("getrlimit {}", r.type));
    }
    Rlimit c = r;
    if (cur.rlim_max != RLIM_INFINITY) {
      c.hard = std::min<uint64_t>(c.hard, cur.rlim_max);
      c.soft = std::min<uint64_t>(c.soft, cur.rlim_max);
    }
    c.soft = std::min(c.soft, c.hard);
    out.push_back(std::move(c));
  }
  return out;
}

std::string GenerateHostsFile(std::string_view hostname, const std::vector<HostEntry>& extra) {
  std::string out = "127.0.0.1\tlocalhost";
  if (!hostname.empty() && hostname != "localhost") out += fmt::format(" {}", hostname);
  out += "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const HostEntry& e : extra) out += fmt::format("{}\t{}\n", e.ip, e.host);
  return out;
}

std::string GenerateResolvConf(std::string_view host, NetworkMode network) {
  if (network == NetworkMode::kPrivate) return NatResolvConf(host);
  if (network == NetworkMode::kHost && host.find("nameserver") != std::string_view::npos) {
    std::string out(host);
    if (!out.empty() && out.back() != '\n') out.push_back('\n');
    return out;
  }
  std::string out;
  bool have_nameserver = false;
  size_t start = 0;
  while (start < host.size()) {
    size_t end = host.find('\n', start);
    if (end == std::string_view::npos) end = host.size();
    std::string_view line = host.substr(start, end - start);
    start = end + 1;
    std::string_view trimmed = line;
    while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
      trimmed.remove_prefix(1);
    }
    if (trimmed.starts_with("nameserver")) {
      std::string_view addr = trimmed.substr(10);
      while (!addr.empty() && (addr.front() == ' ' || addr.front() == '\t')) addr.remove_prefix(1);
      bool loopback = addr.starts_with("127.") || addr.starts_with("::1");
      if (loopback) continue;
      have_nameserver = true;
    }
    out.append(line);
    out.push_back('\n');
  }
  if (!have_nameserver) out += "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
  return out;
}

}  // namespace strata::builder
