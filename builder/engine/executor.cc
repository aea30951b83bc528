#include "builder/engine/executor.h"
#include "oci/json_util.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "builder/engine/add_archive.h"
#include "builder/engine/build_cache.h"
#include "builder/engine/image_path.h"
#include "builder/frontend/dockerignore.h"
#include "builder/runtime/overlay_mount.h"
#include "builder/runtime/user_db.h"
#include "oci/layer_reader.h"
#include "oci/layer_writer.h"
#include "oci/media_types.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHistoryComment = "buildkit.dockerfile.v0";

// The state of a stage as instructions are applied.
struct StageState {
  oci::ImageConfig config;
  std::vector<oci::Descriptor> layers;
  oci::Digest key;            // cache key chain
  bool cache_broken = false;  // a miss happened earlier in this stage
  bool cmd_set = false;       // CMD set in this stage (ENTRYPOINT rule)
  // History time of the latest step: a layer step's first run (kept in its
  // cache record), inherited by metadata steps, so a fully cached rebuild
  // yields the same config and digest.
  std::string created;
};

std::string JoinArgs(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ' ';
    s += x;
  }
  return s;
}

std::string Located(std::string_view file, const Instruction& ins, std::string_view what) {
  return fmt::format("{}:{}: {}", file, ins.start_line, what);
}

// A read-only view of a layer chain: an overlay of its snapshots.
class View {
 public:
  static Result<View> Mount(const std::vector<fs::path>& lowers_topmost_first,
                            const fs::path& tmp_parent) {
    View v;
    STRATA_ASSIGN_OR_RETURN(v.dir_, ScopedTempDir::Create(tmp_parent, ".view-"));
    std::vector<fs::path> lowers = lowers_topmost_first;
    if (lowers.empty()) {
      STRATA_RETURN_IF_ERROR(MakeDirs(v.dir_.path() / "empty"));
      lowers.push_back(v.dir_.path() / "empty");
    }
    STRATA_RETURN_IF_ERROR(MakeDirs(v.dir_.path() / "merged"));
    OverlayOptions o;
    o.lower_dirs = lowers;
    o.mountpoint = v.dir_.path() / "merged";
    STRATA_ASSIGN_OR_RETURN(v.mount_, OverlayMount::Mount(o));
    return v;
  }
  fs::path root() const { return dir_.path() / "merged"; }

 private:
  ScopedTempDir dir_;  // destroyed after mount_
  OverlayMount mount_;
};

// One file-system entry a COPY will create.
struct CopyEntry {
  std::string dest;  // absolute path in the image
  fs::path src;      // absolute host path ("" for heredoc content / made dirs)
  struct stat st {};
  std::string content;  // heredoc body
  bool is_heredoc = false;
};

// Content digests of context files, memoized by (dev, ino, size, mtime ns,
// ctime ns) in ROOT/cache/context-<hash of the context path>.memo. A stat
// match only skips re-hashing that same path; keys are content digests.
class ContextHasher {
 public:
  ContextHasher(const fs::path& cache_dir, const fs::path& context)
      : path_(cache_dir /
              ("context-" + oci::Digest::Of(context.string()).hex().substr(0, 32) + ".memo")) {
    auto text = ReadFile(path_);
    if (!text) return;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) return;
    for (const auto& [k, v] : j.items()) {
      if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
        memo_[k] = {v[0].get<std::string>(), v[1].get<std::string>()};
      }
    }
  }

  Result<std::string> Digest(const fs::path& file, const struct stat& st) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string stamp =
        fmt::format("{}:{}:{}:{}.{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                    st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    auto it = memo_.find(file.string());
    if (it != memo_.end() && it->second.first == stamp) return it->second.second;
    STRATA_ASSIGN_OR_RETURN(auto d, oci::DigestFile(file.string()));
    memo_[file.string()] = {stamp, d.ToString()};
    dirty_ = true;
    return d.ToString();
  }

  void Save() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirty_) return;
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : memo_) j[k] = {v.first, v.second};
    (void)WriteFileAtomic(path_, oci::DumpJson(j));
  }

 private:
  fs::path path_;
  std::mutex mu_;  // stages hash on several threads
  std::map<std::string, std::pair<std::string, std::string>> memo_;
  bool dirty_ = false;
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

// Non-throwing file-system predicates: an image may hold symlink loops or
// unreadable paths, and std::filesystem's plain overloads throw on those.
bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}
bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool IsEmptyDir(const fs::path& p) {
  std::error_code ec;
  bool empty = fs::is_empty(p, ec);
  return !ec && empty;
}
fs::path Absolute(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return ec ? p : a;
}

bool HasGlob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// A git repository as ADD source (BuildKit's forms): git@host:repo,
// git://..., or an http(s) URL whose path ends in .git (before any #ref).
bool IsGitSource(std::string_view s) {
  if (s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://")) return true;
  if (!s.starts_with("http://") && !s.starts_with("https://")) return false;
  std::string_view path = s.substr(0, s.find_first_of("#?"));
  return path.ends_with(".git");
}

// Commits `dir` as a layer and reports its size and rate on the step's
// output: on a large layer this is where a build spends its time.
Result<oci::LayerInfo> CommitWithProgress(oci::Store& store, const fs::path& dir,
                                          const oci::LayerWriterOptions& lo, OutputSink& out) {
  auto start = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(auto info, oci::CommitLayer(store, dir, lo));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double mb = static_cast<double>(info.uncompressed_size) / 1e6;
  out.Line(OutputStream::kStderr,
           fmt::format(
               "layer {}: {:.1f} MB tar -> {:.1f} MB {} in {:.2f}s ({:.0f} MB/s)",
               info.descriptor.digest.Short(), mb, static_cast<double>(info.descriptor.size) / 1e6,
               oci::CompressionName(lo.compress.compression), secs, secs > 0 ? mb / secs : 0.0));
  return info;
}

class Build {
 public:
  Build(oci::Store& store, CommandRunner& runner, ProgressSink& progress, const BuildOptions& opts)
      : store_(store), runner_(runner), progress_(progress), opts_(opts), cache_(store) {}

  // Stages of one wave of the plan run on their own threads (bounded).
  static constexpr size_t kMaxParallelStages = 4;

  Result<BuildResult> Run();

 private:
  Status RunStage(const Stage& stage);
  Status InitFromBase(const Stage& stage, StageState& st);
  Status Dispatch(const Stage& stage, const PlanInstruction& pi, const Instruction& ins,
                  StageState& st, const std::string& label);
  Status DoRun(const Instruction& ins, const RunCommand& run, const PlanInstruction& pi,
               StageState& st, const std::string& label);
  Status DoCopy(const Instruction& ins, const CopyCommand& copy, StageState& st,
                const std::string& label);
  Status DoWorkdir(const Instruction& ins, StageState& st, const std::string& label);
  Status AddLayer(StageState& st, const oci::LayerInfo& info, const fs::path& snapshot_src);
  // A layer step's cache hit: applies the record of `k` (layer, history time)
  // and reports the step CACHED. False when there is none, or the stage's cache
  // is already broken; from then on the rest of the stage runs uncached.
  Result<bool> ReuseCached(StageState& st, const oci::Digest& k, const std::string& created_by,
                           int id);
  // After a layer step ran: history entry, key, and its cache record.
  void Committed(StageState& st, const oci::Digest& k, CacheRecord rec);
  Result<std::vector<fs::path>> Lowers(const StageState& st);
  Result<fs::path> EnsureSnapshot(const StageState& st, size_t i);
  std::string Now() const;
  void History(StageState& st, std::string created_by, bool empty,
               std::optional<std::string> created = std::nullopt);
  Status Fail(const Instruction& ins, const Error& e) const {
    return Unexpected(Error(e.code(), Located(file_name_, ins, e.message())));
  }

  oci::Store& store_;
  CommandRunner& runner_;
  SerializedProgress progress_;
  const BuildOptions& opts_;
  BuildCache cache_;
  Plan plan_;
  std::string file_name_ = "Dockerfile";
  fs::path context_;
  DockerIgnore ignore_;
  std::unique_ptr<ContextHasher> hasher_;
  std::mutex mu_;  // guards done_ and used_
  std::map<int, StageState> done_;
  // Every cache record this build hit or wrote, in step order per stage:
  // what --cache-to exports.
  std::vector<std::pair<oci::Digest, CacheRecord>> used_;
  void Used(const oci::Digest& key, const CacheRecord& rec) {
    std::lock_guard<std::mutex> lock(mu_);
    used_.emplace_back(key, rec);
  }
  std::atomic<int> step_{0};
  std::atomic<int> cached_{0};

  std::optional<StageState> Done(int stage) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = done_.find(stage);
    if (it == done_.end()) return std::nullopt;
    return it->second;
  }
};

std::string Build::Now() const {
  int64_t t =
      opts_.source_date_epoch ? *opts_.source_date_epoch : static_cast<int64_t>(std::time(nullptr));
  return oci::FormatRfc3339(t);
}

void Build::History(StageState& st, std::string created_by, bool empty,
                    std::optional<std::string> created) {
  if (created && !created->empty()) st.created = *created;
  if (st.created.empty()) st.created = Now();
  if (opts_.source_date_epoch) st.created = Now();
  oci::HistoryEntry h;
  h.created = st.created;
  h.created_by = std::move(created_by);
  h.comment = std::string(kHistoryComment);
  h.empty_layer = empty;
  st.config.history.push_back(std::move(h));
}

// Snapshots are owned by oci/snapshots: a snapshot is used only with its
// proof of completeness, and an incomplete one is made again.
Result<fs::path> Build::EnsureSnapshot(const StageState& st, size_t i) {
  oci::Digest chain = oci::ChainId(std::span(st.config.diff_ids).first(i + 1));
  oci::SnapshotOptions so;
  so.allow_devices = ::geteuid() == 0;
  so.preserve_owners = ::geteuid() == 0;
  so.max_uncompressed_bytes = opts_.max_layer_bytes;
  return oci::EnsureSnapshot(store_, chain, st.layers[i], st.config.diff_ids[i], so);
}

Result<std::vector<fs::path>> Build::Lowers(const StageState& st) {
  std::vector<fs::path> out;
  for (size_t i = st.layers.size(); i-- > 0;) {
    STRATA_ASSIGN_OR_RETURN(auto p, EnsureSnapshot(st, i));
    out.push_back(p);
  }
  return out;
}

