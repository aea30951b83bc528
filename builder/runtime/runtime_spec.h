// Generation of the OCI runtime `config.json` for one RUN step.
//
// Mirrors what `docker build` (BuildKit with runc) gives a build step:
//   - namespaces: mount, pid, ipc, uts, and network: a new one with only `lo`
//     for NetworkMode::kNone, the private NAT namespace at
//     `network_namespace` for NetworkMode::kPrivate (the default, see
//     run_network.h), the host's for NetworkMode::kHost;
//   - SecurityMode::kSandbox (the default): Docker's default capabilities
//     without CAP_NET_RAW in bounding/effective/permitted, nothing
//     inheritable or ambient; noNewPrivileges true (as BuildKit's build
//     containers, from containerd's default spec); Docker's default seccomp
//     profile (seccomp_profile.h); docker's masked and read-only paths;
//     /sys read-only;
//   - SecurityMode::kInsecure (`RUN --security=insecure`, BuildKit's
//     semantics): every capability, no seccomp filter, no masked or
//     read-only paths, /sys read-write, noNewPrivileges false;
//   - /proc, /dev (tmpfs; the runtime adds the spec's default devices null,
//     zero, full, random, urandom, tty, ptmx), /dev/pts,
//     /dev/shm, /dev/mqueue, /sys;
//   - /etc/hosts, /etc/resolv.conf, /etc/hostname bound read-only from files
//     the runner generates in the bundle;
//   - no cgroupsPath and no cgroup namespace; `linux.resources` holds only
//     `pids.limit` when pids_limit > 0 (runc puts every container in a cgroup
//     of its own anyway, and the pids controller is the only way to bound
//     the number of processes of uid 0: the kernel exempts root from
//     RLIMIT_NPROC); rlimits only as given, and ClampRlimits() keeps them
//     under the current hard limits.
// Pure functions (except ClampRlimits, which reads getrlimit, and the
// seccomp profile's host architecture/kernel lookup); thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/util/error.h"

