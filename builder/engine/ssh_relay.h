// SshRelay: the socket a RUN --mount=type=ssh sees. A new unix socket (owned
// by the mount's uid/gid, with its mode) whose every connection is relayed,
// byte for byte in both directions, to an upstream SSH agent socket (the
// user's SSH_AUTH_SOCK or the agent the CLI started for key files). The
// user's own socket is never bound into a container nor re-owned; the relay
// lives for one RUN and nothing of what passes through it is stored.
//
// Bounded: at most kMaxConnections relayed at once (more wait in the listen
// backlog), every blocking call polls a stop descriptor, and the destructor
// stops and joins every thread. Thread-safe by construction (no public
// mutators).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {

class SshRelay {
 public:
  static constexpr int kMaxConnections = 16;

  // Listens on `socket_path` (must not exist; its directory must) and relays
  // to `upstream`. InvalidArgument for a path too long for a unix socket;
  // errno errors for the socket calls. The upstream is only connected to
  // when a client connects (a dead agent fails that client, not the RUN).
  static Result<std::unique_ptr<SshRelay>> Start(const std::filesystem::path& socket_path,
                                                 const std::filesystem::path& upstream, uid_t uid,
                                                 gid_t gid, mode_t mode);
  ~SshRelay();
  SshRelay(const SshRelay&) = delete;
  SshRelay& operator=(const SshRelay&) = delete;

  // Connections relayed so far (tests).
  int connections() const { return connections_.load(); }

 private:
  SshRelay(UniqueFd listen, UniqueFd stop, std::filesystem::path upstream)
      : listen_(std::move(listen)), stop_(std::move(stop)), upstream_(std::move(upstream)) {}
  void AcceptLoop();
  void Pump(UniqueFd client, std::atomic<bool>& done);

  UniqueFd listen_;
  UniqueFd stop_;  // an eventfd: readable once the relay stops
  std::filesystem::path upstream_;
  std::thread acceptor_;
  std::mutex mu_;
  struct PumpThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<PumpThread> pumps_;  // finished ones are joined as new ones start
  std::atomic<int> active_{0};
  std::atomic<int> connections_{0};
};

// Connects a new unix stream socket to `path`. errno errors.
Result<UniqueFd> ConnectUnix(const std::filesystem::path& path);

}  // namespace strata::builder