Status Build::AddLayer(StageState& st, const oci::LayerInfo& info, const fs::path& snapshot_src) {
  st.layers.push_back(info.descriptor);
  st.config.diff_ids.push_back(info.diff_id);
  if (!snapshot_src.empty()) {
    // The directory the layer was made from is, as it stands, the layer in
    // overlay form: adopt it as the snapshot instead of unpacking again.
    auto adopted = oci::AdoptSnapshot(store_, snapshot_src, oci::ChainId(st.config.diff_ids),
                                      info.descriptor, info.diff_id);
    if (!adopted) return Unexpected(adopted.error());
  }
  return OkStatus();
}

Result<bool> Build::ReuseCached(StageState& st, const oci::Digest& k, const std::string& created_by,
                                int id) {
  if (!opts_.no_cache && !st.cache_broken) {
    if (auto rec = cache_.Lookup(k)) {
      if (!rec->empty_layer) {
        STRATA_RETURN_IF_ERROR(AddLayer(st, {rec->layer, rec->diff_id, 0}, {}));
      }
      History(st, created_by, rec->empty_layer, rec->created);
      Used(k, *rec);
      st.key = k;
      ++cached_;
      progress_.StepDone(id, true, 0);
      return true;
    }
  }
  st.cache_broken = true;
  return false;
}

void Build::Committed(StageState& st, const oci::Digest& k, CacheRecord rec) {
  rec.created = Now();
  History(st, rec.created_by, rec.empty_layer, rec.created);
  st.key = k;
  (void)cache_.Record(k, rec);
  Used(k, rec);
}

Status Build::InitFromBase(const Stage& stage, StageState& st) {
  // FROM --platform: until multi-platform builds exist, a stage for another
  // platform is refused, never silently built for this one.
  if (!stage.platform.empty()) {
    auto p = BuildPlatform::Parse(stage.platform);
    if (!p) return Fail(stage.from, p.error());
    if (p->os != plan_.target_platform.os || p->arch != plan_.target_platform.arch ||
        (!p->variant.empty() && p->variant != plan_.target_platform.variant)) {
      return Fail(stage.from,
                  Error(ErrorCode::kUnimplemented,
                        fmt::format("FROM --platform={}: building for another platform than {} "
                                    "is not supported yet",
                                    stage.platform, plan_.target_platform.ToString())));
    }
  }
  st.config.os = "linux";
  st.config.architecture = plan_.target_platform.arch;
  st.config.variant = plan_.target_platform.variant;
  CacheKey key("FROM");
  switch (stage.base.kind) {
    case StageBase::Kind::kScratch:
      key.Add("scratch");
      // BuildKit's empty image: WorkingDir "/" (and the default PATH below).
      st.config.config.working_dir = "/";
      break;
    case StageBase::Kind::kStage: {
      auto base = Done(stage.base.stage);
      if (!base) {
        return Fail(stage.from, Error(ErrorCode::kInternal, "base stage not built"));
      }
      st = std::move(*base);
      st.cache_broken = false;
      st.cmd_set = false;
      key.Add(st.key.ToString());
      break;
    }
    case StageBase::Kind::kImage: {
      auto ref = oci::Reference::Parse(stage.base.image);
      if (!ref) return Fail(stage.from, ref.error());
      oci::Platform want;
      want.os = plan_.target_platform.os;
      want.architecture = plan_.target_platform.arch;
      want.variant = plan_.target_platform.variant;
      Result<oci::Descriptor> desc = MakeError(ErrorCode::kNotFound, "");
      if (!opts_.pull_always) {
        desc = store_.Resolve(*ref);
      } else if (auto idx = store_.ReadIndex(); !idx) {
        desc = Unexpected(idx.error());  // a pull could not be recorded either
      }
      // Only a base that is not in the store is pulled: a store that cannot
      // answer (a corrupt index.json) stops the build.
      if (!desc && desc.error().code() != ErrorCode::kNotFound) {
        return Fail(stage.from, desc.error().Wrap(fmt::format("FROM {}", ref->Familiar())));
      }
      if (!desc) {
        if (!opts_.resolver) {
          return Fail(stage.from,
                      Error(ErrorCode::kNotFound,
                            fmt::format("FROM {}: image not found in the store", ref->Familiar())));
        }
        desc = opts_.resolver(*ref, want);
        if (!desc)
          return Fail(stage.from, desc.error().Wrap(fmt::format("FROM {}", ref->Familiar())));
      }
      auto img = store_.LoadImage(*desc, want);
      if (!img) return Fail(stage.from, img.error().Wrap(fmt::format("FROM {}", ref->Familiar())));
      // Snapshots stand in for the base's layer blobs, which a build then
      // never reads: check that they are intact (size always; content hashed
      // unless memoized next to the snapshot, see oci/snapshots.h).
      auto chains = oci::ChainIds(img->config.diff_ids);
      for (size_t i = 0; i < img->manifest.layers.size() && i < chains.size(); ++i) {
        if (auto s = oci::VerifyLayerBlob(store_, img->manifest.layers[i], chains[i]); !s) {
          return Fail(stage.from,
                      s.error().Wrap(fmt::format("FROM {}: base image {} layer {}", ref->Familiar(),
                                                 img->descriptor.digest, i)));
        }
      }
      st.config = img->config;
      st.layers = img->manifest.layers;
      st.created = img->config.created;
      key.Add(img->descriptor.digest.ToString());
      break;
    }
  }
  key.Add(plan_.target_platform.ToString());
  // The layer format version: bumped when the same step starts producing a
  // different layer (v2: COPY/WORKDIR keep the image's parent directories).
  key.Add("layers-v2");
  // Cached layers are stored compressed, so the codec is part of every key in
  // the chain: --compression zstd never reuses a gzip layer (and vice versa).
  key.Add(std::string(oci::CompressionName(opts_.compression.compression)))
      .Add(std::to_string(opts_.compression.level));
  st.key = key.Finish();
  if (!st.config.config.GetEnv("PATH")) st.config.config.SetEnv("PATH", kDefaultImagePath);
  return OkStatus();
}

Result<BuildResult> Build::Run() {
  context_ = Absolute(opts_.context_dir);
  if (!IsDir(context_)) {
    return MakeError(ErrorCode::kInvalidArgument, "build context {} is not a directory",
                     context_.string());
  }
  fs::path dockerfile = opts_.dockerfile.empty()         ? context_ / "Dockerfile"
                        : opts_.dockerfile.is_absolute() ? opts_.dockerfile
                                                         : Absolute(opts_.dockerfile);
  file_name_ = dockerfile.filename().string();
  Result<std::string> text =
      opts_.dockerfile_text ? Result<std::string>(*opts_.dockerfile_text) : ReadFile(dockerfile);
  if (!text) return Unexpected(text.error());
  ParseOptions po;
  po.file_name = file_name_;
  po.build_args = opts_.build_args;
  po.target = opts_.target;
  STRATA_ASSIGN_OR_RETURN(plan_, ParseDockerfile(*text, po));
  for (const auto& w : plan_.warnings) {
    progress_.Warning(w.line > 0 ? fmt::format("{}:{}: {}", file_name_, w.line, w.message)
                                 : w.message);
  }
  std::vector<oci::Reference> tags;
  for (const auto& t : opts_.tags) {
    STRATA_ASSIGN_OR_RETURN(auto r, oci::Reference::Parse(t));
    tags.push_back(r);
  }
  STRATA_ASSIGN_OR_RETURN(ignore_, DockerIgnore::Load(context_, dockerfile));
  hasher_ = std::make_unique<ContextHasher>(store_.CacheDir(), context_);
  for (const auto& wave : plan_.parallel_waves) {
    for (size_t first = 0; first < wave.size(); first += kMaxParallelStages) {
      size_t n = std::min(kMaxParallelStages, wave.size() - first);
      if (n == 1) {
        STRATA_RETURN_IF_ERROR(RunStage(plan_.stages[static_cast<size_t>(wave[first])]));
        continue;
      }
      // Independent stages: each on its own thread; the first error (by
      // stage order) wins once all have finished.
      std::vector<Status> results(n);
      std::vector<std::thread> threads;
      for (size_t k = 0; k < n; ++k) {
        threads.emplace_back([this, &results, &wave, first, k] {
          results[k] = RunStage(plan_.stages[static_cast<size_t>(wave[first + k])]);
        });
      }
      for (auto& t : threads) t.join();
      for (auto& r : results) STRATA_RETURN_IF_ERROR(r);
    }
  }
  hasher_->Save();
  StageState& final = done_.at(plan_.target);  // all threads have joined
  for (const auto& [k, v] : opts_.labels) final.config.config.labels[k] = v;
  final.config.created = final.created.empty() ? Now() : final.created;
  auto cfg = store_.Put(final.config.Serialize(), std::string(oci::media_type::kImageConfig));
  if (!cfg) return Unexpected(cfg.error());
  oci::Manifest m;
  m.media_type = std::string(oci::media_type::kImageManifest);
  m.config = *cfg;
  m.layers = final.layers;
  auto md = store_.Put(m.Serialize(), std::string(oci::media_type::kImageManifest));
  if (!md) return Unexpected(md.error());
  for (const auto& t : tags) STRATA_RETURN_IF_ERROR(store_.Tag(t, *md));
  BuildResult r;
  r.manifest = *md;
  r.config = cfg->digest;
  r.tags = tags;
  r.steps = step_;
  r.cached_steps = cached_;
  r.cache_records = used_;
  return r;
}

