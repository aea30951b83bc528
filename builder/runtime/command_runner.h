// CommandRunner: the I/O seam through which the build engine executes a RUN
// step in a container. OciRuntimeRunner (oci_runtime_runner.h) runs it with
// runc/crun; FakeCommandRunner (fake_command_runner.h) records calls for tests
// of the engine.
//
// Output of the command reaches an OutputSink line by line (without the
// newline), tagged with the stream it came from. Sinks are called from the
// thread that called Run(), one line at a time.
#pragma once

#include <cstddef>
#include <deque>
#include <filesystem>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/runtime/runtime_spec.h"
#include "oci/util/error.h"

namespace strata::builder {

enum class OutputStream { kStdout, kStderr };

// Receives the output of a command. Implementations decide where it goes
// (progress display, JSON events, a buffer).
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // One line without its trailing '\n'. A line longer than the runner's
  // buffer (64 KiB) arrives in several pieces; a final unterminated line
  // arrives at the end of the stream.
  virtual void Line(OutputStream stream, std::string_view line) = 0;
};

// Keeps every line (for tests) — not for unbounded output in production.
class RecordingSink : public OutputSink {
 public:
  struct Entry {
    OutputStream stream;
    std::string text;
    bool operator==(const Entry&) const = default;
  };
  void Line(OutputStream stream, std::string_view line) override {
    entries_.push_back(Entry{stream, std::string(line)});
  }
  const std::vector<Entry>& entries() const { return entries_; }
  // The lines of one stream joined with '\n' (each line followed by '\n').
  std::string Text(OutputStream stream) const {
    std::string out;
    for (const Entry& e : entries_) {
      if (e.stream == stream) out += e.text + "\n";
    }
    return out;
  }

 private:
  std::vector<Entry> entries_;
};

// Forwards every line to `next` (may be null) and keeps the last `max_lines`
// of both streams, for the "tail of the output" of a failed RUN.
class TailSink : public OutputSink {
 public:
  explicit TailSink(OutputSink* next, size_t max_lines = 20) : next_(next), max_(max_lines) {}
  void Line(OutputStream stream, std::string_view line) override {
    if (next_ != nullptr) next_->Line(stream, line);
    if (max_ == 0) return;
    if (tail_.size() == max_) tail_.pop_front();
    tail_.emplace_back(line);
  }
  std::vector<std::string> Tail() const { return {tail_.begin(), tail_.end()}; }

 private:
  OutputSink* next_;
  size_t max_;
  std::deque<std::string> tail_;
};

// One RUN step, as the engine describes it. The runner resolves `user`
// against the rootfs and generates /etc/hosts, /etc/resolv.conf and
// /etc/hostname.
struct RunSpec {
  // argv, with SHELL already prepended for the shell form.
  std::vector<std::string> args;
  // KEY=VALUE (stage ENV + build args in effect). PATH and HOME get docker's
  // defaults when absent.
  std::vector<std::string> env;
  // Absolute working directory; created by the runtime if missing.
  std::string cwd = "/";
  // Dockerfile USER spec (`name`, `uid`, `name:group`, `uid:gid`, ...);
  // empty = root.
  std::string user;
  // The mounted root file system (an OverlayMount's mountpoint). Absolute.
  std::filesystem::path rootfs;
  // Container hostname; empty = "strata".
  std::string hostname;
  // kPrivate: the runner sets up the private NAT network for this step.
  NetworkMode network = NetworkMode::kPrivate;
  SecurityMode security = SecurityMode::kSandbox;
  std::vector<BindMount> binds;
  std::vector<TmpfsMount> tmpfs;
  // Added to DefaultRlimits() (an entry here replaces the default of its
  // type); all clamped to the current hard limits before use.
  std::vector<Rlimit> rlimits;
  // Extra /etc/hosts entries (--add-host).
  std::vector<HostEntry> extra_hosts;
  // /dev/shm size; 0 = 64 MiB (--shm-size).
  uint64_t shm_size_bytes = 0;
  // When stop is requested the container is killed and Run returns Cancelled.
  std::stop_token cancel;
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;

  // Runs `spec` to completion, streaming its output to `sink`. Returns the
  // command's exit code (0..255; 128+N when killed by signal N). A non-zero
  // exit is a value, not an error. Errors: the command could not be started
  // (NotFound for an unknown USER, Internal/FailedPrecondition when the
  // runtime fails), Cancelled when spec.cancel was triggered.
  virtual Result<int> Run(const RunSpec& spec, OutputSink& sink) = 0;
};

}  // namespace strata::builder