namespace strata::builder {

// kPrivate: a private namespace with outbound access through a user-space
// NAT (the default); kNone: only `lo`; kHost: the host's network namespace
// (needs the network.host entitlement).
enum class NetworkMode { kPrivate, kNone, kHost };

// "default" (or "") -> kPrivate, "none" -> kNone, "host" -> kHost;
// InvalidArgument otherwise.
Result<NetworkMode> ParseNetworkMode(std::string_view s);
// "default", "none", "host": also the value in RUN cache keys.
std::string_view NetworkModeName(NetworkMode mode);

// kSandbox: the confined default; kInsecure: `RUN --security=insecure`
// (needs the security.insecure entitlement).
enum class SecurityMode { kSandbox, kInsecure };

// "sandbox" (or "") -> kSandbox, "insecure" -> kInsecure; InvalidArgument
// otherwise.
Result<SecurityMode> ParseSecurityMode(std::string_view s);
std::string_view SecurityModeName(SecurityMode mode);

// A host path bound into the container.
struct BindMount {
  std::filesystem::path source;  // absolute host path
  std::string destination;       // absolute path inside the container
  bool read_only = true;
  bool operator==(const BindMount&) const = default;
};

// A fresh tmpfs inside the container (RUN --mount=type=tmpfs).
struct TmpfsMount {
  std::string destination;  // absolute path inside the container
  uint64_t size_bytes = 0;  // 0 = kernel default (half of RAM)
  uint32_t mode = 01777;
  bool operator==(const TmpfsMount&) const = default;
};

// One POSIX rlimit; `type` is the OCI name, e.g. "RLIMIT_NOFILE".
struct Rlimit {
  std::string type;
  uint64_t soft = 0;
  uint64_t hard = 0;
  bool operator==(const Rlimit&) const = default;
};

// One extra /etc/hosts line (`--add-host HOST:IP`); `ip` is a valid IPv4 or
// IPv6 address (the CLI checks it).
struct HostEntry {
  std::string host;
  std::string ip;
  bool operator==(const HostEntry&) const = default;
};

// Everything config.json depends on, already resolved (numeric user, files).
struct RuntimeSpecOptions {
  std::vector<std::string> args;  // argv; args[0] resolved by the runtime via PATH in env
  std::vector<std::string> env;   // KEY=VALUE, used as given
  std::string cwd = "/";          // absolute
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::filesystem::path rootfs;  // absolute; the mounted overlay
  std::string hostname = "strata";
  NetworkMode network = NetworkMode::kPrivate;
  // kPrivate: the bind-mounted namespace file the container joins. Required
  // (absolute) with kPrivate, ignored otherwise.
  std::filesystem::path network_namespace;
  SecurityMode security = SecurityMode::kSandbox;
  // kInsecure's capability set; empty = AllCapabilities(). The runner passes
  // BoundingCapabilities(): a runtime cannot grant what strata lacks.
  std::vector<std::string> insecure_capabilities;
  // linux.resources.pids.limit; 0 = none.
  int64_t pids_limit = 0;
  // Generated files bound at /etc/hosts, /etc/resolv.conf, /etc/hostname.
  // Empty = not bound.
  std::filesystem::path hosts_file;
  std::filesystem::path resolv_conf_file;
  std::filesystem::path hostname_file;
  std::vector<BindMount> binds;
  std::vector<TmpfsMount> tmpfs;
  std::vector<Rlimit> rlimits;  // written as given: clamp first (ClampRlimits)
  // Size of the /dev/shm tmpfs; 0 = docker's default, 64 MiB.
  uint64_t shm_size_bytes = 0;
  // Rootless (strata runs in a user namespace, builder/runtime/rootless.h):
  // runc has no cgroups there (pids_limit is left out), sysfs can be mounted
  // only in a network namespace of our own (host network: /sys is bound
  // read-only instead), and devpts gets gid=5 only when `tty_gid_mapped`.
  bool rootless = false;
  bool tty_gid_mapped = true;
};

// Docker's default capabilities without CAP_NET_RAW (no raw or packet
// sockets in a build), "CAP_"-prefixed, in docker's order.
const std::vector<std::string>& DefaultCapabilities();
// Every capability up to CAP_CHECKPOINT_RESTORE (for --security=insecure).
const std::vector<std::string>& AllCapabilities();
// The AllCapabilities() entries in the calling process's bounding set
// (prctl PR_CAPBSET_READ).
std::vector<std::string> BoundingCapabilities();
// Docker's masked and read-only paths.
const std::vector<std::string>& DefaultMaskedPaths();
const std::vector<std::string>& DefaultReadonlyPaths();

// The default PATH docker gives a process whose env has none.
inline constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Returns `env` with PATH=kDefaultPath and HOME=`home` appended when they are
// not set, as docker does for RUN. Later duplicates of a key win in `env`;
// the result keeps one entry per key, in first-seen order.
std::vector<std::string> WithDefaultEnv(const std::vector<std::string>& env, std::string_view home);

// Docker's defaults applied to every RUN step: RLIMIT_NOFILE 1024:1024 (the
// default of containerd's spec, which BuildKit uses). Clamp before use.
std::vector<Rlimit> DefaultRlimits();
// The default pids limit of a RUN step (a fork bomb stops there).
inline constexpr int64_t kDefaultPidsLimit = 16384;

// Builds config.json. InvalidArgument if args is empty, cwd/rootfs/mount
// destinations are not absolute, an env entry has no '=', or kPrivate comes
// without an absolute network_namespace.
Result<nlohmann::json> GenerateRuntimeSpec(const RuntimeSpecOptions& options);

// Returns `limits` with soft and hard lowered to the calling process's
// current hard limit (root cannot raise hard limits in some sandboxes, and
// runtimes fail the whole start when setrlimit fails). Unknown types are
// InvalidArgument.
Result<std::vector<Rlimit>> ClampRlimits(const std::vector<Rlimit>& limits);

// /etc/hosts content for a build container: localhost entries and
// `hostname`, then each of `extra` as "IP\tHOST" (docker's --add-host).
std::string GenerateHostsFile(std::string_view hostname, const std::vector<HostEntry>& extra = {});

// /etc/resolv.conf for the container from the host's content. With the host
// network the host's file is used as is (loopback resolvers are reachable).
// With kPrivate every nameserver is replaced by the NAT's DNS forwarder
// (NatResolvConf in run_network.h). With kNone, loopback nameservers are
// dropped; if none remain, Google's public resolvers are used, as docker
// does. Empty/unreadable host content is treated as having no nameservers.
std::string GenerateResolvConf(std::string_view host_resolv_conf, NetworkMode network);

}  // namespace strata::builder
