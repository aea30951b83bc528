// FakeCommandRunner: a scripted CommandRunner for tests of the build engine.
// Records every RunSpec it receives; each call pops the next scripted
// response (default: exit 0, no output). A response may also run a callback
// against the spec (e.g. write files into spec.rootfs to simulate the
// command's effect). Not thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/runtime/command_runner.h"

namespace strata::builder {

class FakeCommandRunner : public CommandRunner {
 public:
  struct Response {
    int exit_code = 0;
    std::vector<std::pair<OutputStream, std::string>> lines;
    std::function<Status(const RunSpec&)> effect;  // optional
    std::optional<Error> error;                    // returned instead of an exit code
  };

  void Push(Response r) { responses_.push_back(std::move(r)); }
  void PushExit(int code, std::string stdout_line = {}) {
    Response r;
    r.exit_code = code;
    if (!stdout_line.empty()) r.lines.emplace_back(OutputStream::kStdout, std::move(stdout_line));
    Push(std::move(r));
  }

  Result<int> Run(const RunSpec& spec, OutputSink& sink) override {
    calls_.push_back(spec);
    Response r;
    if (!responses_.empty()) {
      r = std::move(responses_.front());
      responses_.pop_front();
    }
    if (spec.cancel.stop_requested()) return MakeError(ErrorCode::kCancelled, "run cancelled");
    for (const auto& [stream, line] : r.lines) sink.Line(stream, line);
    if (r.effect) STRATA_RETURN_IF_ERROR(r.effect(spec));
    if (r.error) return Unexpected(*r.error);
    return r.exit_code;
  }

  const std::vector<RunSpec>& calls() const { return calls_; }

 private:
  std::deque<Response> responses_;
  std::vector<RunSpec> calls_;
};

}  // namespace strata::builder