Status Build::RunStage(const Stage& stage) {
  StageState st;
  STRATA_RETURN_IF_ERROR(InitFromBase(stage, st));
  size_t total = stage.instructions.size() + 1;
  std::string sname = stage.name.empty() ? fmt::format("stage-{}", stage.index) : stage.name;
  {
    int id = ++step_;
    progress_.StepStart(id, fmt::format("[{} 1/{}] {}", sname, total, stage.from.original));
    progress_.StepDone(id, false, 0);
  }
  // ONBUILD triggers of the base (an image, or an earlier stage of this
  // Dockerfile, as BuildKit) run first, then are cleared.
  std::vector<std::string> triggers;
  if (stage.base.kind != StageBase::Kind::kScratch) triggers = st.config.config.on_build;
  st.config.config.on_build.clear();
  for (const auto& trig : triggers) {
    auto ast = ParseAst(trig, "ONBUILD");
    if (!ast || ast->nodes.size() != 1) {
      return Fail(stage.from, Error(ErrorCode::kInvalidArgument,
                                    fmt::format("invalid ONBUILD trigger \"{}\"", trig)));
    }
    auto ins = ParseInstruction(ast->nodes[0], '\\', "ONBUILD");
    if (!ins) return Fail(stage.from, ins.error());
    ins->start_line = stage.from.start_line;
    PlanInstruction pi;
    pi.raw = *ins;
    STRATA_RETURN_IF_ERROR(
        Dispatch(stage, pi, pi.raw, st, fmt::format("[{} ONBUILD] {}", sname, trig)));
  }
  for (size_t i = 0; i < stage.instructions.size(); ++i) {
    const PlanInstruction& pi = stage.instructions[i];
    std::string label = fmt::format("[{} {}/{}] {}", sname, i + 2, total, pi.expanded.original);
    STRATA_RETURN_IF_ERROR(Dispatch(stage, pi, pi.raw, st, label));
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_[stage.index] = std::move(st);
  return OkStatus();
}

Status Build::Dispatch(const Stage& stage, const PlanInstruction& pi, const Instruction& raw,
                       StageState& st, const std::string& label) {
  (void)stage;
  ShellLexer lexer(plan_.directives.escape);
  auto env_getter = DispatchEnv(st.config.config.env, pi.args);
  auto expanded = ExpandInstruction(raw, lexer, env_getter, file_name_);
  if (!expanded) return Unexpected(expanded.error());
  const Instruction& ins = *expanded;
  auto& cc = st.config.config;
  std::vector<std::string> shell =
      cc.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : cc.shell;
  std::vector<KeyValue> run_args;
  for (const auto& a : pi.args) {
    if (!IsProxyArg(a.key)) run_args.push_back(a);
  }
  std::string created_by = CreatedBy(ins, shell, run_args);
  CacheKey key("STEP");
  key.Add(st.key.ToString()).Add(oci::DumpJson(InstructionToJson(ins)));
  auto command_line = [&](const CommandLine& c) {
    return c.exec_form ? c.exec : [&] {
      auto v = shell;
      v.push_back(c.shell);
      return v;
    }();
  };

  if (auto* run = std::get_if<RunCommand>(&ins.command)) return DoRun(ins, *run, pi, st, label);
  if (auto* copy = std::get_if<CopyCommand>(&ins.command)) return DoCopy(ins, *copy, st, label);
  if (std::holds_alternative<WorkdirCommand>(ins.command)) return DoWorkdir(ins, st, label);

  int id = ++step_;
  progress_.StepStart(id, label);
  bool history = true;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, EnvCommand>) {
          for (const auto& kv : c.env) cc.SetEnv(kv.key, kv.value);
        } else if constexpr (std::is_same_v<T, LabelCommand>) {
          for (const auto& kv : c.labels) cc.labels[kv.key] = kv.value;
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          if (auto ports = NormalizeExposedPorts(c.ports)) {
            for (const auto& p : *ports) cc.exposed_ports.insert(p);
          }
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          cc.user = c.user;
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          for (const auto& v : c.volumes) cc.volumes.insert(v);
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          cc.stop_signal = c.signal;
        } else if constexpr (std::is_same_v<T, CmdCommand>) {
          cc.cmd = command_line(c.cmd);
          st.cmd_set = true;
        } else if constexpr (std::is_same_v<T, EntrypointCommand>) {
          cc.entrypoint = command_line(c.cmd);
          if (!st.cmd_set) cc.cmd.reset();
        } else if constexpr (std::is_same_v<T, ShellCommand>) {
          cc.shell = c.shell;
        } else if constexpr (std::is_same_v<T, OnbuildCommand>) {
          cc.on_build.push_back(c.expression);
        } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
          st.config.author = c.maintainer;
        } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
          oci::HealthConfig h;
          if (c.none) {
            h.test = {"NONE"};
          } else {
            h.test = c.test;
            h.interval_ns = c.interval_ns;
            h.timeout_ns = c.timeout_ns;
            h.start_period_ns = c.start_period_ns;
            h.start_interval_ns = c.start_interval_ns;
            h.retries = c.retries;
          }
          cc.healthcheck = h;
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          history = false;  // BuildKit records no history for ARG
        }
      },
      ins.command);
  oci::Digest k = key.Finish();
  bool cached = false;
  if (history) {
    // Metadata steps keep a record too, only for their history time: a fresh
    // build shows when it ran, a cached rebuild reproduces the same config.
    std::optional<CacheRecord> rec;
    if (!opts_.no_cache && !st.cache_broken) rec = cache_.Lookup(k);
    if (rec && rec->empty_layer) {
      History(st, created_by, true, rec->created);
      Used(k, *rec);
      cached = true;
    } else {
      CacheRecord fresh;
      fresh.created_by = created_by;
      fresh.empty_layer = true;
      fresh.created = Now();
      History(st, created_by, true, fresh.created);
      (void)cache_.Record(k, fresh);
      Used(k, fresh);
    }
  }
  st.key = k;
  progress_.StepDone(id, cached, 0);
  return OkStatus();
}

// Copies `size` bytes from `in` to `out` (copy_file_range, else read/write).
Status CopyContents(int in, int out, off_t size, const fs::path& src) {
  off_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Fall back to read/write (cross-device on old kernels, special fs).
      char buf[1 << 16];
      ssize_t r = ::read(in, buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError(errno, fmt::format("read {}", src.string()));
      if (r == 0) break;
      STRATA_RETURN_IF_ERROR(WriteAll(out, buf, static_cast<size_t>(r)));
      left -= r;
      continue;
    }
    left -= n;
  }
  return OkStatus();
}

// The names in `dir`, sorted (empty when it cannot be read).
std::vector<std::string> SortedNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// What a RUN --mount=type=bind of the context sees: .dockerignore applies,
// as in BuildKit, which only ever holds the filtered context. Lists `source`
// (at `rel` in the context; "" = the context itself) without descending into
// links, in sorted order; `excluded` tells whether anything was left out.
struct BindFile {
  std::string rel;  // relative to `source`
  fs::path path;
  struct stat st;
};

void ListBindSource(const DockerIgnore& ignore, const fs::path& dir, const std::string& ctx_rel,
                    const std::string& rel, std::vector<BindFile>& out, bool& excluded) {
  for (const auto& n : SortedNames(dir)) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string c = ctx_rel.empty() ? r : ctx_rel + "/" + r;
    BindFile f{r, dir / n, {}};
    if (::lstat(f.path.c_str(), &f.st) != 0) continue;
    bool is_dir = S_ISDIR(f.st.st_mode);
    if (ignore.Matches(c)) {
      excluded = true;
      if (is_dir && ignore.MayReincludeUnder(c)) {
        ListBindSource(ignore, f.path, ctx_rel, r, out, excluded);
      }
      continue;
    }
    out.push_back(f);
    if (is_dir) ListBindSource(ignore, f.path, ctx_rel, r, out, excluded);
  }
}

// Recreates `files` below `root`: directories made, files hard-linked (copied
// across file systems), links recreated. Every operation stays in the root.
Status MakeFilteredTree(const RootDir& root, const std::vector<BindFile>& files) {
  for (const auto& f : files) {
    STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(f.rel, /*create_parents=*/true));
    const char* name = at.name.c_str();
    if (S_ISDIR(f.st.st_mode)) {
      if (::mkdirat(at.dir.get(), name, f.st.st_mode & 07777) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "mkdir " + f.rel);
      }
    } else if (S_ISLNK(f.st.st_mode)) {
      std::error_code ec;
      auto target = fs::read_symlink(f.path, ec);
      if (ec) return MakeError(ErrorCode::kInternal, "readlink {}: {}", f.rel, ec.message());
      if (::symlinkat(target.c_str(), at.dir.get(), name) != 0) {
        return ErrnoError(errno, "symlink " + f.rel);
      }
    } else if (S_ISREG(f.st.st_mode)) {
      if (::linkat(AT_FDCWD, f.path.c_str(), at.dir.get(), name, 0) == 0) continue;
      STRATA_ASSIGN_OR_RETURN(auto in, OpenFile(f.path, O_RDONLY | O_NOFOLLOW));
      int fd = ::openat(at.dir.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        f.st.st_mode & 07777);
      if (fd < 0) return ErrnoError(errno, "create " + f.rel);
      UniqueFd out(fd);
      STRATA_RETURN_IF_ERROR(CopyContents(in.get(), out.get(), f.st.st_size, f.path));
    }
    // Sockets, fifos and devices of the context are not part of it.
  }
  return OkStatus();
}

