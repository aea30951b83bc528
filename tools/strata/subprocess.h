// Running a helper program (git, ssh-agent, ssh-add) to completion, bounded:
// posix_spawn (safe from a process with threads) with an explicit, complete
// environment (nothing of strata's own is inherited), stdin from /dev/null,
// stdout and stderr captured up to a size, and a deadline after which the
// helper's whole process group is killed. Arguments are never secret (ps
// shows them): secrets go through `env` only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "oci/util/error.h"

namespace strata::cli {

struct ProcessResult {
  int exit_code = 0;  // 128+N when killed by signal N
  std::string out;    // at most ProcessOptions::max_output bytes each
  std::string err;
};

struct ProcessOptions {
  std::vector<std::string> env;  // KEY=VALUE, the whole environment
  std::filesystem::path cwd;     // empty = strata's
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  size_t max_output = 4 << 20;
};

// Runs argv[0] (an absolute path, or found on the PATH of `opts.env`) to its
// end. A non-zero exit is a value. Unavailable when the timeout passed
// (the process group was killed); errno errors when it could not start.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const ProcessOptions& opts);

// Starts argv in the background, in its own process group, stdin/stdout/
// stderr on /dev/null. The pid, for StopProcess.
Result<pid_t> SpawnProcess(const std::vector<std::string>& argv,
                           const std::vector<std::string>& env);

// SIGTERM to `pid`'s group, then SIGKILL after `grace`, and reaps it.
void StopProcess(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds(2));

}  // namespace strata::cli
