// Step progress: the ProgressSink the CLI implements (plain, json, quiet),
// and the engine's adapters around it.
#pragma once

#include <mutex>
#include <string_view>

#include "builder/runtime/command_runner.h"
#include "oci/layer_writer.h"

namespace strata::builder {

// Progress of a build; the CLI renders it (plain, json, quiet). The executor
// serializes every call (stages may run on several threads), so an
// implementation needs no locking of its own.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // `id` numbers steps across the build; `name` is "[stage 2/5] RUN make".
  virtual void StepStart(int id, std::string_view name) = 0;
  virtual void StepDone(int id, bool cached, double seconds) = 0;
  // One line of a step's output (command output, layer commit figures).
  virtual void StepOutput(int id, OutputStream stream, std::string_view line) = 0;
  virtual void Warning(std::string_view text) = 0;
};

// Serializes every call into the caller's ProgressSink.
class SerializedProgress : public ProgressSink {
 public:
  explicit SerializedProgress(ProgressSink& inner) : inner_(inner) {}
  void StepStart(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_.StepStart(id, name);
  }
  void StepDone(int id, bool cached, double seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_.StepDone(id, cached, seconds);
  }
  void StepOutput(int id, OutputStream stream, std::string_view line) override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_.StepOutput(id, stream, line);
  }
  void Warning(std::string_view text) override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_.Warning(text);
  }

 private:
  ProgressSink& inner_;
  std::mutex mu_;
};

// The output of one step, as an OutputSink for the runner and the commit.
class StepSink : public OutputSink {
 public:
  StepSink(ProgressSink& progress, int id) : progress_(progress), id_(id) {}
  void Line(OutputStream stream, std::string_view line) override {
    progress_.StepOutput(id_, stream, line);
  }

 private:
  ProgressSink& progress_;
  int id_;
};

// The line a layer commit reports on its step's output: on a large layer
// this is where a build spends its time.
std::string CommitSummary(const oci::LayerInfo& info, oci::Compression compression, double seconds);

}  // namespace strata::builder