// Removes from a RUN's upper dir the directories overlayfs only copied up:
// empty (after their children are pruned), not opaque, and with the mode,
// owner and mtime they have in the lowers (`lowers`: topmost first). The
// runtime's mount points (/etc/hosts, /etc/resolv.conf, secret targets) make
// such copy-ups even when the command changes nothing; BuildKit's diff has
// no entry for them, so an unchanged RUN yields no layer. Returns whether
// `dir` (relative to `upper`, "" = upper itself) is empty afterwards.
bool PruneCopiedUpDirs(const fs::path& upper, const std::vector<fs::path>& lowers,
                       const std::string& rel, int depth = 0) {
  fs::path dir = rel.empty() ? upper : upper / rel;
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return false;
  bool empty = true;
  for (const auto& n : names) {
    std::string child = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (::lstat((upper / child).c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || depth > 256) {
      empty = false;
      continue;
    }
    if (!PruneCopiedUpDirs(upper, lowers, child, depth + 1)) {
      empty = false;
      continue;
    }
    char v;
    bool opaque = ::lgetxattr((upper / child).c_str(), "trusted.overlay.opaque", &v, 1) == 1;
    const struct stat* lower = nullptr;
    struct stat lst;
    for (const auto& l : lowers) {
      if (::lstat((l / child).c_str(), &lst) == 0) {
        lower = &lst;
        break;
      }
    }
    bool same = lower && S_ISDIR(lower->st_mode) && lower->st_mode == st.st_mode &&
                lower->st_uid == st.st_uid && lower->st_gid == st.st_gid &&
                lower->st_mtim.tv_sec == st.st_mtim.tv_sec &&
                lower->st_mtim.tv_nsec == st.st_mtim.tv_nsec;
    if (!opaque && same && ::rmdir((upper / child).c_str()) == 0) continue;
    empty = false;
  }
  return empty;
}

Status Build::DoRun(const Instruction& ins, const RunCommand& run, const PlanInstruction& pi,
                    StageState& st, const std::string& label) {
  const auto& cc = st.config.config;
  std::vector<std::string> shell =
      cc.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : cc.shell;
  RunSpec spec;
  std::vector<ScopedTempDir> heredoc_files;  // shebang scripts, removed after the step
  if (run.cmd.exec_form) {
    spec.args = run.cmd.exec;
  } else {
    std::string script = run.cmd.shell;
    std::string trimmed = script;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
      trimmed.pop_back();
    bool heredoc_only = run.heredocs.size() == 1 && trimmed.starts_with("<<") &&
                        trimmed.find(' ') == std::string::npos;
    if (heredoc_only && run.heredocs[0].content.starts_with("#!")) {
      // `RUN <<EOF` whose body starts with a shebang: as BuildKit, the body is
      // an executable file (read-only at /dev/pipes/NAME) run directly, so its
      // interpreter runs it.
      const Heredoc& h = run.heredocs[0];
      auto dir = ScopedTempDir::Create(store_.SnapshotsDir(), ".heredoc-");
      if (!dir) return Fail(ins, dir.error());
      fs::path file = dir->path() / "script";
      STRATA_RETURN_IF_ERROR(WriteFileAtomic(file, h.content, 0755));
      std::string dest = "/dev/pipes/" + std::string(fs::path(h.name).filename());
      spec.binds.push_back({file, dest, true});
      spec.args = {dest};
      heredoc_files.push_back(std::move(*dir));
    } else {
      if (heredoc_only) {
        // `RUN <<EOF` alone: the body is the script.
        script = run.heredocs[0].content;
      } else {
        // Hand the heredocs to the shell, which implements them.
        for (const auto& h : run.heredocs) script += "\n" + h.content + h.name;
      }
      spec.args = shell;
      spec.args.push_back(script);
    }
  }
  std::vector<KeyValue> run_args;
  spec.env = cc.env;
  for (const auto& a : pi.args) {
    bool shadowed = cc.GetEnv(a.key).has_value();
    if (!shadowed) spec.env.push_back(a.key + "=" + a.value);
    if (!IsProxyArg(a.key)) run_args.push_back(a);
  }
  for (const auto& a : plan_.proxy_args) {
    bool present = false;
    for (const auto& e : spec.env) present |= e.starts_with(a.key + "=");
    if (!present) spec.env.push_back(a.key + "=" + a.value);
  }
  spec.cwd = cc.working_dir.empty() ? "/" : cc.working_dir;
  spec.user = cc.user;
  spec.network = opts_.network;
  if (!run.network.empty()) {
    auto mode = ParseNetworkMode(run.network);
    if (!mode) return Fail(ins, mode.error());
    spec.network = *mode;
  }
  auto security = ParseSecurityMode(run.security);
  if (!security) return Fail(ins, security.error());
  spec.security = *security;
  if (spec.network == NetworkMode::kHost && !opts_.allow.contains(kAllowNetworkHost)) {
    return Fail(
        ins, Error(ErrorCode::kPermissionDenied,
                   fmt::format("RUN with the host network needs --allow {}", kAllowNetworkHost)));
  }
  if (spec.security == SecurityMode::kInsecure && !opts_.allow.contains(kAllowSecurityInsecure)) {
    return Fail(ins, Error(ErrorCode::kPermissionDenied,
                           fmt::format("RUN --security=insecure needs --allow {}",
                                       kAllowSecurityInsecure)));
  }
  std::string created_by = CreatedBy(ins, shell, run_args);

  CacheKey key("RUN");
  key.Add(st.key.ToString()).Add(spec.args).Add(spec.env).Add(spec.cwd).Add(spec.user);
  for (const auto& h : run.heredocs) key.Add(h.content);
  key.Add(NetworkModeName(spec.network));
  if (spec.security != SecurityMode::kSandbox) key.Add(SecurityModeName(spec.security));
  // RUN --mount: cache dirs, tmpfs, read-only binds of the context or a
  // stage, secrets. Bind sources are part of the cache key by content.
  std::vector<View> mount_views;
  std::vector<ScopedTempDir> rw_copies;  // rw bind sources, removed after the step
  std::vector<UniqueFd> cache_locks;     // held until the step ends (sharing=)
  std::set<fs::path> locked_dirs;
  // The root of `from` (a stage or image) for a mount; the view stays mounted
  // for the step. Its cache key goes into `key`.
  auto from_root = [&](const std::string& from) -> Result<fs::path> {
    std::vector<std::string> names;
    for (const auto& s2 : plan_.stages) names.push_back(s2.name);
    auto idx = StageGraph::Resolve(names, from);
    StageState src;
    if (auto built = idx ? Done(*idx) : std::nullopt) {
      src = std::move(*built);
    } else {
      auto img = store_.LoadImage(from);
      if (!img) return Unexpected(img.error().Wrap(fmt::format("RUN --mount from={}", from)));
      src.config = img->config;
      src.layers = img->manifest.layers;
      src.key = img->descriptor.digest;
    }
    STRATA_ASSIGN_OR_RETURN(auto lowers, Lowers(src));
    STRATA_ASSIGN_OR_RETURN(auto v, View::Mount(lowers, store_.SnapshotsDir()));
    fs::path root = v.root();
    mount_views.push_back(std::move(v));
    key.Add(src.key.ToString());
    return root;
  };
  for (const auto& m : run.mounts) {
    std::string target = m.target;
    if (m.type == "secret" && target.empty() && !m.env.empty()) {
      // env= alone: the secret reaches this RUN's environment only (never
      // the cache key, the history or a layer).
    } else if (m.type == "secret" && target.empty()) {
      target = "/run/secrets/" + (m.id.empty() ? fs::path(m.source).filename().string() : m.id);
    }
    // No target: BuildKit mounts at the WORKDIR; a relative one joins it.
    if (target.empty() && m.type != "secret") target = spec.cwd;
    if (!target.empty()) {
      if (target[0] != '/') target = spec.cwd + "/" + target;
      target = CleanAbs(target);
      if (target == "/") {
        return Fail(ins,
                    Error(ErrorCode::kInvalidArgument,
                          fmt::format("RUN --mount type={}: invalid mount target \"/\"", m.type)));
      }
    }
    key.Add(m.type).Add(target);
    if (m.type == "cache") {
      std::string id = m.id.empty() ? target : m.id;
      fs::path dir = store_.root() / "cache-mounts" / oci::Digest::Of(id).hex().substr(0, 32);
      key.Add(m.sharing).Add(m.readonly ? "ro" : "rw");
      // sharing=: every user of a cache holds its lock for the step: shared
      // users share it, `locked` users wait for sole use, and a `private`
      // user that cannot have it alone gets a fresh directory of its own.
      STRATA_RETURN_IF_ERROR(MakeDirs(dir.parent_path()));
      auto lock = OpenFile(dir.string() + ".lock", O_RDWR | O_CREAT, 0600);
      if (!lock) return Fail(ins, lock.error());
      bool own_dir = false;
      if (!locked_dirs.insert(dir).second) {
        // The same cache twice in one RUN: the first mount's lock covers it.
      } else if (m.sharing == "private") {
        if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
          auto fresh = ScopedTempDir::Create(store_.SnapshotsDir(), ".cache-private-");
          if (!fresh) return Fail(ins, fresh.error());
          dir = fresh->path() / "data";
          rw_copies.push_back(std::move(*fresh));
          own_dir = true;
        }
      } else {
        int how = m.sharing == "locked" ? LOCK_EX : LOCK_SH;
        while (::flock(lock->get(), how) != 0) {
          if (errno != EINTR) return Fail(ins, ErrnoError(errno, "lock cache mount").error());
        }
      }
      cache_locks.push_back(std::move(*lock));
      if (own_dir || !Exists(dir)) {
        // A new cache: seeded from `from`/`source` when given, then given
        // mode/uid/gid (applied on creation only, as BuildKit).
        ScopedTempDir seed_tmp;
        fs::path fresh = dir;
        if (!own_dir) {
          auto t = ScopedTempDir::Create(dir.parent_path(), ".new-");
          if (!t) return Fail(ins, t.error());
          seed_tmp = std::move(*t);
          fresh = seed_tmp.path() / "data";
        }
        if (!m.from.empty()) {
          auto root = from_root(m.from);
          if (!root) return Fail(ins, root.error());
          auto src = ResolveInRoot(*root, m.source.empty() ? "." : m.source, true);
          if (!src) return Fail(ins, src.error());
          std::error_code ec;
          fs::copy(*src, fresh, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
          if (ec) {
            return Fail(ins, Error(ErrorCode::kNotFound,
                                   fmt::format("RUN --mount=type=cache,from={},source={}: {}",
                                               m.from, m.source, ec.message())));
          }
        } else if (!m.source.empty()) {
          return Fail(ins, Error(ErrorCode::kInvalidArgument,
                                 "RUN --mount=type=cache: source= needs from="));
        }
        STRATA_RETURN_IF_ERROR(MakeDirs(fresh));
        mode_t mode = 0755;
        if (!m.mode.empty()) {
          auto md = ApplyChmod(m.mode, 0755, true);
          if (!md) return Fail(ins, md.error());
          mode = *md;
        }
        ::chmod(fresh.c_str(), mode);
        (void)::chown(fresh.c_str(), static_cast<uid_t>(m.uid.value_or(0)),
                      static_cast<gid_t>(m.gid.value_or(0)));
        if (!own_dir && ::rename(fresh.c_str(), dir.c_str()) != 0 && errno != EEXIST &&
            errno != ENOTEMPTY) {
          return Fail(ins, ErrnoError(errno, "create cache mount " + dir.string()).error());
        }
      }
      spec.binds.push_back({dir, target, m.readonly});
    } else if (m.type == "tmpfs") {
      spec.tmpfs.push_back({target, static_cast<uint64_t>(m.size.value_or(0)), 01777});
    } else if (m.type == "bind") {
      fs::path root = context_;
      if (!m.from.empty()) {
        auto r = from_root(m.from);
        if (!r) return Fail(ins, r.error());
        root = *r;
      }
      auto source = ResolveInRoot(root, m.source.empty() ? "." : m.source, true);
      if (!source) return Fail(ins, source.error());
      struct stat sst;
      if (::lstat(source->c_str(), &sst) != 0) {
        return Fail(ins,
                    Error(ErrorCode::kNotFound,
                          fmt::format("RUN --mount=type=bind: source {} not found", m.source)));
      }
      fs::path bind_source = *source;
      if (m.from.empty()) {
        // The bound context files, after .dockerignore; their content is part
        // of the key, so a change invalidates the step.
        std::string ctx_rel = source->lexically_relative(context_).generic_string();
        if (ctx_rel == ".") ctx_rel.clear();
        if (!ctx_rel.empty() && ignore_.Matches(ctx_rel)) {
          return Fail(ins, Error(ErrorCode::kNotFound,
                                 fmt::format("RUN --mount=type=bind: source {} is excluded by {}",
                                             m.source, ignore_.source().filename().string())));
        }
        std::vector<BindFile> files;
        bool excluded = false;
        if (S_ISDIR(sst.st_mode)) {
          ListBindSource(ignore_, *source, ctx_rel, "", files, excluded);
        } else {
          files.push_back({"", *source, sst});
        }
        for (const auto& f : files) {
          key.Add(f.rel).Add(std::to_string(f.st.st_mode));
          if (S_ISREG(f.st.st_mode)) {
            auto d = hasher_->Digest(f.path, f.st);
            if (!d) return Fail(ins, d.error());
            key.Add(*d);
          } else if (S_ISLNK(f.st.st_mode)) {
            std::error_code ec;
            key.Add(fs::read_symlink(f.path, ec).string());
          }
        }
        if (excluded) {
          // Bind a filtered tree instead of the context itself.
          auto filtered = ScopedTempDir::Create(store_.SnapshotsDir(), ".bindctx-");
          if (!filtered) return Fail(ins, filtered.error());
          bind_source = filtered->path() / "data";
          STRATA_RETURN_IF_ERROR(MakeDirs(bind_source));
          auto froot = RootDir::Open(bind_source);
          if (!froot) return Fail(ins, froot.error());
          if (auto made = MakeFilteredTree(*froot, files); !made) {
            return Fail(ins, made.error().Wrap("RUN --mount=type=bind: filter the context"));
          }
          rw_copies.push_back(std::move(*filtered));
        }
      }
      if (m.readonly) {
        spec.binds.push_back({bind_source, target, true});
      } else {
        // rw: writes land in a throwaway copy, never in the context or the
        // stage, and are discarded after the step (BuildKit's semantics).
        auto scratch = ScopedTempDir::Create(store_.SnapshotsDir(), ".bindrw-");
        if (!scratch) return Fail(ins, scratch.error());
        fs::path copy_path = scratch->path() / "data";
        std::error_code ec;
        fs::copy(bind_source, copy_path,
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
        if (ec) {
          return Fail(
              ins, Error(ErrorCode::kInternal, fmt::format("RUN --mount=type=bind,rw: copy {}: {}",
                                                           m.source, ec.message())));
        }
        spec.binds.push_back({copy_path, target, false});
        rw_copies.push_back(std::move(*scratch));
      }
    } else if (m.type == "secret") {
      std::string id = m.id.empty() ? fs::path(m.source).filename().string() : m.id;
      auto it = opts_.secrets.find(id);
      if (it == opts_.secrets.end()) {
        if (m.required) {
          return Fail(ins, Error(ErrorCode::kNotFound,
                                 fmt::format("secret {} not found (pass --secret id={},src=FILE)",
                                             id, id)));
        }
        continue;
      }
      const BuildOptions::Secret& secret = it->second;
      if (!m.env.empty()) {
        auto value = secret.value ? Result<std::string>(*secret.value) : ReadFile(secret.file);
        if (!value) return Fail(ins, value.error().Wrap(fmt::format("secret {}", id)));
        std::erase_if(spec.env, [&](const std::string& e) { return e.starts_with(m.env + "="); });
        spec.env.push_back(m.env + "=" + *value);
      }
      if (target.empty()) continue;
      if (secret.value || !m.mode.empty() || m.uid || m.gid) {
        // An environment secret mounted as a file: a 0400 file in a private
        // dir, removed after the step.
        auto dir = ScopedTempDir::Create(store_.SnapshotsDir(), ".secret-");
        if (!dir) return Fail(ins, dir.error());
        ::chmod(dir->path().c_str(), 0700);
        fs::path file = dir->path() / "value";
        // The secret as its own file: 0400 root by default, as BuildKit, or
        // the mount's mode=/uid=/gid=.
        auto content = secret.value ? Result<std::string>(*secret.value) : ReadFile(secret.file);
        if (!content) return Fail(ins, content.error().Wrap(fmt::format("secret {}", id)));
        mode_t mode = 0400;
        if (!m.mode.empty()) {
          auto md = ApplyChmod(m.mode, 0400, false);
          if (!md) return Fail(ins, md.error());
          mode = *md;
        }
        STRATA_RETURN_IF_ERROR(WriteFileAtomic(file, *content, mode));
        if (::chown(file.c_str(), static_cast<uid_t>(m.uid.value_or(0)),
                    static_cast<gid_t>(m.gid.value_or(0))) != 0) {
          return Fail(ins, ErrnoError(errno, "chown secret " + id).error());
        }
        ::chmod(file.c_str(), mode);
        ::chmod(dir->path().c_str(), 0711);
        spec.binds.push_back({file, target, true});
        rw_copies.push_back(std::move(*dir));
      } else {
        spec.binds.push_back({Absolute(secret.file), target, true});
      }
    } else {
      return Fail(ins, Error(ErrorCode::kUnimplemented,
                             fmt::format("RUN --mount=type={} is not supported yet", m.type)));
    }
  }
  oci::Digest k = key.Finish();
  int id = ++step_;
  progress_.StepStart(id, label);
  auto start = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) return OkStatus();
  auto lowers = Lowers(st);
  if (!lowers) return Fail(ins, lowers.error());
  STRATA_ASSIGN_OR_RETURN(auto work, ScopedTempDir::Create(store_.SnapshotsDir(), ".run-"));
  for (const char* d : {"upper", "work", "merged"})
    STRATA_RETURN_IF_ERROR(MakeDirs(work.path() / d));
  if (lowers->empty()) {
    STRATA_RETURN_IF_ERROR(MakeDirs(work.path() / "empty"));
    lowers->push_back(work.path() / "empty");
  }
  OverlayOptions oo;
  oo.lower_dirs = *lowers;
  oo.upper_dir = work.path() / "upper";
  oo.work_dir = work.path() / "work";
  oo.mountpoint = work.path() / "merged";
  auto mount = OverlayMount::Mount(oo);
  if (!mount) return Fail(ins, mount.error().Wrap("mount overlay"));
  spec.rootfs = oo.mountpoint;
  StepSink out(progress_, id);
  TailSink tail(&out, 20);
  auto rc = runner_.Run(spec, tail);
  STRATA_RETURN_IF_ERROR(mount->Unmount());
  if (!rc) return Fail(ins, rc.error().Wrap(fmt::format("RUN {}", JoinArgs(spec.args))));
  if (*rc != 0) {
    std::string msg = fmt::format("{}: exit code {}", ins.original, *rc);
    auto lines = tail.Tail();
    if (!lines.empty()) {
      msg += "\n--- last output ---";
      for (const auto& l : lines) msg += "\n" + l;
    }
    return Fail(ins, Error(ErrorCode::kFailedPrecondition, msg));
  }
  fs::path upper = work.path() / "upper";
  PruneCopiedUpDirs(upper, *lowers, "");
  bool empty = IsEmptyDir(upper);
  CacheRecord rec;
  rec.created_by = created_by;
  rec.empty_layer = empty;
  if (!empty) {
    oci::LayerWriterOptions lo;
    lo.compress = opts_.compression;
    lo.tar.overlay_upper = true;
    lo.tar.source_date_epoch = opts_.source_date_epoch;
    auto info = CommitWithProgress(store_, upper, lo, out);
    if (!info) return Fail(ins, info.error().Wrap("commit layer"));
    rec.layer = info->descriptor;
    rec.diff_id = info->diff_id;
    STRATA_RETURN_IF_ERROR(AddLayer(st, *info, upper));
  }
  Committed(st, k, std::move(rec));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress_.StepDone(id, false, secs);
  return OkStatus();
}

// A directory and the mtime it gets once nothing more is added below it.
struct DirTime {
  std::string dest;
  struct timespec mtime;
};

// Directory mtimes, deepest last-created first, once nothing is added below.
void FinishDirTimes(const RootDir& root, const std::vector<DirTime>& dir_times) {
  for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it) {
    int fd = OpenInRoot(root.fd(), it->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) continue;  // replaced by a later entry: its own times apply
    UniqueFd owner(fd);
    struct timespec times[2] = {it->mtime, it->mtime};
    ::futimens(fd, times);
  }
}

