#include "tools/strata/ssh_agents.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "builder/engine/ssh_relay.h"
#include "tools/strata/subprocess.h"

namespace strata::cli {
namespace fs = std::filesystem;

Result<SshSpec> ParseSshSpec(std::string_view flag) {
  SshSpec s;
  size_t eq = flag.find('=');
  s.id = std::string(flag.substr(0, eq));
  if (s.id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--ssh {}: want default, ID or ID=PATH[,PATH...]",
                     flag);
  }
  if (eq == std::string_view::npos) return s;
  std::string_view rest = flag.substr(eq + 1);
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find(',', i);
    if (j == std::string_view::npos) j = rest.size();
    std::string_view p = rest.substr(i, j - i);
    if (p.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "--ssh {}: empty path", flag);
    }
    s.paths.emplace_back(std::string(p));
    i = j + 1;
  }
  return s;
}

Result<SshAgents> SshAgents::Start(const std::vector<SshSpec>& specs, const char* auth_sock) {
  SshAgents a;
  for (const auto& spec : specs) {
    if (a.sockets_.contains(spec.id)) {
      return MakeError(ErrorCode::kInvalidArgument, "--ssh {}: id given twice", spec.id);
    }
    if (spec.paths.empty()) {
      if (auth_sock == nullptr || *auth_sock == '\0') {
        return MakeError(ErrorCode::kInvalidArgument,
                         "--ssh {}: SSH_AUTH_SOCK is not set (start an ssh-agent, or pass "
                         "--ssh {}=KEYFILE)",
                         spec.id, spec.id);
      }
      a.sockets_[spec.id] = auth_sock;
      continue;
    }
    int sockets = 0;
    for (const auto& p : spec.paths) {
      struct stat st;
      if (::stat(p.c_str(), &st) != 0) {
        return MakeError(ErrorCode::kInvalidArgument, "--ssh {}: {} does not exist", spec.id,
                         p.string());
      }
      if (S_ISSOCK(st.st_mode)) {
        ++sockets;
      } else if (!S_ISREG(st.st_mode)) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "--ssh {}: {} is neither an agent socket nor a key file", spec.id,
                         p.string());
      }
    }
    if (sockets > 0) {
      if (spec.paths.size() != 1) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "--ssh {}: give one agent socket, or key files only", spec.id);
      }
      a.sockets_[spec.id] = fs::absolute(spec.paths[0]);
      continue;
    }
    // Key files: an ssh-agent of their own on a private socket.
    STRATA_ASSIGN_OR_RETURN(auto dir,
                            ScopedTempDir::Create(fs::temp_directory_path(), "strata-agent-"));
    ::chmod(dir.path().c_str(), 0700);
    fs::path sock = dir.path() / "agent";
    a.dirs_.push_back(std::move(dir));
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
    STRATA_ASSIGN_OR_RETURN(pid_t pid, SpawnProcess({"ssh-agent", "-D", "-a", sock.string()}, env));
    a.pids_.push_back(pid);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Ready once it accepts connections (the socket file appears at bind(),
    // before listen()).
    while (!builder::ConnectUnix(sock)) {
      if (std::chrono::steady_clock::now() > deadline) {
        return MakeError(ErrorCode::kUnavailable, "--ssh {}: ssh-agent did not start", spec.id);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::vector<std::string> argv = {"ssh-add", "-q"};
    for (const auto& p : spec.paths) argv.push_back(fs::absolute(p).string());
    ProcessOptions po;
    po.env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "SSH_AUTH_SOCK=" + sock.string()};
    po.timeout = std::chrono::seconds(30);
    po.max_output = 64 << 10;
    STRATA_ASSIGN_OR_RETURN(auto added, RunProcess(argv, po));
    if (added.exit_code != 0) {
      std::string files;
      for (const auto& p : spec.paths) files += (files.empty() ? "" : ", ") + p.string();
      // ssh-add names the file and the reason; it never prints key bytes.
      std::string why = added.err;
      while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
      if (auto nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
      return MakeError(ErrorCode::kFailedPrecondition,
                       "--ssh {}: ssh-add refused {} ({}); keys with a passphrase must be added "
                       "to an agent and forwarded with --ssh {}=$SSH_AUTH_SOCK",
                       spec.id, files, why.empty() ? "no reason given" : why, spec.id);
    }
    a.sockets_[spec.id] = sock;
  }
  return a;
}

SshAgents::~SshAgents() {
  for (pid_t p : pids_) StopProcess(p);
}

}  // namespace strata::cli
