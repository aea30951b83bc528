// `build --ssh`: the SSH agents a build may use, by id (buildx's syntax):
//   --ssh default              the caller's $SSH_AUTH_SOCK as id "default"
//   --ssh ID                   the same socket under ID
//   --ssh ID=SOCKET            an agent socket
//   --ssh ID=KEY[,KEY...]      private key files: strata starts Debian's
//                              ssh-agent (openssh-client) on a socket in a
//                              private 0700 directory, ssh-adds the keys and
//                              stops the agent when the SshAgents goes (BuildKit
//                              serves key files from an in-process agent; an
//                              ssh-agent process does the same job without
//                              strata parsing private keys itself)
// The sockets are what RUN --mount=type=ssh relays (builder/engine/
// ssh_relay.h) and what git uses for ssh remotes. Key contents are never
// read by strata and never appear in a message. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "oci/util/file_util.h"

namespace strata::cli {

struct SshSpec {
  std::string id;
  std::vector<std::filesystem::path> paths;  // empty: $SSH_AUTH_SOCK
  bool operator==(const SshSpec&) const = default;
};

// Parses one --ssh value. InvalidArgument naming it for an empty id or path.
Result<SshSpec> ParseSshSpec(std::string_view flag);

class SshAgents {
 public:
  // Resolves every spec (ids must be unique): paths that are sockets are
  // used as they are, a list of regular files gets an ssh-agent of its own.
  // `auth_sock` is the caller's SSH_AUTH_SOCK (nullptr if unset).
  // InvalidArgument naming the flag for a spec without a socket or key
  // (`--ssh default` with no SSH_AUTH_SOCK, a missing file, a mix of a
  // socket and keys); FailedPrecondition when ssh-add refuses a key
  // (e.g. one with a passphrase), naming the file.
  static Result<SshAgents> Start(const std::vector<SshSpec>& specs, const char* auth_sock);

  SshAgents() = default;
  SshAgents(SshAgents&& o) noexcept
      : sockets_(std::move(o.sockets_)), pids_(std::move(o.pids_)), dirs_(std::move(o.dirs_)) {
    o.pids_.clear();
  }
  SshAgents& operator=(SshAgents&&) = delete;
  ~SshAgents();

  // id -> agent socket.
  const std::map<std::string, std::filesystem::path>& sockets() const { return sockets_; }

 private:
  std::map<std::string, std::filesystem::path> sockets_;
  std::vector<pid_t> pids_;
  std::vector<ScopedTempDir> dirs_;
};

}  // namespace strata::cli