// Makes the directories of `dir` (an image path, links already resolved) in
// the staging root as the image has them: a directory that exists in the
// image keeps its mode, owner and mtime in the layer (a layer that re-creates
// /home/u as root:root 0755 would take the user's home away); a missing one is
// made 0755 and owned by `uid`:`gid` (COPY --chown, WORKDIR under USER), as
// BuildKit does.
Status MakeDirsLikeImage(const RootDir& root, const fs::path& image_root, std::string_view dir,
                         uid_t uid, gid_t gid, std::vector<DirTime>& dir_times) {
  std::string prefix;
  for (const auto& part : fs::path(CleanAbs(dir)).relative_path()) {
    prefix.push_back('/');
    prefix.append(part.native());
    struct stat ist;
    bool in_image = !image_root.empty() && ::lstat(Under(image_root, prefix).c_str(), &ist) == 0 &&
                    S_ISDIR(ist.st_mode);
    STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(prefix, /*create_parents=*/false));
    struct stat cur;
    if (::fstatat(at.dir.get(), at.name.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (::mkdirat(at.dir.get(), at.name.c_str(), 0700) != 0) {
      return ErrnoError(errno, fmt::format("mkdir {}", prefix));
    }
    int fd =
        ::openat(at.dir.get(), at.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, fmt::format("open {}", prefix));
    UniqueFd d(fd);
    uid_t u = in_image ? ist.st_uid : uid;
    gid_t g = in_image ? ist.st_gid : gid;
    if (::fchown(fd, u, g) != 0) return ErrnoError(errno, "chown " + prefix);
    if (::fchmod(fd, in_image ? (ist.st_mode & 07777) : 0755) != 0) {
      return ErrnoError(errno, "chmod " + prefix);
    }
    if (in_image) dir_times.push_back({prefix, ist.st_mtim});
  }
  return OkStatus();
}

Status Build::DoWorkdir(const Instruction& ins, StageState& st, const std::string& label) {
  const auto& w = std::get<WorkdirCommand>(ins.command);
  std::string path = w.path;
  if (path.empty() || path[0] != '/') {
    path = (st.config.config.working_dir.empty() ? "/" : st.config.config.working_dir) + "/" + path;
  }
  path = CleanAbs(path);
  st.config.config.working_dir = path;
  int id = ++step_;
  progress_.StepStart(id, label);
  std::string created_by = fmt::format("WORKDIR {}", path);
  CacheKey key("WORKDIR");
  key.Add(st.key.ToString()).Add(path);
  oci::Digest k = key.Finish();
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) return OkStatus();
  // Docker creates the directory when it does not exist yet.
  auto lowers = Lowers(st);
  if (!lowers) return Fail(ins, lowers.error());
  bool exists = false;
  std::string in_image = path;  // where the directory is made, links resolved
  STRATA_ASSIGN_OR_RETURN(auto view, View::Mount(*lowers, store_.SnapshotsDir()));
  auto resolved = ResolveInRoot(view.root(), path, true);
  exists = resolved && IsDir(*resolved);
  if (resolved) in_image = CleanAbs("/" + resolved->lexically_relative(view.root()).string());
  CacheRecord rec;
  rec.created_by = created_by;
  rec.empty_layer = exists;
  if (!exists) {
    STRATA_ASSIGN_OR_RETURN(auto staging, ScopedTempDir::Create(store_.SnapshotsDir(), ".copy-"));
    fs::path fsdir = staging.path() / "fs";
    STRATA_RETURN_IF_ERROR(MakeDirs(fsdir));
    STRATA_ASSIGN_OR_RETURN(auto root, RootDir::Open(fsdir));
    // Directories WORKDIR creates belong to the USER in effect (BuildKit);
    // those the image has keep their metadata.
    uid_t uid = 0;
    gid_t gid = 0;
    if (const std::string& user = st.config.config.user; !user.empty()) {
      auto ru = ResolveUser(view.root(), user);
      if (!ru) return Fail(ins, ru.error().Wrap(fmt::format("WORKDIR {}: USER {}", path, user)));
      uid = ru->uid;
      gid = ru->gid;
    }
    std::vector<DirTime> dir_times;
    if (auto made = MakeDirsLikeImage(root, view.root(), in_image, uid, gid, dir_times); !made) {
      return Fail(ins, made.error().Wrap(fmt::format("WORKDIR {}", path)));
    }
    FinishDirTimes(root, dir_times);
    oci::LayerWriterOptions lo;
    lo.compress = opts_.compression;
    lo.tar.source_date_epoch = opts_.source_date_epoch;
    auto info = oci::CommitLayer(store_, fsdir, lo);
    if (!info) return Fail(ins, info.error());
    rec.layer = info->descriptor;
    rec.diff_id = info->diff_id;
    STRATA_RETURN_IF_ERROR(AddLayer(st, *info, fsdir));
  }
  Committed(st, k, std::move(rec));
  progress_.StepDone(id, false, 0);
  return OkStatus();
}

