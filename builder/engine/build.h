// Build: one run of a Plan, the engine's internal state shared by the step
// implementations. Not part of the engine's API (executor.h is).
//
// The orchestrator (build.cc) parses, schedules stages (independent ones on
// their own threads), seeds each stage from its base and dispatches each
// instruction; the steps that make layers have their own files:
//   run_step.cc, run_mounts.cc   RUN and its --mount sources
//   copy_step.cc, url_source.cc  COPY/ADD, ADD <url>
//   workdir_step.cc              WORKDIR (makes the directory)
//   config_edit.cc               metadata instructions (a pure function)
//   source_resolver.cc           FROM, COPY --from and RUN --mount from=
// The file-system seams are injected: Snapshotter (views and RUN's writable
// root), CommandRunner (RUN), Clock (history times), and the resolver and
// fetcher of BuildOptions.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/engine/build_cache.h"
#include "builder/engine/clock.h"
#include "builder/engine/context_hasher.h"
#include "builder/engine/executor.h"
#include "builder/engine/snapshotter.h"
#include "builder/engine/step_progress.h"
#include "builder/frontend/dockerignore.h"
#include "builder/frontend/plan.h"
#include "oci/layer_writer.h"

namespace strata::builder {

inline constexpr std::string_view kHistoryComment = "buildkit.dockerfile.v0";

// The state of a stage as instructions are applied.
struct StageState {
  oci::ImageConfig config;
  std::vector<oci::Descriptor> layers;
  oci::Digest key;               // cache key chain
  bool cache_broken = false;     // a miss happened earlier in this stage
  bool no_cache = false;         // --no-cache-filter names this stage
  bool rebuilt_differs = false;  // ... and a step of it made something new
  bool cmd_set = false;          // CMD set in this stage (ENTRYPOINT rule)
  // History time of the latest step: a layer step's first run (kept in its
  // cache record), inherited by metadata steps, so a fully cached rebuild
  // yields the same config and digest.
  std::string created;
  // The platform the stage is built for (--platform, FROM --platform, or
  // its base stage's): config, base manifest, cache keys, emulation.
  oci::Platform platform;
};

// Where a step's instruction came from, for messages ("Dockerfile:7: ...").
std::string Located(std::string_view file, const Instruction& ins, std::string_view what);

// What a `from` (FROM's image, COPY --from, RUN --mount from=) names: an
// earlier stage of this build, or an image (from the store, else pulled
// through the resolver for the build's target platform).
struct ResolvedSource {
  StageState state;       // config, layers and the key of its chain
  std::string cache_key;  // what a step using it adds to its key
  bool is_stage = false;
};

class Build {
 public:
  Build(oci::Store& store, CommandRunner& runner, ProgressSink& progress, Snapshotter& snapshotter,
        Clock& clock, const BuildOptions& opts)
      : store_(store),
        runner_(runner),
        progress_(progress),
        snapshotter_(snapshotter),
        clock_(clock),
        opts_(opts),
        cache_(store) {}

  // Stages of one wave of the plan run on their own threads (bounded).
  static constexpr size_t kMaxParallelStages = 4;

  Result<BuildResult> Run();

