// The orchestrator: parse, schedule stages, seed each from its base, and
// dispatch instructions to the steps (build.h lists the files).
#include <algorithm>
#include <chrono>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/engine/config_edit.h"
#include "builder/engine/no_cache_filter.h"
#include "builder/engine/staging.h"
#include "builder/frontend/base_use.h"
#include "builder/frontend/build_args.h"
#include "builder/runtime/binfmt.h"
#include "oci/json_util.h"
#include "oci/media_types.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"
#include "oci/util/parallel.h"
#include "oci/util/userns.h"

namespace strata::builder {
namespace fs = std::filesystem;

std::string Located(std::string_view file, const Instruction& ins, std::string_view what) {
  return fmt::format("{}:{}: {}", file, ins.start_line, what);
}

std::string Build::Now() const {
  int64_t t = opts_.source_date_epoch ? *opts_.source_date_epoch : clock_.UnixSeconds();
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
Result<std::vector<fs::path>> Build::Lowers(const StageState& st) {
  oci::SnapshotOptions so;
  so.allow_devices = ::geteuid() == 0 && !InUserNamespace();
  so.skip_devices = InUserNamespace();
  so.preserve_owners = ::geteuid() == 0;
  so.max_uncompressed_bytes = opts_.max_layer_bytes;
  std::vector<fs::path> out;
  // A lazy base layer is fetched before anything unpacks it.
  STRATA_RETURN_IF_ERROR(FetchLazyLayers(st.layers, "base layer"));
  for (size_t i = st.layers.size(); i-- > 0;) {
    oci::Digest chain = oci::ChainId(std::span(st.config.diff_ids).first(i + 1));
    STRATA_ASSIGN_OR_RETURN(
        auto p, oci::EnsureSnapshot(store_, chain, st.layers[i], st.config.diff_ids[i], so));
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::unique_ptr<Mounted>> Build::ViewOf(const StageState& st) {
  STRATA_ASSIGN_OR_RETURN(auto lowers, Lowers(st));
  return snapshotter_.View(lowers, store_.SnapshotsDir());
}

Result<oci::LayerInfo> Build::Commit(const fs::path& dir, bool overlay_upper, OutputSink& out) {
  oci::LayerWriterOptions lo;
  lo.compress = opts_.compression;
  lo.tar.overlay_upper = overlay_upper;
  lo.tar.source_date_epoch = opts_.source_date_epoch;
  if (::geteuid() != 0) {
    // Without root, files were made with the caller's ids standing for root's
    // (staging.h ChownFd): the layer records them as root's.
    lo.tar.root_uid = ::geteuid();
    lo.tar.root_gid = ::getegid();
  }
  auto start = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(auto info, oci::CommitLayer(store_, dir, lo));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.Line(OutputStream::kStderr, CommitSummary(info, lo.compress.compression, secs));
  return info;
}

Status Build::AddLayer(StageState& st, const oci::LayerInfo& info, const fs::path& dir) {
  st.layers.push_back(info.descriptor);
  st.config.diff_ids.push_back(info.diff_id);
  if (!dir.empty()) {
    // The directory the layer was made from is, as it stands, the layer in
    // overlay form: adopt it as the snapshot instead of unpacking again.
    auto adopted = oci::AdoptSnapshot(store_, dir, oci::ChainId(st.config.diff_ids),
                                      info.descriptor, info.diff_id);
    if (!adopted) return Unexpected(adopted.error());
  }
  return OkStatus();
}

Result<bool> Build::ReuseCached(StageState& st, const oci::Digest& k, const std::string& created_by,
                                int id) {
  if (!opts_.no_cache && !st.no_cache && !st.cache_broken) {
    if (auto rec = cache_.Lookup(k)) {
      if (!rec->empty_layer) {
        STRATA_RETURN_IF_ERROR(AddLayer(st, {rec->layer, rec->diff_id, 0, {}}, {}));
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
  if (st.no_cache && !st.rebuilt_differs) st.rebuilt_differs = !SameOutput(cache_.Lookup(k), rec);
  (void)cache_.Record(k, rec);
  Used(k, rec);
}

oci::Platform Build::TargetPlatform() const {
  return opts_.platform ? *opts_.platform : oci::Platform::Host();
}

Status Build::InitFromBase(const Stage& stage, StageState& st) {
  // The stage's platform: FROM --platform (BUILDPLATFORM for the
  // cross-compilation pattern: it runs natively), else the build's target;
  // a stage FROM another stage inherits that stage's (below).
  oci::Platform platform = TargetPlatform();
  if (!stage.platform.empty()) {
    auto p = oci::Platform::Parse(stage.platform);
    if (!p) return Fail(stage.from, p.error().Wrap("FROM --platform"));
    if (auto known = QemuArch(*p); !known) {
      return Fail(stage.from, known.error().Wrap("FROM --platform"));
    }
    platform = *p;
  }
  st.platform = platform;
  st.config.os = platform.os;
  st.config.architecture = platform.architecture;
  st.config.variant = platform.variant;
  CacheKey key("FROM");
  switch (stage.base.kind) {
    case StageBase::Kind::kScratch:
      key.Add("scratch");
      // BuildKit's empty image: WorkingDir "/" (and the default PATH below).
      st.config.config.working_dir.assign(1, '/');  // not = "/": GCC 12 -Wrestrict (bug 105651)
      break;
    case StageBase::Kind::kStage: {
      auto base = Done(stage.base.stage);
      if (!base) {
        return Fail(stage.from, Error(ErrorCode::kInternal, "base stage not built"));
      }
      st = std::move(*base);  // with its platform, as BuildKit
      if (st.platform.architecture.empty()) st.platform = platform;  // a --build-context stage
      st.cache_broken = false;
      st.cmd_set = false;
      key.Add(st.key.ToString());
      break;
    }
    case StageBase::Kind::kImage: {
      auto ref = oci::Reference::Parse(stage.base.image);
      if (!ref) return Fail(stage.from, ref.error());
      auto base = FindNamedContext(opts_.named_contexts, stage.base.image)
                      ? ResolveSource(stage.base.image, "FROM " + stage.base.image)
                      : ResolveImage(stage.base.image, fmt::format("FROM {}", ref->Familiar()),
                                     StageReadsBaseFilesystem(plan_, stage.index), platform);
      if (!base) return Fail(stage.from, base.error());
      st = std::move(base->state);
      st.platform = platform;
      key.Add(base->cache_key);
      break;
    }
  }
  key.Add(st.platform.ToString());
  // SOURCE_DATE_EPOCH clamps the times in every layer: a layer made without
  // it (or with another) is a different layer.
  if (opts_.source_date_epoch) key.Add(fmt::format("epoch={}", *opts_.source_date_epoch));
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
  STRATA_ASSIGN_OR_RETURN(po.target_platform, BuildPlatform::Parse(TargetPlatform().ToString()));
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
  STRATA_RETURN_IF_ERROR(Lint(*text));
  STRATA_RETURN_IF_ERROR(CheckNoCacheStages(plan_, opts_.no_cache_stages));
  hasher_ = std::make_unique<ContextHasher>(store_.CacheDir(), context_);
  for (const auto& wave : plan_.parallel_waves) {
    for (size_t first = 0; first < wave.size(); first += kMaxParallelStages) {
      size_t n = std::min(kMaxParallelStages, wave.size() - first);
      if (n == 1) {
        STRATA_RETURN_IF_ERROR(RunStage(plan_.stages[static_cast<size_t>(wave[first])]));
        continue;
      }
      // Independent stages: each on its own thread; the error of the first
      // failing stage (by stage order) wins once all have finished.
      STRATA_RETURN_IF_ERROR(ParallelFor(
          n, static_cast<int>(n),
          [&](size_t k) { return RunStage(plan_.stages[static_cast<size_t>(wave[first + k])]); },
          ParallelMode::kRunAll));
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
  m.annotations = opts_.manifest_annotations;
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
  r.inputs = inputs_;
  std::sort(r.inputs.begin(), r.inputs.end());
  r.inputs.erase(std::unique(r.inputs.begin(), r.inputs.end()), r.inputs.end());
  return r;
}

Status Build::RunStage(const Stage& stage) {
  if (!stage.name.empty() && FindNamedContext(opts_.named_contexts, stage.name)) {
    // --build-context NAME=...: the stage is overwritten, not built.
    auto src = ResolveSource(stage.name, "--build-context " + stage.name);
    if (!src) return Fail(stage.from, src.error());
    std::lock_guard<std::mutex> lock(mu_);
    done_[stage.index] = std::move(src->state);
    return OkStatus();
  }
  StageState st;
  STRATA_RETURN_IF_ERROR(InitFromBase(stage, st));
  st.no_cache = IsNoCacheStage(plan_, stage, opts_.no_cache_stages);
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
    STRATA_RETURN_IF_ERROR(Dispatch(pi, pi.raw, st, fmt::format("[{} ONBUILD] {}", sname, trig)));
  }
  for (size_t i = 0; i < stage.instructions.size(); ++i) {
    const PlanInstruction& pi = stage.instructions[i];
    std::string label = fmt::format("[{} {}/{}] {}", sname, i + 2, total, pi.expanded.original);
    STRATA_RETURN_IF_ERROR(Dispatch(pi, pi.raw, st, label));
  }
  if (st.no_cache && st.rebuilt_differs) st.key = RebuiltStageKey(st);
  std::lock_guard<std::mutex> lock(mu_);
  done_[stage.index] = std::move(st);
  return OkStatus();
}

Status Build::Dispatch(const PlanInstruction& pi, const Instruction& raw, StageState& st,
                       const std::string& label) {
  ShellLexer lexer(plan_.directives.escape);
  auto env_getter = DispatchEnv(st.config.config.env, pi.args);
  auto expanded = ExpandInstruction(raw, lexer, env_getter, file_name_);
  if (!expanded) return Unexpected(expanded.error());
  const Instruction& ins = *expanded;
  if (auto* run = std::get_if<RunCommand>(&ins.command)) return DoRun(ins, *run, pi, st, label);
  if (auto* copy = std::get_if<CopyCommand>(&ins.command)) return DoCopy(ins, *copy, st, label);
  if (std::holds_alternative<WorkdirCommand>(ins.command)) return DoWorkdir(ins, st, label);

  int id = ++step_;
  progress_.StepStart(id, label);
  // created_by reads SHELL before the instruction changes it.
  std::string created_by = CreatedBy(ins, ShellOf(st.config), {});
  ConfigEdit edit = ApplyToConfig(ins, st.config, st.cmd_set);
  if (!edit.handled) {
    return Fail(ins, Error(ErrorCode::kInternal, fmt::format("cannot dispatch {}", ins.original)));
  }
  oci::Digest k = CacheKey("STEP").Add(st.key.ToString()).Add(created_by).Finish();
  bool cached = false;
  if (edit.history) {
    // Metadata steps keep a record too, only for their history time: a fresh
    // build shows when it ran, a cached rebuild reproduces the same config.
    std::optional<CacheRecord> rec;
    if (!opts_.no_cache && !st.no_cache && !st.cache_broken) rec = cache_.Lookup(k);
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

}  // namespace strata::builder