// Copies one entry into the staging tree. Every operation is confined to
// `root` (oci/util/in_root.h): parent directories resolve inside it, and the
// entry itself is never followed — a link that an earlier source of the same
// COPY planted at this name is replaced, never written, chmod'ed or chown'ed
// through. A directory's mtime is set by FinishDirTimes after its children
// are in place (adding them would move it).

Status Materialize(const RootDir& root, const CopyEntry& e, std::optional<uint32_t> uid,
                   std::optional<uint32_t> gid, std::optional<mode_t> mode_override,
                   std::vector<DirTime>& dir_times) {
  uid_t u = uid ? *uid : 0;
  gid_t g = gid ? *gid : 0;
  if (e.dest == "/" && !e.is_heredoc && S_ISDIR(e.st.st_mode)) {
    // A directory copied onto "/": its metadata goes to the root itself.
    if (::fchown(root.fd(), u, g) != 0) return ErrnoError(errno, "chown /");
    if (::fchmod(root.fd(), mode_override ? *mode_override : (e.st.st_mode & 07777)) != 0) {
      return ErrnoError(errno, "chmod /");
    }
    dir_times.push_back({e.dest, e.st.st_mtim});
    return OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(e.dest, /*create_parents=*/true));
  const int dfd = at.dir.get();
  const char* name = at.name.c_str();
  struct stat cur;
  bool exists = ::fstatat(dfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0;
  bool exists_as_dir = exists && S_ISDIR(cur.st_mode);
  // Whatever an earlier entry left at this name goes, unless both are dirs.
  auto clear = [&](bool keep_dir) -> Status {
    if (!exists || (keep_dir && exists_as_dir)) return OkStatus();
    return RemoveTreeAt(dfd, at.name);
  };
  auto create_file = [&]() -> Result<UniqueFd> {
    int fd = ::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError(errno, fmt::format("create {}", e.dest));
    return UniqueFd(fd);
  };
  if (e.is_heredoc) {
    STRATA_RETURN_IF_ERROR(clear(false));
    STRATA_ASSIGN_OR_RETURN(auto out, create_file());
    STRATA_RETURN_IF_ERROR(WriteAll(out.get(), e.content.data(), e.content.size()));
    if (::fchown(out.get(), u, g) != 0) return ErrnoError(errno, "chown " + e.dest);
    if (::fchmod(out.get(), mode_override ? *mode_override : 0644) != 0) {
      return ErrnoError(errno, "chmod " + e.dest);
    }
    return OkStatus();
  }
  const struct stat& st = e.st;
  mode_t mode = mode_override ? *mode_override : (st.st_mode & 07777);
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(e.src.c_str(), buf, sizeof(buf) - 1);
    if (n < 0) return ErrnoError(errno, fmt::format("readlink {}", e.src.string()));
    STRATA_RETURN_IF_ERROR(clear(false));
    if (::symlinkat(std::string(buf, static_cast<size_t>(n)).c_str(), dfd, name) != 0) {
      return ErrnoError(errno, fmt::format("symlink {}", e.dest));
    }
    if (::fchownat(dfd, name, u, g, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "chown " + e.dest);
    }
    ::utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW);
    return OkStatus();
  }
  UniqueFd out;
  if (S_ISDIR(st.st_mode)) {
    STRATA_RETURN_IF_ERROR(clear(true));
    if (!exists_as_dir && ::mkdirat(dfd, name, 0700) != 0) {
      return ErrnoError(errno, fmt::format("mkdir {}", e.dest));
    }
    int fd = ::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, fmt::format("open {}", e.dest));
    out.Reset(fd);
    dir_times.push_back({e.dest, st.st_mtim});
  } else if (S_ISREG(st.st_mode)) {
    // The source is never followed either: a context file swapped for a
    // link after it was listed is refused, not read through.
    STRATA_ASSIGN_OR_RETURN(auto in, OpenFile(e.src, O_RDONLY | O_NOFOLLOW));
    STRATA_RETURN_IF_ERROR(clear(false));
    STRATA_ASSIGN_OR_RETURN(out, create_file());
    STRATA_RETURN_IF_ERROR(CopyContents(in.get(), out.get(), st.st_size, e.src));
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "cannot copy {}: not a file, directory or symlink", e.src.string());
  }
  // chown first: it clears set-id bits that chmod then sets.
  if (::fchown(out.get(), u, g) != 0) return ErrnoError(errno, "chown " + e.dest);
  if (::fchmod(out.get(), mode) != 0) return ErrnoError(errno, "chmod " + e.dest);
  if (!S_ISDIR(st.st_mode)) ::futimens(out.get(), times);
  return OkStatus();
}