 private:
  // build.cc: the orchestrator.
  Status Lint(const std::string& text);
  Status RunStage(const Stage& stage);
  Status InitFromBase(const Stage& stage, StageState& st);
  Status Dispatch(const PlanInstruction& pi, const Instruction& raw, StageState& st,
                  const std::string& label);
  Status AddLayer(StageState& st, const oci::LayerInfo& info, const std::filesystem::path& dir);
  // A layer step's cache hit: applies the record of `k` (layer, history time)
  // and reports the step CACHED. False when there is none, or the stage's cache
  // is already broken; from then on the rest of the stage runs uncached.
  Result<bool> ReuseCached(StageState& st, const oci::Digest& k, const std::string& created_by,
                           int id);
  // After a layer step ran: history entry, key, and its cache record.
  void Committed(StageState& st, const oci::Digest& k, CacheRecord rec);
  // The snapshots of a chain, top-most first (made when missing).
  Result<std::vector<std::filesystem::path>> Lowers(const StageState& st);
  // A read-only view of a chain.
  Result<std::unique_ptr<Mounted>> ViewOf(const StageState& st);
  // Commits `dir` as a layer with the build's compression and epoch,
  // reporting size and rate on `out`.
  Result<oci::LayerInfo> Commit(const std::filesystem::path& dir, bool overlay_upper,
                                OutputSink& out);
  std::string Now() const;
  void History(StageState& st, std::string created_by, bool empty,
               std::optional<std::string> created = std::nullopt);
  Status Fail(const Instruction& ins, const Error& e) const {
    return Unexpected(Error(e.code(), Located(file_name_, ins, e.message())));
  }
  std::optional<StageState> Done(int stage) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = done_.find(stage);
    if (it == done_.end()) return std::nullopt;
    return it->second;
  }
  // Records an input (BuildResult::inputs) and checks it
  // (BuildOptions::check_input).
  Status Resolved(ResolvedInput in) {
    if (opts_.check_input) STRATA_RETURN_IF_ERROR(opts_.check_input(in));
    std::lock_guard<std::mutex> lock(mu_);
    inputs_.push_back(std::move(in));
    return OkStatus();
  }
  void Used(const oci::Digest& key, const CacheRecord& rec) {
    std::lock_guard<std::mutex> lock(mu_);
    used_.emplace_back(key, rec);
  }

  // source_resolver.cc
  // `what` ("FROM alpine", "COPY --from=x") prefixes errors.
  Result<ResolvedSource> ResolveSource(const std::string& from, std::string_view what);
  // `reads_fs`: whether the caller reads the image's file system; if not,
  // its layers may stay lazy (see BuildOptions::metadata_resolver).
  // `platform`: which image of an index (and which a plain image must be);
  // unset = the build's target platform.
  Result<ResolvedSource> ResolveImage(const std::string& image, std::string_view what,
                                      bool reads_fs = true,
                                      std::optional<oci::Platform> platform = std::nullopt);
  // The build's target platform (BuildOptions::platform or the host's).
  oci::Platform TargetPlatform() const;
  // Fetches every layer of `layers` the store lacks (lazy) through
  // opts_.blob_fetcher; FailedPrecondition naming the first if there is none.
  Status FetchLazyLayers(const std::vector<oci::Descriptor>& layers, std::string_view what);

  // The steps that make layers.
  Status DoRun(const Instruction& ins, const RunCommand& run, const PlanInstruction& pi,
               StageState& st, const std::string& label);
  struct RunMounts;
  Status PrepareMounts(const Instruction& ins, const RunCommand& run, RunSpec& spec, CacheKey& key,
                       RunMounts& held);
  Status DoCopy(const Instruction& ins, const CopyCommand& copy, StageState& st,
                const std::string& label);
  Status DoWorkdir(const Instruction& ins, StageState& st, const std::string& label);

  oci::Store& store_;
  CommandRunner& runner_;
  SerializedProgress progress_;
  Snapshotter& snapshotter_;
  Clock& clock_;
  const BuildOptions& opts_;
  BuildCache cache_;
  Plan plan_;
  std::string file_name_ = "Dockerfile";
  std::filesystem::path context_;
  DockerIgnore ignore_;
  std::unique_ptr<ContextHasher> hasher_;
  std::mutex mu_;  // guards done_ and used_
  std::map<int, StageState> done_;
  // Every cache record this build hit or wrote, in step order per stage:
  // what --cache-to exports.
  std::vector<std::pair<oci::Digest, CacheRecord>> used_;
  std::vector<ResolvedInput> inputs_;  // guarded by mu_
  std::atomic<int> step_{0};
  std::atomic<int> cached_{0};
};

}  // namespace strata::builder
