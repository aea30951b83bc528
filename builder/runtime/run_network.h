// The default RUN network: a private network namespace whose only way out is
// a user-space NAT (slirp4netns), so `apt-get` works as under `docker build`
// while the host's loopback (and every host socket bound to 127.0.0.1/::1)
// stays unreachable.
//
// Why slirp4netns and not pasta (both tried on these machines): slirp4netns
// stays our child process (`--ready-fd` tells when the namespace is
// configured, `--exit-fd` makes it exit as soon as strata's end of a pipe
// closes, even when strata is SIGKILLed), blocks the host loopback with one
// flag (`--disable-host-loopback`) and forwards DNS itself at 10.0.2.3 to the
// first nameserver of the host's resolv.conf, even a loopback one (the flag
// only closes the 10.0.2.2 alias; this machine's resolver is not on loopback,
// so only the other case is exercised here). pasta needs four flags to keep
// host loopback closed (`--no-map-gw`, and `-T none -U none` since its
// default forwards every port bound on the host's loopback into the
// namespace), `--runas 0 --netns-only` to run as root here, daemonizes (a pid
// file instead of a child), and its DNS forwarder must be configured. Both
// moved the same bytes in the same time here (see docs/PERFORMANCE.md).
//
// Pieces:
//   - NatHelperArgs / NatResolvConf: pure, unit-tested;
//   - NetworkNamespace: a new network namespace (loopback up) bind-mounted
//     on a file, which config.json names as the container's namespace path;
//     unmounted and removed on destruction;
//   - NatNetwork: the slirp4netns process attached to that namespace; always
//     stopped (exit-fd closed, then SIGKILL after a bounded wait) and reaped
//     on destruction;
//   - PrivateNetwork: both, in the right order.
// All types are move-only; one object per RUN step; not thread-safe per
// object (different objects are independent).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {

// The NAT helper's executable name (looked up in PATH).
inline constexpr std::string_view kNatHelper = "slirp4netns";
// slirp4netns's built-in DNS forwarder inside the namespace.
inline constexpr std::string_view kNatDnsAddress = "10.0.2.3";
// Interface the helper creates in the namespace.
inline constexpr std::string_view kNatInterface = "tap0";

// argv for the helper: `helper --configure --mtu=65520
// --disable-host-loopback --enable-sandbox --enable-seccomp --ready-fd=R
// --exit-fd=E --netns-type=path NETNS tap0`.
std::vector<std::string> NatHelperArgs(const std::filesystem::path& helper,
                                       const std::filesystem::path& netns, int ready_fd,
                                       int exit_fd);

// /etc/resolv.conf for the private network: the host's `search`/`domain`/
// `options` lines kept, every `nameserver` replaced by the one NAT DNS
// forwarder, which forwards to the host's first nameserver (a local resolver
// such as 127.0.0.53 included: the forwarding is done by slirp4netns on the
// host side).
std::string NatResolvConf(std::string_view host_resolv_conf);

// A network namespace bind-mounted on a file.
class NetworkNamespace {
 public:
  // Creates `file` (must not exist; its directory must) and a new network
  // namespace with `lo` up, mounted on it. Errors: errno-derived codes
  // (PermissionDenied without CAP_SYS_ADMIN), naming the step.
  static Result<NetworkNamespace> Create(const std::filesystem::path& file);

  NetworkNamespace() = default;
  NetworkNamespace(NetworkNamespace&& o) noexcept;
  NetworkNamespace& operator=(NetworkNamespace&& o) noexcept;
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;
  ~NetworkNamespace();

  // Detaches the mount and removes the file. OK if already released.
  Status Release();
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit NetworkNamespace(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

struct NatNetworkOptions {
  std::filesystem::path helper;  // absolute path of slirp4netns
  std::filesystem::path netns;   // a NetworkNamespace's file
  std::filesystem::path log;     // the helper's stdout/stderr go here
  std::chrono::milliseconds start_timeout{10000};
  std::chrono::milliseconds stop_timeout{2000};
};

// The running NAT helper.
class NatNetwork {
 public:
  // Starts the helper and waits (at most start_timeout) until it reports the
  // namespace configured. Errors name the helper: Unavailable when it exits
  // or times out before being ready (the message carries its log), or the
  // spawn error.
  static Result<NatNetwork> Start(const NatNetworkOptions& options);

  NatNetwork() = default;
  NatNetwork(NatNetwork&& o) noexcept;
  NatNetwork& operator=(NatNetwork&& o) noexcept;
  NatNetwork(const NatNetwork&) = delete;
  NatNetwork& operator=(const NatNetwork&) = delete;
  ~NatNetwork();

  // Stops the helper: closes its exit fd, waits up to stop_timeout, then
  // SIGKILLs it, and reaps it. Returns within about stop_timeout + 1 s.
  // OK if not running.
  Status Stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;    // to wait with a timeout
  UniqueFd exit_fd_;  // closing it tells the helper to exit
  std::chrono::milliseconds stop_timeout_{2000};
};

// A NetworkNamespace with a NatNetwork attached: the default RUN network.
class PrivateNetwork {
 public:
  // Creates `dir`/netns and starts `helper` on it, logging to `dir`/nat.log.
  static Result<PrivateNetwork> Setup(const std::filesystem::path& dir,
                                      const std::filesystem::path& helper);
  // The namespace file for config.json.
  const std::filesystem::path& netns_path() const { return ns_.path(); }
  // The NAT helper's pid (-1 once stopped).
  pid_t nat_pid() const { return nat_.pid(); }
  // Stops the helper, then releases the namespace.
  Status Teardown();

 private:
  NetworkNamespace ns_;  // declared first: destroyed after nat_
  NatNetwork nat_;
};

}  // namespace strata::builder