Status Build::DoCopy(const Instruction& ins, const CopyCommand& copy, StageState& st,
                     const std::string& label) {
  const char* verb = copy.add ? "ADD" : "COPY";
  int id = ++step_;
  progress_.StepStart(id, label);
  auto start = std::chrono::steady_clock::now();
  // Source root: the context, another stage's file system, or an image's.
  fs::path src_root = context_;
  std::optional<View> from_view;
  std::string from_key;
  const DockerIgnore* ignore = &ignore_;
  if (!copy.from.empty()) {
    ignore = nullptr;
    std::vector<std::string> names;
    for (const auto& s : plan_.stages) names.push_back(s.name);
    auto stage_idx = StageGraph::Resolve(names, copy.from);
    StageState src;
    if (stage_idx) {
      auto built = Done(*stage_idx);
      if (!built) {
        return Fail(ins, Error(ErrorCode::kInternal, fmt::format("stage {} not built", copy.from)));
      }
      src = std::move(*built);
      from_key = src.key.ToString();
    } else {
      auto img = store_.LoadImage(copy.from);
      if (!img && opts_.resolver) {
        auto ref = oci::Reference::Parse(copy.from);
        if (ref) {
          auto d = opts_.resolver(*ref, oci::Platform::Host());
          if (d) img = store_.LoadImage(*d);
        }
      }
      if (!img) return Fail(ins, img.error().Wrap(fmt::format("{} --from={}", verb, copy.from)));
      src.config = img->config;
      src.layers = img->manifest.layers;
      from_key = img->descriptor.digest.ToString();
    }
    auto lowers = Lowers(src);
    if (!lowers) return Fail(ins, lowers.error());
    auto v = View::Mount(*lowers, store_.SnapshotsDir());
    if (!v) return Fail(ins, v.error());
    from_view = std::move(*v);
    src_root = from_view->root();
  }

  // Resolve the destination.
  std::string workdir = st.config.config.working_dir.empty() ? "/" : st.config.config.working_dir;
  std::string dest = copy.dest;
  bool dest_dir = dest.ends_with("/") || dest.ends_with("/.") || dest == ".";
  if (dest.empty() || dest[0] != '/') dest = workdir + "/" + dest;
  dest = CleanAbs(dest);

  // Select sources.
  struct Selected {
    fs::path path;
    std::string rel;  // relative to the source root
    struct stat st;
    std::string keep;  // what --parents keeps: rel, or what follows a "/./" pivot
  };
  // COPY --parents a/./b/c: the part before the "/./" pivot is dropped
  // (BuildKit); without a pivot every parent is kept.
  auto parents_keep = [](std::string_view raw, const std::string& rel) {
    std::string_view r = raw;
    while (r.starts_with("./")) r.remove_prefix(2);
    size_t pivot = r.find("/./");
    if (pivot == std::string_view::npos) return rel;
    std::string prefix = CleanPath(r.substr(0, pivot));
    while (prefix.starts_with("/")) prefix.erase(0, 1);
    if (prefix == "." || prefix.empty()) return rel;
    if (rel == prefix) return std::string();
    if (rel.starts_with(prefix + "/")) return rel.substr(prefix.size() + 1);
    return rel;
  };
  std::vector<Selected> selected;
  std::optional<DockerIgnore> excludes;
  if (!copy.excludes.empty()) {
    std::string text;
    for (const auto& e : copy.excludes) text += e + "\n";
    auto ex = DockerIgnore::Parse(text, "--exclude");
    if (!ex) return Fail(ins, ex.error());
    excludes = std::move(*ex);
  }
  // .dockerignore paths are relative to the context; --exclude patterns to
  // the copy source (the context for wildcard sources, the directory for a
  // directory source), as BuildKit applies them.
  auto ignored = [&](const std::string& context_rel) {
    return ignore && ignore->Matches(context_rel);
  };
  auto excluded = [&](const std::string& context_rel) {
    return ignored(context_rel) || (excludes && excludes->Matches(context_rel));
  };
  std::function<void(const fs::path&, const std::string&, std::vector<std::string>&)> walk =
      [&](const fs::path& dir, const std::string& rel, std::vector<std::string>& out) {
        for (const auto& n : SortedNames(dir)) {
          std::string r = rel.empty() ? n : rel + "/" + n;
          out.push_back(r);
          struct stat s;
          if (::lstat((dir / n).c_str(), &s) == 0 && S_ISDIR(s.st_mode)) walk(dir / n, r, out);
        }
      };
  bool multi = copy.sources.size() + copy.source_contents.size() > 1;
  std::vector<std::string> urls;  // ADD sources fetched below
  for (const auto& raw_src : copy.sources) {
    if (copy.add && IsGitSource(raw_src)) {
      return Fail(ins, Error(ErrorCode::kUnimplemented,
                             fmt::format("ADD {}: git sources are not supported yet", raw_src)));
    }
    if (copy.add && (raw_src.starts_with("http://") || raw_src.starts_with("https://"))) {
      urls.push_back(raw_src);
      continue;
    }
    std::string rel = CleanPath(raw_src);
    while (rel.starts_with("/")) rel = rel.substr(1);
    if (rel == ".." || rel.starts_with("../")) {
      return Fail(ins,
                  Error(ErrorCode::kInvalidArgument,
                        fmt::format("{} {}: source is outside the build context", verb, raw_src)));
    }
    if (rel == ".") rel = "";
    if (HasGlob(rel)) {
      multi = true;
      std::vector<std::string> all;
      walk(src_root, "", all);
      for (const auto& r : all) {
        if (::fnmatch(rel.c_str(), r.c_str(), FNM_PATHNAME) != 0 || excluded(r)) continue;
        Selected s{src_root / r, r, {}, parents_keep(raw_src, r)};
        if (::lstat(s.path.c_str(), &s.st) != 0) continue;
        selected.push_back(std::move(s));
      }
      continue;
    }
    auto resolved = ResolveInRoot(src_root, rel, false);
    if (!resolved) return Fail(ins, resolved.error());
    Selected s{*resolved, rel, {}, parents_keep(raw_src, rel)};
    if ((!rel.empty() && ignored(rel)) || ::lstat(s.path.c_str(), &s.st) != 0) {
      return Fail(ins, Error(ErrorCode::kNotFound,
                             fmt::format("{} failed: file not found in build context or excluded "
                                         "by .dockerignore: stat {}: file does not exist",
                                         verb, raw_src)));
    }
    selected.push_back(std::move(s));
  }
  if (copy.keep_git_dir) {
    return Fail(ins, Error(ErrorCode::kUnimplemented,
                           "ADD --keep-git-dir: git sources are not supported yet"));
  }
  if (!copy.checksum.empty() && (urls.size() != 1 || !selected.empty())) {
    return Fail(ins,
                Error(ErrorCode::kInvalidArgument, "ADD --checksum needs exactly one URL source"));
  }
  // ADD <url>: download (through the injected fetcher) into a temp file,
  // verify --checksum, then treat it as a 0600 file named after the URL path.
  std::optional<ScopedTempDir> downloads;
  struct Downloaded {
    fs::path file;
    std::string name;
    struct stat st;
  };
  std::vector<Downloaded> fetched;
  for (const auto& url : urls) {
    if (!opts_.fetcher) {
      return Fail(ins, Error(ErrorCode::kUnimplemented,
                             fmt::format("ADD {}: no URL fetcher configured", url)));
    }
    if (!downloads) {
      auto d = ScopedTempDir::Create(store_.IngestDir(), "add-");
      if (!d) return Fail(ins, d.error());
      downloads = std::move(*d);
    }
    fs::path file = downloads->path() / std::to_string(fetched.size());
    std::string last_modified;
    if (auto s2 = opts_.fetcher(url, file, &last_modified); !s2) {
      return Fail(ins, s2.error().Wrap(fmt::format("ADD {}", url)));
    }
    if (!copy.checksum.empty()) {
      auto want = oci::Digest::Parse(copy.checksum);
      if (!want) return Fail(ins, want.error().Wrap("ADD --checksum"));
      auto got = oci::DigestFile(file.string());
      if (!got) return Fail(ins, got.error());
      if (*got != *want) {
        return Fail(ins, Error(ErrorCode::kFailedPrecondition,
                               fmt::format("ADD {}: checksum mismatch: expected {}, got {}", url,
                                           want->ToString(), got->ToString())));
      }
    }
    Downloaded dl{file, "", {}};
    std::string path = url.substr(url.find("://") + 3);
    path = path.substr(0, path.find_first_of("?#"));
    auto slash = path.rfind('/');
    dl.name = slash == std::string::npos || slash + 1 == path.size() ? "index.html"
                                                                     : path.substr(slash + 1);
    ::stat(file.c_str(), &dl.st);
    dl.st.st_mode = S_IFREG | 0600;
    int64_t mtime = opts_.source_date_epoch ? *opts_.source_date_epoch : std::time(nullptr);
    std::tm tm{};
    if (!last_modified.empty() &&
        ::strptime(last_modified.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) != nullptr) {
      mtime = ::timegm(&tm);
    }
    dl.st.st_mtim = {static_cast<time_t>(mtime), 0};
    fetched.push_back(std::move(dl));
  }
  multi = multi || (urls.size() + selected.size() > 1);
  if (selected.empty() && copy.source_contents.empty() && fetched.empty()) {
    return Fail(ins, Error(ErrorCode::kNotFound,
                           fmt::format("{} failed: no source files were specified", verb)));
  }
  // If the destination exists as a directory in the image, copy into it.
  std::optional<View> target_view;
  auto target_root = [&]() -> Result<fs::path> {
    if (!target_view) {
      STRATA_ASSIGN_OR_RETURN(auto lowers, Lowers(st));
      STRATA_ASSIGN_OR_RETURN(auto v, View::Mount(lowers, store_.SnapshotsDir()));
      target_view = std::move(v);
    }
    return target_view->root();
  };
  if (!dest_dir && !multi && !copy.link &&
      !(selected.size() == 1 && S_ISDIR(selected[0].st.st_mode))) {
    auto root = target_root();
    if (!root) return Fail(ins, root.error());
    auto r = ResolveInRoot(*root, dest, true);
    if (r && IsDir(*r)) dest_dir = true;
  }
  if (multi && !dest_dir) {
    return Fail(ins, Error(ErrorCode::kInvalidArgument,
                           fmt::format("When using {} with more than one source file, the "
                                       "destination must be a directory and end with a /",
                                       verb)));
  }
  // Docker resolves the destination's directories through the image's own
  // symlinks, inside the image: `COPY x /bin/` on a usrmerged image lands in
  // /usr/bin, and a link an earlier layer planted can only point inside the
  // image. The final name is followed only when it is the destination dir.
  if (dest != "/" && !st.layers.empty() && !copy.link) {
    auto root = target_root();
    if (!root) return Fail(ins, root.error());
    std::string dir = dest_dir ? dest : fs::path(dest).parent_path().string();
    auto r = ResolveInRoot(*root, dir, true);
    if (!r) return Fail(ins, r.error().Wrap(fmt::format("{} destination {}", verb, dest)));
    std::string resolved = CleanAbs("/" + r->lexically_relative(*root).string());
    dest = dest_dir ? resolved : CleanAbs(resolved + "/" + fs::path(dest).filename().string());
  }
  // Owner.
  std::optional<uint32_t> uid, gid;
  if (!copy.chown.empty()) {
    std::string user = copy.chown, group;
    if (auto c = user.find(':'); c != std::string::npos) {
      group = user.substr(c + 1);
      user = user.substr(0, c);
    }
    if (IsNumeric(user) && (group.empty() || IsNumeric(group))) {
      auto id = [](std::string_view v) -> std::optional<uint32_t> {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size() || n > 2147483647) return std::nullopt;
        return static_cast<uint32_t>(n);
      };
      uid = id(user);
      gid = group.empty() ? uid : id(group);
      if (!uid || !gid) {
        return Fail(ins, Error(ErrorCode::kInvalidArgument,
                               fmt::format("{} --chown={}: uids and gids must be in range "
                                           "0-2147483647",
                                           verb, copy.chown)));
      }
    } else {
      auto root = target_root();
      if (!root) return Fail(ins, root.error());
      auto ru = ResolveUser(*root, copy.chown);
      if (!ru) return Fail(ins, ru.error().Wrap(fmt::format("{} --chown={}", verb, copy.chown)));
      uid = ru->uid;
      gid = ru->gid;  // the named group, or the user's primary group
    }
  }
  // Expand directories into entries and hash them for the cache key.
  std::vector<CopyEntry> entries;
  std::vector<fs::path> tar_sources;  // ADD of a local archive: extracted
  for (const auto& s : selected) {
    std::string base = s.rel.empty() ? "" : fs::path(s.rel).filename().string();
    if (S_ISDIR(s.st.st_mode)) {
      std::string dbase = copy.parents && !s.keep.empty() ? dest + "/" + s.keep : dest;
      entries.push_back({CleanAbs(dbase), s.path, s.st, "", false});
      std::vector<std::string> children;
      walk(s.path, "", children);
      for (const auto& c : children) {
        std::string crel = s.rel.empty() ? c : s.rel + "/" + c;
        if (ignored(crel) || (excludes && excludes->Matches(c))) continue;
        CopyEntry e{CleanAbs(dbase + "/" + c), s.path / c, {}, "", false};
        if (::lstat(e.src.c_str(), &e.st) != 0) continue;
        entries.push_back(std::move(e));
      }
      continue;
    }
    if (copy.add && copy.unpack.value_or(true) && S_ISREG(s.st.st_mode)) {
      auto is_tar = IsTarArchive(s.path);
      if (!is_tar) return Fail(ins, is_tar.error());
      if (*is_tar) {
        tar_sources.push_back(s.path);
        entries.push_back({"<archive>" + s.rel, s.path, s.st, "", false});
        continue;
      }
    }
    std::string target = dest_dir ? dest + "/" + (copy.parents ? s.keep : base) : dest;
    entries.push_back({CleanAbs(target), s.path, s.st, "", false});
  }
  for (const auto& dl : fetched) {
    if (copy.unpack.value_or(false)) {
      // ADD --unpack=true <url>: a downloaded archive is extracted.
      auto is_tar = IsTarArchive(dl.file);
      if (!is_tar) return Fail(ins, is_tar.error());
      if (*is_tar) {
        tar_sources.push_back(dl.file);
        entries.push_back({"<archive>" + dl.name, dl.file, dl.st, "", false});
        continue;
      }
    }
    entries.push_back(
        {CleanAbs(dest_dir ? dest + "/" + dl.name : dest), dl.file, dl.st, "", false});
  }
  for (const auto& h : copy.source_contents) {
    CopyEntry e;
    e.dest = CleanAbs(dest_dir ? dest + "/" + h.name : dest);
    e.is_heredoc = true;
    e.content = h.content;
    entries.push_back(std::move(e));
  }
  auto hash_start = std::chrono::steady_clock::now();
  CacheKey key(verb);
  // COPY --link: the layer does not depend on what it lands on, so its key
  // leaves the parent out and a changed base reuses it (BuildKit's rebase);
  // the stage's chain key still follows the parent (see below).
  key.Add(copy.link ? std::string("link") : st.key.ToString())
      .Add(ins.original)
      .Add(dest)
      .Add(copy.chown)
      .Add(copy.chmod);
  key.Add(copy.unpack ? (*copy.unpack ? "unpack" : "no-unpack") : "");
  key.Add(from_key);
  for (const auto& e : entries) {
    key.Add(e.dest);
    if (e.is_heredoc) {
      key.Add("heredoc").Add(e.content);
      continue;
    }
    key.Add(fmt::format("{:o}:{}:{}:{}", e.st.st_mode, e.st.st_uid, e.st.st_gid,
                        S_ISREG(e.st.st_mode) ? e.st.st_size : 0));
    if (!from_key.empty()) continue;  // content follows from the source's key
    if (S_ISREG(e.st.st_mode)) {
      bool downloaded = downloads && e.src.parent_path() == downloads->path();
      Result<std::string> d = std::string();
      if (downloaded) {
        auto dd = oci::DigestFile(e.src.string());
        if (!dd) return Fail(ins, dd.error());
        d = dd->ToString();
      } else {
        d = hasher_->Digest(e.src, e.st);
      }
      if (!d) return Fail(ins, d.error());
      key.Add(*d);
    } else if (S_ISLNK(e.st.st_mode)) {
      std::error_code ec;
      key.Add(fs::read_symlink(e.src, ec).string());
    }
  }
  oci::Digest k = key.Finish();
  {
    // The context "transfer": how much this step had to check (memoized
    // digests make an unchanged context cheap; this line shows it).
    int64_t files = 0, bytes = 0;
    for (const auto& e : entries) {
      if (!e.is_heredoc && S_ISREG(e.st.st_mode)) {
        ++files;
        bytes += e.st.st_size;
      }
    }
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - hash_start).count();
    if (files > 0) {
      double mb = static_cast<double>(bytes) / 1e6;
      progress_.StepOutput(id, OutputStream::kStderr,
                           fmt::format("{}: {} files, {:.1f} MB checked in {:.2f}s ({:.0f} MB/s)",
                                       from_key.empty() ? "context" : "source", files, mb, secs,
                                       secs > 0 ? mb / secs : 0.0));
    }
  }
  std::string created_by = CreatedBy(ins, {}, {});
  const oci::Digest parent_key = st.key;
  auto chain_link = [&] {
    if (copy.link) st.key = CacheKey("LINK").Add(parent_key.ToString()).Add(k.ToString()).Finish();
  };
  // A --link layer's key does not depend on the steps before it, so it may
  // be reused even after one of them missed.
  const bool was_broken = st.cache_broken;
  if (copy.link) st.cache_broken = false;
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) {
    st.cache_broken = was_broken;
    chain_link();
    return OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(auto staging, ScopedTempDir::Create(store_.SnapshotsDir(), ".copy-"));
  fs::path fsroot = staging.path() / "fs";
  STRATA_RETURN_IF_ERROR(MakeDirs(fsroot));
  auto root = RootDir::Open(fsroot);
  if (!root) return Fail(ins, root.error());
  std::vector<DirTime> dir_times;
  {
    // The destination's directories, as the image has them.
    fs::path image_root;
    if (target_view && !copy.link) image_root = target_view->root();
    std::string dest_parent = dest_dir ? dest : fs::path(dest).parent_path().string();
    auto made = MakeDirsLikeImage(*root, image_root, dest_parent, uid.value_or(0), gid.value_or(0),
                                  dir_times);
    if (!made) return Fail(ins, made.error().Wrap(fmt::format("{} {}", verb, dest)));
    if (copy.parents) {
      // --parents makes the sources' parent directories below the
      // destination: those the image has keep its metadata too.
      if (!target_view && !copy.link && !st.layers.empty()) {
        auto r = target_root();
        if (!r) return Fail(ins, r.error());
      }
      if (target_view && !copy.link) image_root = target_view->root();
      std::string last;
      for (const auto& e : entries) {
        if (e.dest.starts_with("<archive>")) continue;
        std::string parent = fs::path(e.dest).parent_path().string();
        if (parent == last) continue;
        last = parent;
        auto p = MakeDirsLikeImage(*root, image_root, parent, uid.value_or(0), gid.value_or(0),
                                   dir_times);
        if (!p) return Fail(ins, p.error().Wrap(fmt::format("{} {}", verb, e.dest)));
      }
    }
  }
  for (const auto& e : entries) {
    if (e.dest.starts_with("<archive>")) continue;
    std::optional<mode_t> mode;
    if (!copy.chmod.empty()) {
      auto m = ApplyChmod(copy.chmod, e.is_heredoc ? 0644 : e.st.st_mode, S_ISDIR(e.st.st_mode));
      if (!m) return Fail(ins, m.error());
      mode = *m;
    }
    auto s = Materialize(*root, e, uid, gid, mode, dir_times);
    if (!s) return Fail(ins, s.error().Wrap(fmt::format("{} {}", verb, e.dest)));
  }
  for (const auto& archive : tar_sources) {
    // The destination is made inside the root, then handed to the applier
    // by its canonical path (no links left in it; the applier resolves every
    // entry inside it again).
    auto dir = root->MakeDirs(dest);
    if (!dir) return Fail(ins, dir.error().Wrap(fmt::format("ADD {}", dest)));
    std::error_code ec;
    fs::path target = fs::read_symlink(fmt::format("/proc/self/fd/{}", dir->get()), ec);
    if (ec || !target.string().starts_with(fsroot.string())) {
      return Fail(ins, Error(ErrorCode::kInternal,
                             fmt::format("ADD {}: destination left the staging root", dest)));
    }
    auto src = OpenDecompressed(archive);
    if (!src) return Fail(ins, src.error());
    oci::ApplyOptions ao;
    ao.preserve_owners = ::geteuid() == 0;
    ao.max_uncompressed_bytes = opts_.max_layer_bytes;
    auto r =
        oci::ApplyTar(src->get(), oci::Compression::kNone, target, ao, archive.filename().string());
    if (!r) return Fail(ins, r.error().Wrap(fmt::format("ADD {}", archive.filename().string())));
  }
  FinishDirTimes(*root, dir_times);
  oci::LayerWriterOptions lo;
  lo.compress = opts_.compression;
  lo.tar.source_date_epoch = opts_.source_date_epoch;
  StepSink out(progress_, id);
  auto info = CommitWithProgress(store_, fsroot, lo, out);
  if (!info) return Fail(ins, info.error().Wrap("commit layer"));
  CacheRecord rec;
  rec.created_by = created_by;
  rec.layer = info->descriptor;
  rec.diff_id = info->diff_id;
  STRATA_RETURN_IF_ERROR(AddLayer(st, *info, fsroot));
  Committed(st, k, std::move(rec));
  chain_link();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress_.StepDone(id, false, secs);
  return OkStatus();
}

}  // namespace

Result<BuildResult> Executor::Build(const BuildOptions& options) {
  // `--build-arg SOURCE_DATE_EPOCH=N` is BuildKit's documented way to set
  // the epoch; it acts as the environment variable does (and wins over it).
  BuildOptions o = options;
  if (auto it = o.build_args.find("SOURCE_DATE_EPOCH"); it != o.build_args.end()) {
    int64_t v = -1;
    const std::string& t = it->second;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--build-arg SOURCE_DATE_EPOCH={}: not a unix time", t);
    }
    o.source_date_epoch = v;
  }
  class Build b(store_, runner_, progress_, o);
  return b.Run();
}

}  // namespace strata::builder
