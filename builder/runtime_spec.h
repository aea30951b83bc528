// Generation of the OCI runtime `config.json` for one RUN step.
//
// Mirrors what `docker build` (BuildKit with runc) gives a build step:
//   - namespaces: mount, pid, ipc, uts, plus network for NetworkMode::kNone
//     (only `lo` inside); the host network otherwise, as docker build's default;
//   - Docker's default capability set in bounding/effective/permitted, nothing
//     inheritable or ambient; noNewPrivileges false;
//   - /proc, /dev (tmpfs; the runtime adds the spec's default devices null,
//     zero, full, random, urandom, tty, ptmx), /dev/pts,
//     /dev/shm, /dev/mqueue, /sys read-only; docker's masked and read-only paths;
//   - /etc/hosts, /etc/resolv.conf, /etc/hostname bound read-only from files
//     the runner generates in the bundle;
//   - no linux.resources and no cgroupsPath (a builder needs no cgroups, and
//     this host's hybrid layout makes some runtimes refuse them); rlimits only
//     as given, and ClampRlimits() keeps them under the current hard limits.
// Pure functions (except ClampRlimits, which reads getrlimit); thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/util/error.h"

namespace strata::builder {

enum class NetworkMode { kHost, kNone };

// "host" / "none" -> NetworkMode; InvalidArgument otherwise.
Result<NetworkMode> ParseNetworkMode(std::string_view s);

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
  NetworkMode network = NetworkMode::kHost;
  // Generated files bound at /etc/hosts, /etc/resolv.conf, /etc/hostname.
  // Empty = not bound.
  std::filesystem::path hosts_file;
  std::filesystem::path resolv_conf_file;
  std::filesystem::path hostname_file;
  std::vector<BindMount> binds;
  std::vector<TmpfsMount> tmpfs;
  std::vector<Rlimit> rlimits;  // written as given: clamp first (ClampRlimits)
};

// Docker's default capabilities, "CAP_"-prefixed, in docker's order.
const std::vector<std::string>& DefaultCapabilities();
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

// Builds config.json. InvalidArgument if args is empty, cwd/rootfs/mount
// destinations are not absolute, or an env entry has no '='.
Result<nlohmann::json> GenerateRuntimeSpec(const RuntimeSpecOptions& options);

// Returns `limits` with soft and hard lowered to the calling process's
// current hard limit (root cannot raise hard limits in some sandboxes, and
// runtimes fail the whole start when setrlimit fails). Unknown types are
// InvalidArgument.
Result<std::vector<Rlimit>> ClampRlimits(const std::vector<Rlimit>& limits);

// /etc/hosts content for a build container: localhost entries and `hostname`.
std::string GenerateHostsFile(std::string_view hostname);

// /etc/resolv.conf for the container from the host's content. With the host
// network the host's file is used as is (loopback resolvers are reachable).
// With kNone, loopback nameservers are dropped; if none remain, Google's
// public resolvers are used, as docker does. Empty/unreadable host content is
// treated as having no nameservers.
std::string GenerateResolvConf(std::string_view host_resolv_conf, NetworkMode network);

}  // namespace strata::builder
