// strata build: run a Dockerfile into a new image (see builder/executor.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "builder/engine/executor.h"
#include "builder/engine/image_path.h"
#include "builder/engine/multi_platform.h"
#include "builder/engine/snapshotter_choice.h"
#include "builder/frontend/plan.h"
#include "builder/runtime/build_namespace.h"
#include "builder/runtime/oci_runtime_runner.h"
#include "builder/runtime/run_reaper.h"
#include "oci/archive.h"
#include "oci/json_util.h"
#include "oci/layer_writer.h"
#include "oci/unpack.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "registry/transport.h"
#include "tools/curl/curl_transport.h"
#include "tools/strata/attest_options.h"
#include "tools/strata/attestations.h"
#include "tools/strata/build_lock.h"
#include "tools/strata/build_metadata.h"
#include "tools/strata/build_output.h"
#include "tools/strata/cache_spec.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/remote_context.h"
#include "tools/strata/reproducible_check.h"
#include "tools/strata/run_options.h"
#include "tools/strata/secret_flags.h"
#include "tools/strata/ssh_agents.h"
#include "tools/strata/stdin_context.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

// `--progress plain`: one line per step event, command output prefixed with
// the step number, on stderr (stdout carries only the image ID).
class PlainProgress : public builder::ProgressSink {
 public:
  void StepStart(int id, std::string_view name) override {
    fmt::print(stderr, "#{} {}\n", id, name);
  }
  void StepDone(int id, bool cached, double seconds) override {
    if (cached) {
      fmt::print(stderr, "#{} CACHED\n", id);
    } else {
      fmt::print(stderr, "#{} DONE {:.1f}s\n", id, seconds);
    }
  }
  void Warning(std::string_view text) override { fmt::print(stderr, "WARNING: {}\n", text); }
  void StepOutput(int id, builder::OutputStream, std::string_view line) override {
    fmt::print(stderr, "#{} {}\n", id, line);
  }
};

// `--progress json`: one JSON object per event on stderr, for CI.
class JsonProgress : public builder::ProgressSink {
 public:
  void StepStart(int id, std::string_view name) override {
    Emit({{"event", "step"}, {"id", id}, {"name", name}});
  }
  void StepDone(int id, bool cached, double seconds) override {
    Emit({{"event", "done"}, {"id", id}, {"cached", cached}, {"seconds", seconds}});
  }
  void Warning(std::string_view text) override { Emit({{"event", "warning"}, {"text", text}}); }
  void StepOutput(int id, builder::OutputStream s, std::string_view line) override {
    Emit({{"event", "output"},
          {"id", id},
          {"stream", s == builder::OutputStream::kStdout ? "stdout" : "stderr"},
          {"text", nlohmann::json(std::string(line)).get<std::string>()}});
  }

 private:
  void Emit(const nlohmann::json& j) {
    fmt::print(stderr, "{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
};

// `--progress tty` (the default on a terminal): finished steps scroll up as
// "=> [stage 2/5] RUN make  1.2s"; below them, redrawn in place, every
// running step with its elapsed time and its last few output lines. A ticker
// refreshes the elapsed times; a mutex orders it against the executor.
class TtyProgress : public builder::ProgressSink {
 public:
  TtyProgress() : ticker_([this](std::stop_token st) { Tick(st); }) {}
  ~TtyProgress() override {
    ticker_.request_stop();
    ticker_.join();
    std::lock_guard<std::mutex> lock(mu_);
    Clear();
    // A step still running when the build returned is the one that failed.
    for (const auto& r : running_) {
      fmt::print(stderr, "=> ERROR {}\n", r.name);
      for (const auto& l : r.tail) fmt::print(stderr, "   {}\n", l);
    }
  }
  void StepStart(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    running_.push_back({id, std::string(name), std::chrono::steady_clock::now(), {}});
    Redraw();
  }
  void StepDone(int id, bool cached, double seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    Clear();
    for (auto it = running_.begin(); it != running_.end(); ++it) {
      if (it->id != id) continue;
      if (cached) {
        fmt::print(stderr, "=> CACHED {}\n", it->name);
      } else {
        fmt::print(stderr, "=> {}  {:.1f}s\n", it->name, seconds);
      }
      running_.erase(it);
      break;
    }
    Redraw();
  }
  void StepOutput(int id, builder::OutputStream, std::string_view line) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : running_) {
      if (r.id != id) continue;
      r.tail.emplace_back(line.substr(0, 200));
      if (r.tail.size() > 5) r.tail.pop_front();
    }
    Redraw();
  }
  void Warning(std::string_view text) override {
    std::lock_guard<std::mutex> lock(mu_);
    Clear();
    fmt::print(stderr, "WARNING: {}\n", text);
    Redraw();
  }

 private:
  struct Running {
    int id;
    std::string name;
    std::chrono::steady_clock::time_point start;
    std::deque<std::string> tail;
  };
  void Tick(std::stop_token st) {
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::lock_guard<std::mutex> lock(mu_);
      if (!running_.empty()) Redraw();
    }
  }
  // Erases the live region drawn last time.
  void Clear() {
    for (int i = 0; i < drawn_; ++i) fmt::print(stderr, "\x1b[1A\x1b[2K");
    drawn_ = 0;
  }
  void Redraw() {
    Clear();
    auto now = std::chrono::steady_clock::now();
    for (const auto& r : running_) {
      double secs = std::chrono::duration<double>(now - r.start).count();
      fmt::print(stderr, "\x1b[1m=> {}  {:.1f}s\x1b[0m\n", r.name, secs);
      ++drawn_;
      for (const auto& l : r.tail) {
        fmt::print(stderr, "   {}\n", l);
        ++drawn_;
      }
    }
    std::fflush(stderr);
  }
  std::mutex mu_;
  std::vector<Running> running_;
  int drawn_ = 0;
  std::jthread ticker_;  // last: started after the members it uses
};

// `-q`: nothing but warnings; a failed RUN still reports its output tail in
// the error.
class QuietProgress : public builder::ProgressSink {
 public:
  void StepStart(int, std::string_view) override {}
  void StepDone(int, bool, double) override {}
  void Warning(std::string_view text) override { fmt::print(stderr, "WARNING: {}\n", text); }
  void StepOutput(int, builder::OutputStream, std::string_view) override {}
};

struct BuildFlags {
  std::vector<std::string> tags;
  std::string file;
  std::vector<std::string> build_args;
  std::string target;
  bool no_cache = false;
  std::string network = "default";
  std::vector<std::string> allow;
  std::string compression;  // empty: gzip unless an --output says otherwise
  int compression_level = -1;
  std::string progress = "auto";
  std::string iidfile;
  bool push = false;
  bool lazy_base = true;
  std::vector<std::string> labels;
  std::string runtime;
  bool print_plan = false;
  bool check = false;
  std::string pull = "missing";
  std::string platform;
  std::vector<std::string> secrets;
  std::vector<std::string> ssh;  // --ssh default|ID[=SOCKET|KEY[,KEY...]]
  std::vector<std::string> cache_from;
  std::vector<std::string> cache_to;
  std::vector<std::string> outputs;
  std::vector<std::string> annotations;
  std::string metadata_file;
  std::vector<std::string> no_cache_filter;
  std::vector<std::string> build_contexts;  // --build-context NAME=VALUE
  std::vector<std::string> add_hosts;
  bool load = false;
  std::string provenance;
  std::string sbom;
  std::string attest_format;
  bool check_reproducible = false;
  LockFlags lock;
  std::vector<std::string> ulimits;
  std::string shm_size;
  std::string context;
};

// Copies `path` to standard output (an archive written for `dest=-`).
Status CopyFileToStdout(const fs::path& path) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(path, O_RDONLY));
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {}", path.string()));
    }
    if (n == 0) return OkStatus();
    STRATA_RETURN_IF_ERROR(WriteAll(STDOUT_FILENO, buf.data(), static_cast<size_t>(n)));
  }
}

// Runs one local/tar/oci/docker output of a finished build. `names` are the
// image's names for the archives (tags), or its digest when it has none.
Status RunOutput(Context& ctx, oci::Store& store, const oci::Image& image, const OutputSpec& out,
                 const std::vector<std::string>& names) {
  auto wrap = [&](const Error& e) {
    return Unexpected(e.Wrap(fmt::format("--output {}", out.raw)));
  };
  oci::UnpackOptions uo;
  uo.preserve_owners = ::geteuid() == 0;
  STRATA_ASSIGN_OR_RETURN(uo.max_layer_bytes, ctx.MaxLayerBytes());
  switch (out.type) {
    case OutputType::kLocal:
      // BuildKit's local exporter: the result's filesystem in DIR (created
      // if missing; it must be empty, nothing in it is overwritten).
      if (auto s = oci::UnpackImage(store, image, out.dest, uo); !s) return wrap(s.error());
      return OkStatus();
    case OutputType::kTar: {
      // The same filesystem as one tar: unpacked once (whiteouts applied,
      // owners kept) into a scratch dir in the store, written by the layer
      // writer's tar stage, uncompressed.
      auto tmp = ScopedTempDir::Create(store.IngestDir(), "export-");
      if (!tmp) return wrap(tmp.error());
      fs::path rootfs = tmp->path() / "rootfs";
      if (auto s = oci::UnpackImage(store, image, rootfs, uo); !s) return wrap(s.error());
      if (out.ToStdout()) {
        oci::FunctionSink sink(
            [](const void* d, size_t n) { return WriteAll(STDOUT_FILENO, d, n); });
        if (auto s = oci::WriteTar(rootfs, {}, &sink); !s) return wrap(s.error());
        return OkStatus();
      }
      auto file = AtomicFile::Create(out.dest);
      if (!file) return wrap(file.error());
      oci::FunctionSink sink([&](const void* d, size_t n) { return file->Write(d, n); });
      if (auto s = oci::WriteTar(rootfs, {}, &sink); !s) return wrap(s.error());
      if (auto s = file->Commit(); !s) return wrap(s.error());
      return OkStatus();
    }
    case OutputType::kOci:
    case OutputType::kDocker: {
      if (out.type == OutputType::kOci && !out.tar) {
        if (auto s = oci::SaveOciLayout(store, names, out.dest); !s) return wrap(s.error());
        return OkStatus();
      }
      auto format = out.type == OutputType::kOci ? oci::ArchiveFormat::kOciArchive
                                                 : oci::ArchiveFormat::kDockerArchive;
      if (!out.ToStdout()) {
        if (auto s = oci::SaveArchive(store, names, out.dest, format); !s) return wrap(s.error());
        return OkStatus();
      }
      auto tmp = ScopedTempDir::Create(store.IngestDir(), "export-");
      if (!tmp) return wrap(tmp.error());
      fs::path file = tmp->path() / "image.tar";
      if (auto s = oci::SaveArchive(store, names, file, format); !s) return wrap(s.error());
      if (auto s = CopyFileToStdout(file); !s) return wrap(s.error());
      return OkStatus();
    }
    case OutputType::kImage:
    case OutputType::kCacheOnly:
      return OkStatus();
  }
  return OkStatus();
}

// --cache-to: the records of this build (all of them for mode=max; for
// mode=min those whose layer is in the final image, and the layer-less
// ones) as a cache image in the store.
Result<oci::Descriptor> ExportCacheFor(oci::Store& store, const CacheSpec& spec,
                                       const builder::BuildResult& r,
                                       const std::vector<oci::Descriptor>& image_layers) {
  std::vector<std::pair<oci::Digest, builder::CacheRecord>> records;
  for (const auto& [k, rec] : r.cache_records) {
    if (spec.mode == CacheMode::kMin && !rec.empty_layer) {
      bool in_image = false;
      for (const auto& l : image_layers) in_image = in_image || l.digest == rec.layer.digest;
      if (!in_image) continue;
    }
    records.emplace_back(k, rec);
  }
  return builder::ExportCache(store, records);
}

Result<std::map<std::string, std::string>> ParseKeyValues(const std::vector<std::string>& in,
                                                          std::string_view flag,
                                                          bool allow_env_lookup) {
  std::map<std::string, std::string> out;
  for (const auto& kv : in) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      if (allow_env_lookup) {
        // docker: `--build-arg NAME` takes the value from the environment.
        if (const char* v = std::getenv(kv.c_str())) out[kv] = v;
        continue;
      }
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: want KEY=VALUE", flag, kv);
    }
    if (eq == 0) return MakeError(ErrorCode::kInvalidArgument, "{} {}: empty key", flag, kv);
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

// A bad flag value: the message, and the usage exit code.
int Usage(const Error& e) {
  Fail(e);
  return kExitUsage;
}

int RunBuild(Context& ctx, const BuildFlags& given) {
  BuildFlags f = given;
  // --progress=quiet is -q: nothing on stdout but the image ID.
  const bool quiet = ctx.global.quiet || f.progress == "quiet";
  // docker's --pull is a boolean flag, strata's takes a policy: a bare
  // --pull means always (CLI11 gives it default_str), --pull=true|false as
  // docker.
  if (f.pull == "true") f.pull = "always";
  if (f.pull == "false") f.pull = "missing";
  auto args = ParseKeyValues(f.build_args, "--build-arg", true);
  if (!args) return Fail(args.error());
  auto labels = ParseKeyValues(f.labels, "--label", false);
  if (!labels) return Fail(labels.error());
  // Everything BuildKit-style is parsed and checked here, before anything
  // runs: a bad --output or --cache-to must not cost a whole build. These
  // are usage errors (exit 2).
  auto outputs = ParseOutputSpecs(f.outputs);
  if (!outputs) return Usage(outputs.error());
  auto annotations = ParseAnnotationFlags(f.annotations);
  if (!annotations) return Usage(annotations.error());
  std::vector<CacheSpec> cache_from, cache_to;
  for (const auto& v : f.cache_from) {
    auto spec = ParseCacheSpec(v, CacheDirection::kFrom);
    if (!spec) return Usage(spec.error());
    cache_from.push_back(std::move(*spec));
  }
  for (const auto& v : f.cache_to) {
    auto spec = ParseCacheSpec(v, CacheDirection::kTo);
    if (!spec) return Usage(spec.error());
    cache_to.push_back(std::move(*spec));
  }
  // RUN options: every RUN's /etc/hosts entries, rlimits, /dev/shm size.
  std::vector<builder::HostEntry> extra_hosts;
  for (const auto& h : f.add_hosts) {
    auto e = ParseAddHost(h);
    if (!e) return Usage(e.error());
    extra_hosts.push_back(std::move(*e));
  }
  std::vector<builder::Rlimit> ulimits;
  for (const auto& u : f.ulimits) {
    auto r = ParseUlimit(u);
    if (!r) return Usage(r.error());
    // The runtime would clamp a limit above this process's hard limit
    // (root cannot raise it here): refuse instead of giving less than asked.
    auto clamped = builder::ClampRlimits({*r});
    if (!clamped) return Fail(clamped.error().Wrap(fmt::format("--ulimit {}", u)));
    if (clamped->front() != *r) {
      return Usage(Error(ErrorCode::kInvalidArgument,
                         fmt::format("--ulimit {}: above this process's hard limit ({}); a build "
                                     "cannot raise it",
                                     u, clamped->front().hard)));
    }
    ulimits.push_back(std::move(*r));
  }
  uint64_t shm_size = 0;
  if (!f.shm_size.empty()) {
    auto n = ParseShmSize(f.shm_size);
    if (!n) return Usage(n.error());
    shm_size = *n;
  }
  if (f.progress != "auto" && f.progress != "plain" && f.progress != "tty" &&
      f.progress != "json" && f.progress != "rawjson" && f.progress != "quiet") {
    return Usage(Error(
        ErrorCode::kInvalidArgument,
        fmt::format("--progress {}: want auto, plain, tty, json, rawjson or quiet", f.progress)));
  }
  if (f.pull != "missing" && f.pull != "always" && f.pull != "never") {
    return Usage(Error(ErrorCode::kInvalidArgument,
                       fmt::format("--pull {}: want always, missing or never", f.pull)));
  }
  // Attestations (tools/strata/attestations.h): made after the build.
  auto attest = ParseAttestOptions(f.sbom, f.provenance, f.attest_format);
  if (!attest) return Usage(attest.error());
  // The image's names: -t, and name= of image/registry/oci/docker outputs
  // (which tag the image in the store too). Pushed: all of them with --push,
  // an output's own with push=true / type=registry.
  std::vector<std::string> all_tags = f.tags;
  std::vector<oci::Reference> push_refs;
  bool to_stdout = false;
  for (const auto& out : *outputs) {
    to_stdout = to_stdout || out.ToStdout();
    for (const auto& n : out.names) {
      auto ref = oci::Reference::Parse(n);
      if (!ref) return Usage(ref.error().Wrap(fmt::format("--output {}: name", out.raw)));
      if (std::find(all_tags.begin(), all_tags.end(), n) == all_tags.end()) all_tags.push_back(n);
    }
    if (out.push) {
      const auto& names = out.names.empty() ? f.tags : out.names;
      if (names.empty()) {
        return Usage(Error(ErrorCode::kInvalidArgument,
                           fmt::format("--output {}: pushing needs name= or -t REF", out.raw)));
      }
      for (const auto& n : names) {
        auto ref = oci::Reference::Parse(n);
        if (!ref) return Usage(ref.error().Wrap(fmt::format("--output {}", out.raw)));
        if (std::find(push_refs.begin(), push_refs.end(), *ref) == push_refs.end()) {
          push_refs.push_back(*ref);
        }
      }
    }
  }
  if (f.push) {
    for (const auto& n : f.tags) {
      auto ref = oci::Reference::Parse(n);
      if (!ref) return Usage(ref.error().Wrap(fmt::format("-t {}", n)));
      if (std::find(push_refs.begin(), push_refs.end(), *ref) == push_refs.end()) {
        push_refs.push_back(*ref);
      }
    }
  }
  if (to_stdout && ::isatty(STDOUT_FILENO)) {
    return Usage(Error(ErrorCode::kInvalidArgument,
                       "--output: refusing to write an archive to a terminal (redirect stdout "
                       "or give dest=FILE)"));
  }
  auto layer_compression = MergeOutputCompression(*outputs);
  if (!layer_compression) return Usage(layer_compression.error());
  // --secret and --ssh: parsed before a remote context is fetched (its git
  // may need them).
  auto secrets = ParseSecretFlags(f.secrets);
  if (!secrets) return Fail(secrets.error());
  std::vector<SshSpec> ssh_specs;
  for (const auto& s : f.ssh) {
    auto spec = ParseSshSpec(s);
    if (!spec) return Usage(spec.error());
    ssh_specs.push_back(std::move(*spec));
  }
  fs::path context = f.context;
  fs::path dockerfile = f.file.empty() ? context / "Dockerfile" : fs::path(f.file);
  std::optional<std::string> stdin_text;
  // CONTEXT a git source or an http(s) URL (remote_context.h): fetched into
  // a scratch dir under the store (agents for --ssh started and stopped for
  // it) until this function returns.
  std::optional<RemoteContext> remote_context;
  std::error_code local_ec;
  if (f.context != "-" && IsRemoteContext(f.context) && !fs::is_directory(f.context, local_ec)) {
    auto max_bytes = ctx.MaxLayerBytes();
    if (!max_bytes) return Fail(max_bytes.error());
    {
      // Opened only for this, as for stdin below.
      auto store = ctx.OpenStore();
      if (!store) return Fail(store.error());
      auto agents = SshAgents::Start(ssh_specs, std::getenv("SSH_AUTH_SOCK"));
      if (!agents) return Fail(agents.error());
      auto git_opts = MakeGitCliOptions((*store)->root(), agents->sockets(), *secrets);
      if (!git_opts) return Fail(git_opts.error());
      GitCli git(std::move(*git_opts));
      // BuildKit's BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 keeps a git context's .git.
      auto keep = args->find("BUILDKIT_CONTEXT_KEEP_GIT_DIR");
      const bool keep_git_dir =
          keep != args->end() && (keep->second == "1" || keep->second == "true");
      auto got =
          RemoteContext::Fetch(**store, f.context, git, MakeHttpFetcher(ctx.global.tls_verify),
                               *max_bytes, keep_git_dir);
      if (!got) return Fail(got.error());
      remote_context.emplace(std::move(*got));
    }
    if (!quiet && f.progress != "json" && f.progress != "rawjson") {
      fmt::print(stderr, "context: {}\n", remote_context->what());
    }
    context = remote_context->dir();
    if (remote_context->dockerfile_text()) {
      if (!f.file.empty() && f.file != "-") {
        return Usage(Error(
            ErrorCode::kInvalidArgument,
            fmt::format("-f {}: {} is a Dockerfile, not a context archive", f.file, f.context)));
      }
      stdin_text = *remote_context->dockerfile_text();
      dockerfile = context / "Dockerfile";
    } else if (f.file != "-") {
      auto in = builder::ResolveInRoot(context, f.file.empty() ? "Dockerfile" : f.file, true);
      if (!in) return Fail(in.error());
      dockerfile = *in;
    }
  }
  // CONTEXT `-`: a tar on stdin (or a Dockerfile and no context), held in a
  // scratch dir under the store until this function returns.
  std::optional<StdinContext> stdin_context;
  if (remote_context && f.file != "-") {
    // The Dockerfile was found above.
  } else if (f.context == "-") {
    if (f.file == "-") {
      return Usage(Error(ErrorCode::kInvalidArgument,
                         "build: stdin cannot be both the context (-) and the Dockerfile (-f -)"));
    }
    auto max_bytes = ctx.MaxLayerBytes();
    if (!max_bytes) return Fail(max_bytes.error());
    {
      // Opened only for this: the build namespaces below need a process
      // with no store open.
      auto store = ctx.OpenStore();
      if (!store) return Fail(store.error());
      auto read = StdinContext::Read(**store, STDIN_FILENO, *max_bytes);
      if (!read) return Fail(read.error());
      stdin_context.emplace(std::move(*read));
    }
    context = stdin_context->dir();
    if (stdin_context->dockerfile_text()) {
      if (!f.file.empty()) {
        return Usage(
            Error(ErrorCode::kInvalidArgument,
                  fmt::format("-f {}: stdin is a Dockerfile, not a context archive", f.file)));
      }
      stdin_text = *stdin_context->dockerfile_text();
      dockerfile = context / "Dockerfile";
    } else {
      // -f names a file inside the archive (default Dockerfile at its root),
      // resolved without leaving it.
      auto in = builder::ResolveInRoot(context, f.file.empty() ? "Dockerfile" : f.file, true);
      if (!in) return Fail(in.error());
      dockerfile = *in;
    }
  } else if (f.file == "-") {
    // `-f -`: the Dockerfile comes from standard input, as with docker.
    std::string t;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) t.append(buf, n);
    stdin_text = std::move(t);
    dockerfile = context / "Dockerfile";
  }
  if (std::error_code ec; !fs::is_directory(context, ec)) {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("build context {} is not a directory", context.string())));
  }
  // The Dockerfile is read here, once; the executor takes its text.
  auto text = stdin_text ? Result<std::string>(*stdin_text) : ReadFile(dockerfile);
  if (!text) return Fail(text.error());
  // --platform a,b,...: one image per platform and an index of them; one
  // platform is a plain image for it (as buildx), the host's exactly today's.
  std::vector<oci::Platform> platforms;
  if (!f.platform.empty()) {
    auto ps = builder::ParsePlatformList(f.platform);
    if (!ps) return Usage(ps.error());
    platforms = std::move(*ps);
  }
  const bool multi_platform = platforms.size() > 1;
  if (f.print_plan) {
    // One plan per platform (the predefined ARGs differ): an object, or an
    // array of them for several platforms.
    builder::ParseOptions po;
    po.file_name = dockerfile.filename().string();
    po.build_args = *args;
    po.target = f.target;
    if (platforms.empty()) platforms.push_back(oci::Platform::Host());
    nlohmann::json plans = nlohmann::json::array();
    for (const auto& p : platforms) {
      auto bp = builder::BuildPlatform::Parse(p.ToString());
      if (!bp) return Usage(bp.error());
      po.target_platform = *bp;
      auto plan = builder::ParseDockerfileToJson(*text, po);
      if (!plan) return Fail(plan.error());
      plans.push_back(std::move(*plan));
    }
    fmt::print("{}\n", oci::DumpJson(multi_platform ? plans : plans[0], 2));
    return kExitOk;
  }
  if (multi_platform) {
    // The index and its children go to the store, a registry or an OCI
    // layout; a file system or a docker-archive holds one image: refused,
    // not half-done.
    for (const auto& out : *outputs) {
      if (out.type == OutputType::kTar || out.type == OutputType::kDocker ||
          (out.type == OutputType::kLocal && out.ToStdout())) {
        return Usage(Error(ErrorCode::kUnimplemented,
                           fmt::format("--output {}: a multi-platform build (--platform {}) "
                                       "exports to the store, a registry, an OCI layout or "
                                       "local directories only (type=image, type=registry, "
                                       "type=oci, type=local)",
                                       out.raw, f.platform)));
      }
    }
    // Attestations, the lockfile and the reproducibility check are per
    // image; for an index they are not built yet: refused, not half-done.
    const char* per_image = attest->any()                         ? "--sbom/--provenance"
                            : f.check_reproducible                ? "--check-reproducible"
                            : (f.lock.lock || f.lock.update_lock) ? "--lock/--update-lock"
                                                                  : nullptr;
    if (per_image) {
      return Usage(Error(ErrorCode::kUnimplemented,
                         fmt::format("{} with a multi-platform build (--platform {}) is not "
                                     "supported yet: build one platform at a time",
                                     per_image, f.platform)));
    }
  }
  builder::BuildOptions o;
  o.context_dir = context;
  o.dockerfile = dockerfile;
  o.dockerfile_text = std::move(*text);
  o.tags = all_tags;
  o.manifest_annotations = *annotations;
  o.extra_hosts = extra_hosts;
  o.ulimits = ulimits;
  o.shm_size_bytes = shm_size;
  for (const auto& out : *outputs) {
    for (const auto& [k, v] : out.annotations) o.manifest_annotations[k] = v;
  }
  o.build_args = *args;
  o.target = f.target;
  o.no_cache = f.no_cache;
  o.no_cache_stages = f.no_cache_filter;
  for (const auto& bc : f.build_contexts) {
    auto named = builder::ParseNamedContext(bc);
    if (!named) return Usage(named.error());
    if (!o.named_contexts.emplace(named->name, named->context).second) {
      return Usage(Error(ErrorCode::kInvalidArgument,
                         fmt::format("--build-context {}: {} given twice", bc, named->name)));
    }
  }
  o.labels = *labels;
  if (remote_context && f.lock.any()) {
    // The Dockerfile of a remote context is not on disk next to a lockfile,
    // and the context itself is not an input strata.lock pins.
    return Usage(Error(ErrorCode::kUnimplemented,
                       fmt::format("--lock/--locked/--update-lock with a remote build context "
                                   "({}) are not supported: clone it and build the directory",
                                   f.context)));
  }
  if (auto s = PrepareLock(f.lock, dockerfile, stdin_text.has_value(), o); !s) {
    return s.error().code() == ErrorCode::kInvalidArgument ? Usage(s.error()) : Fail(s.error());
  }
  if (f.check) {
    // BuildKit's `--check`: the build checks only; exit 1 on any violation.
    auto store = ctx.OpenStore();
    if (!store) return Fail(store.error());
    auto report = builder::CheckDockerfile(**store, o);
    if (!report) return Fail(report.error());
    fmt::print("{}", report->text);
    if (!report->error.empty()) fmt::print(stderr, "ERROR: {}\n", report->error);
    return report->warnings > 0 ? kExitFailure : kExitOk;
  }
  auto max_layer = ctx.MaxLayerBytes();
  if (!max_layer) return Fail(max_layer.error());
  o.max_layer_bytes = *max_layer;
  o.secrets = std::move(*secrets);
  for (const auto& a : f.allow) {
    if (a != builder::kAllowNetworkHost && a != builder::kAllowSecurityInsecure) {
      return Fail(Error(ErrorCode::kInvalidArgument,
                        fmt::format("--allow {}: unknown entitlement (want {} or {})", a,
                                    builder::kAllowNetworkHost, builder::kAllowSecurityInsecure)));
    }
    o.allow.insert(a);
  }
  auto network = builder::ParseNetworkMode(f.network);
  if (!network) return Fail(network.error().Wrap("--network"));
  o.network = *network;
  if (o.network == builder::NetworkMode::kHost && !o.allow.contains(builder::kAllowNetworkHost)) {
    return Fail(Error(ErrorCode::kPermissionDenied,
                      fmt::format("--network host needs --allow {}", builder::kAllowNetworkHost)));
  }
  std::optional<oci::Compression> flag_compression;
  if (f.compression == "zstd") {
    flag_compression = oci::Compression::kZstd;
  } else if (f.compression == "gzip") {
    flag_compression = oci::Compression::kGzip;
  } else if (!f.compression.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("--compression {}: want gzip or zstd", f.compression)));
  }
  if (flag_compression && layer_compression->compression &&
      *flag_compression != *layer_compression->compression) {
    return Usage(Error(
        ErrorCode::kInvalidArgument,
        fmt::format("--compression {} contradicts an --output's compression=", f.compression)));
  }
  o.compression.compression =
      flag_compression.value_or(layer_compression->compression.value_or(oci::Compression::kGzip));
  o.compression.level = f.compression_level;
  if (layer_compression->level) {
    if (f.compression_level >= 0 && f.compression_level != *layer_compression->level) {
      return Usage(Error(ErrorCode::kInvalidArgument,
                         "--compression-level contradicts an --output's compression-level="));
    }
    o.compression.level = *layer_compression->level;
  }
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    char* end = nullptr;
    long long v = std::strtoll(sde, &end, 10);
    if (*end != '\0' || v < 0) {
      return Fail(Error(ErrorCode::kInvalidArgument,
                        fmt::format("SOURCE_DATE_EPOCH={} is not a unix time", sde)));
    }
    o.source_date_epoch = v;
  }
  // rewrite-timestamp=true: BuildKit clamps the mtimes in the layers the
  // build makes to SOURCE_DATE_EPOCH. strata's layer writer always does that
  // when SOURCE_DATE_EPOCH is set (environment or --build-arg), so true
  // needs it and false cannot be had with it.
  const bool have_epoch = o.source_date_epoch || args->contains("SOURCE_DATE_EPOCH");
  for (const auto& out : *outputs) {
    if (!out.rewrite_timestamp) continue;
    if (*out.rewrite_timestamp && !have_epoch) {
      return Usage(Error(ErrorCode::kInvalidArgument,
                         fmt::format("--output {}: rewrite-timestamp=true needs SOURCE_DATE_EPOCH "
                                     "(environment or --build-arg)",
                                     out.raw)));
    }
    if (!*out.rewrite_timestamp && have_epoch) {
      return Usage(Error(ErrorCode::kUnimplemented,
                         fmt::format("--output {}: rewrite-timestamp=false is not supported with "
                                     "SOURCE_DATE_EPOCH (strata always clamps layer mtimes to it)",
                                     out.raw)));
    }
  }
  if (platforms.size() == 1 && !oci::Platform::Host().Matches(platforms[0])) {
    o.platform = platforms[0];
  }
  if (f.push && f.tags.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument, "build --push needs at least one -t REF"));
  }
  // binfmt_misc as this mount namespace has it: the build's own /proc does
  // not (builder/runtime/binfmt.h). Without it a foreign RUN says so.
  std::optional<builder::PinnedBinfmtDir> binfmt;
  if (auto pinned = builder::PinBinfmtDir(); pinned) {
    binfmt = std::move(*pinned);
    o.binfmt_dir = binfmt->path;
  }
  // From here on the build runs in its own pid and mount namespaces: its
  // containers and mounts die with it (builder/build_namespace.h). This
  // process has one thread and no store open yet, as that requires.
  auto keeper = builder::EnterBuildNamespaces();
  if (!keeper) return Fail(keeper.error());
  if (keeper->has_value()) {
    // The keeper, once the build is over: reap again what a strata process
    // killed while this one ran left (its namespace may still have been dying
    // when this command started), then exit with the build's code.
    ReapDeadRuns(ctx);
    return **keeper;
  }
  auto store = ctx.OpenStore();
  if (!store) return Fail(store.error());
  // Names this process's containers and bundles so that a later strata
  // command can tell they are dead if this one crashes (run_reaper.h).
  auto owner = builder::RunOwner::Acquire((*store)->root());
  if (!owner) return Fail(owner.error());
  builder::OciRuntimeRunnerOptions ro;
  ro.runtime = f.runtime;
  ro.state_dir = (*store)->root() / "runtime";
  ro.owner = owner->token();
  builder::OciRuntimeRunner runner(ro);
  // Kernel overlayfs, or in a rootless build's user namespace overlayfs with
  // userxattr where allowed, else plain copies (snapshotter_choice.h).
  const char* forced_snapshotter = std::getenv("STRATA_SNAPSHOTTER");
  auto snapshots = builder::ChooseSnapshotter(
      (*store)->SnapshotsDir(), forced_snapshotter != nullptr ? forced_snapshotter : "");
  if (!snapshots) return Fail(snapshots.error());
  if (ctx.global.verbose) {
    fmt::print(stderr, "strata: snapshotter: {}{}\n", snapshots->name,
               snapshots->reason.empty() ? "" : " (" + snapshots->reason + ")");
  }
  o.snapshotter = snapshots->snapshotter.get();

  std::unique_ptr<builder::ProgressSink> progress;
  std::string mode = f.progress;
  // rawjson: strata's own JSON event stream (one object per line), not
  // BuildKit's SolveStatus encoding.
  if (quiet) mode = "quiet";
  if (mode == "auto") mode = ::isatty(STDERR_FILENO) ? "tty" : "plain";
  if (mode == "tty" && !::isatty(STDERR_FILENO)) mode = "plain";
  if (mode == "tty") {
    progress = std::make_unique<TtyProgress>();
  } else if (mode == "plain") {
    progress = std::make_unique<PlainProgress>();
  } else if (mode == "json" || mode == "rawjson") {
    progress = std::make_unique<JsonProgress>();
  } else if (mode == "quiet") {
    progress = std::make_unique<QuietProgress>();
  } else {
    return Fail(Error(
        ErrorCode::kInvalidArgument,
        fmt::format("--progress {}: want auto, plain, tty, json, rawjson or quiet", f.progress)));
  }
  // FROM images that are not in the store come from their registry.
  std::shared_ptr<registry::CredentialStore> creds;
  std::unique_ptr<registry::Client> client;
  StderrProgress pull_progress(quiet || mode == "json" || mode == "rawjson" || mode == "quiet");
  // Platforms (and stages) build on their own threads: one client, made once.
  std::mutex client_mu;
  auto ensure_client = [&]() -> Status {
    std::lock_guard<std::mutex> lock(client_mu);
    if (client) return OkStatus();
    STRATA_ASSIGN_OR_RETURN(creds, MakeCredentialStore(ctx));
    client = MakeClient(ctx, creds);
    return OkStatus();
  };
  oci::Store* store_ptr = store->get();
  if (f.pull != "never") {
    o.pull_always = f.pull == "always";
    // Pulls the whole image, or (layers = false) its manifest and config only.
    auto pull_with = [&](bool layers) {
      return [&, layers](const oci::Reference& ref,
                         const oci::Platform& platform) -> Result<oci::Descriptor> {
        STRATA_RETURN_IF_ERROR(ensure_client());
        registry::PullOptions po;
        po.platform = platform;
        po.progress = &pull_progress;
        po.layers = layers;
        STRATA_ASSIGN_OR_RETURN(auto pulled, client->Pull(*store_ptr, ref, po));
        return pulled.manifest;
      };
    };
    o.resolver = pull_with(true);
    // Lazy base layers: a stage that never reads its base's file system
    // gets the base's manifest and config only (builder/frontend/base_use.h).
    if (f.lazy_base) o.metadata_resolver = pull_with(false);
    // A layer left at its registry by a lazy pull or build, needed now
    // (with --pull=never nothing is fetched: the build names the layer).
    o.blob_fetcher = [&](const oci::Descriptor& blob) -> Status {
      STRATA_RETURN_IF_ERROR(ensure_client());
      registry::PullOptions po;
      po.progress = &pull_progress;
      return client->FetchRecordedBlob(*store_ptr, blob, po);
    };
  }
  // ADD <url>: plain HTTP(S) GET through the registry transport stack
  // (redirects followed; TLS settings and insecure hosts as for registries).
  std::shared_ptr<registry::Transport> http;
  o.fetcher = [&](const std::string& url, const fs::path& dest,
                  std::string* last_modified) -> Status {
    if (!http) {
      registry::CurlTransportOptions co;
      co.tls_verify = ctx.global.tls_verify;
      http = std::make_shared<registry::RedirectTransport>(
          std::make_shared<registry::CurlTransport>(co));
    }
    STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(dest, O_WRONLY | O_CREAT | O_EXCL, 0600));
    registry::Request req;
    req.url = url;
    req.on_body = [&](std::string_view chunk) {
      return WriteAll(fd.get(), chunk.data(), chunk.size());
    };
    STRATA_ASSIGN_OR_RETURN(auto resp, http->RoundTrip(req));
    if (resp.status != 200) {
      return MakeError(resp.status == 404 ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                       "GET {}: HTTP {}", url, resp.status);
    }
    *last_modified = resp.GetHeader("Last-Modified");
    return OkStatus();
  };
  // --cache-from: import the records of each cache image (pulled, or read
  // from an OCI layout directory); a missing cache (the first CI run) is a
  // warning, as with BuildKit.
  for (const auto& spec : cache_from) {
    auto warn = [&](const Error& e) {
      progress->Warning(fmt::format("--cache-from {}: {}", spec.raw, e.message()));
    };
    std::optional<oci::Descriptor> cache_desc;
    if (spec.type == CacheType::kRegistry) {
      if (auto s = ensure_client(); !s) return Fail(s.error());
      registry::PullOptions po;
      po.progress = &pull_progress;
      auto pulled = client->Pull(**store, *spec.ref, po);
      if (!pulled) {
        warn(pulled.error());
        continue;
      }
      cache_desc = pulled->manifest;
    } else {
      auto text = ReadFile(spec.dir / "index.json");
      if (!text) {
        warn(text.error());
        continue;
      }
      auto index = oci::Index::Parse(*text);
      if (!index) return Fail(index.error().Wrap(fmt::format("--cache-from {}", spec.raw)));
      for (const auto& m : index->manifests) {
        auto it = m.annotations.find(std::string(oci::kAnnotationRefName));
        if (it != m.annotations.end() && it->second == spec.tag) cache_desc = m;
      }
      if (!cache_desc) {
        warn(Error(ErrorCode::kNotFound,
                   fmt::format("no cache tagged {} in {}", spec.tag, spec.dir.string())));
        continue;
      }
      if (auto loaded = oci::Load(**store, spec.dir); !loaded) {
        return Fail(loaded.error().Wrap(fmt::format("--cache-from {}", spec.raw)));
      }
    }
    auto img = (*store)->LoadImage(*cache_desc);
    if (!img) return Fail(img.error().Wrap(fmt::format("--cache-from {}", spec.raw)));
    auto n = builder::ImportCache(**store, *img);
    if (!n) return Fail(n.error().Wrap(fmt::format("--cache-from {}", spec.raw)));
  }
  // --ssh agents (stopped when the build ends) and the git client of ADD
  // <git source>.
  auto ssh_agents = SshAgents::Start(ssh_specs, std::getenv("SSH_AUTH_SOCK"));
  if (!ssh_agents) return Fail(ssh_agents.error());
  o.ssh = ssh_agents->sockets();
  auto git_opts = MakeGitCliOptions((*store)->root(), o.ssh, o.secrets);
  if (!git_opts) return Fail(git_opts.error());
  GitCli git_cli(std::move(*git_opts));
  o.git = &git_cli;
  builder::Executor exec(**store, runner, *progress);
  const int64_t started_unix = o.source_date_epoch.value_or(static_cast<int64_t>(::time(nullptr)));
  auto start = std::chrono::steady_clock::now();
  auto r = multi_platform ? exec.BuildPlatforms(o, platforms) : exec.Build(o);
  progress.reset();  // a live tty display is erased/finished before we print
  if (!r) {
    if (mode == "json" || mode == "rawjson") {
      // The JSON stream ends with the failure as an event, for CI parsers;
      // the usual "strata: …" line follows.
      nlohmann::json ev = {{"event", "error"}, {"text", r.error().message()}};
      fmt::print(stderr, "{}\n", ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    return Fail(r.error());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!f.iidfile.empty()) {
    if (auto s = WriteFileAtomic(f.iidfile, r->manifest.digest.ToString()); !s) {
      return Fail(s.error());
    }
  }
  // Metadata only: a lazy base's layers stay at their registry unless an
  // output reads layers (push mounts or fetches them itself).
  // An index (several platforms) has no one image: its children's layers
  // are what --cache-to mode=min keeps.
  std::optional<oci::Image> image;
  std::vector<oci::Descriptor> final_layers;
  if (!multi_platform) {
    auto loaded = (*store)->LoadImageMetadata(r->manifest);
    if (!loaded) return Fail(loaded.error());
    image = std::move(*loaded);
    final_layers = image->manifest.layers;
  }
  for (const auto& [p, child] : r->platform_images) {
    auto loaded = (*store)->LoadImageMetadata(child, p);
    if (!loaded) return Fail(loaded.error());
    for (const auto& l : loaded->manifest.layers) final_layers.push_back(l);
  }
  if (f.lock.lock || f.lock.update_lock) {
    std::vector<builder::ResolvedInput> pins;
    auto written = WriteLockForBuild(**store, o, *r, dockerfile, &pins);
    if (!written) return Fail(written.error().Wrap("--lock"));
    if (!quiet) fmt::print(stderr, "Pinned {} input(s) in {}\n", pins.size(), written->string());
  }
  if (f.check_reproducible) {
    // A second build from the same inputs in a fresh store, compared.
    auto rep = CheckReproducible(ctx, **store, runner, o, *r);
    if (!rep) return Fail(rep.error());
    if (!rep->reproducible) {
      return Fail(Error(ErrorCode::kFailedPrecondition,
                        fmt::format("not reproducible: a second build gave {}: {}",
                                    rep->second.ToString(), rep->difference)));
    }
    if (!quiet) fmt::print(stderr, "Reproducible: a second build gave the same image\n");
  }
  // --sbom / --provenance: stored as referrers of the manifest (pushed with
  // it below), or in BuildKit's form, an index the tags move to.
  std::string push_source = r->manifest.digest.ToString();
  if (attest->any()) {
    AttestRequest areq;
    areq.options = *attest;
    areq.build = &o;
    areq.result = &*r;
    areq.subject_name = r->tags.empty() ? r->manifest.digest.ToString() : r->tags[0].ToString();
    areq.started = started_unix;
    areq.finished = o.source_date_epoch.value_or(static_cast<int64_t>(::time(nullptr)));
    auto made = MakeAttestations(
        ctx, **store, areq, [](std::string_view w) { fmt::print(stderr, "WARNING: {}\n", w); });
    if (!made) return Fail(made.error().Wrap("attestations"));
    if (made->index) {
      for (const auto& t : r->tags) {
        if (auto s = (*store)->Tag(t, *made->index); !s) return Fail(s.error());
      }
      push_source = made->index->digest.ToString();
      if (!quiet) {
        fmt::print(stderr, "Attestations: index {} (BuildKit form)\n", push_source);
      }
    } else if (!quiet) {
      for (const auto& d : made->referrers) {
        fmt::print(stderr, "Attestation {} {}\n", d.artifact_type, d.digest.ToString());
      }
    }
  }
  const bool outputs_read_layers =
      std::any_of(outputs->begin(), outputs->end(), [](const OutputSpec& o) {
        return o.type == OutputType::kLocal || o.type == OutputType::kTar ||
               o.type == OutputType::kOci || o.type == OutputType::kDocker;
      });
  if (outputs_read_layers) {
    if (auto s = FetchLazyLayers(ctx, **store, r->manifest.digest.ToString()); !s) {
      return Fail(s.error());
    }
    for (const auto& [p, child] : r->platform_images) {
      if (auto s = FetchLazyLayers(ctx, **store, child.digest.ToString()); !s) {
        return Fail(s.error());
      }
    }
  }
  for (const auto& out : *outputs) {
    std::vector<std::string> names = out.names.empty() ? f.tags : out.names;
    if (names.empty()) names.push_back(r->manifest.digest.ToString());
    if (multi_platform && out.type == OutputType::kLocal) {
      // BuildKit's platform split: DEST/linux_amd64, DEST/linux_arm64, ...
      for (const auto& [p, child] : r->platform_images) {
        auto img = (*store)->LoadImageMetadata(child, p);
        if (!img) return Fail(img.error());
        OutputSpec one = out;
        std::string sub = p.os + "_" + p.architecture + (p.variant.empty() ? "" : "_" + p.variant);
        one.dest = (fs::path(out.dest) / sub).string();
        if (auto s = RunOutput(ctx, **store, *img, one, names); !s) return Fail(s.error());
      }
      continue;
    }
    // Several platforms: only image/registry/oci outputs are left (checked
    // before the build); none of them reads `image`.
    if (auto s = RunOutput(ctx, **store, image ? *image : oci::Image{}, out, names); !s) {
      return Fail(s.error());
    }
  }
  for (const auto& spec : cache_to) {
    auto exported = [&]() -> Status {
      STRATA_ASSIGN_OR_RETURN(auto cache, ExportCacheFor(**store, spec, *r, final_layers));
      if (spec.type == CacheType::kLocal) {
        return oci::SaveOciLayout(**store, {cache.digest.ToString()}, spec.dir, spec.tag);
      }
      STRATA_RETURN_IF_ERROR(ensure_client());
      registry::PushOptions po;
      po.progress = &pull_progress;
      STRATA_ASSIGN_OR_RETURN(auto pushed,
                              client->Push(**store, cache.digest.ToString(), *spec.ref, po));
      (void)pushed;
      return OkStatus();
    }();
    if (!exported) {
      Error e = exported.error().Wrap(fmt::format("--cache-to {}", spec.raw));
      if (!spec.ignore_error) return Fail(e);
      fmt::print(stderr, "WARNING: {}\n", e.message());
    }
  }
  for (const auto& t : push_refs) {
    if (auto s = ensure_client(); !s) return Fail(s.error());
    registry::PushOptions po;
    po.progress = &pull_progress;
    auto pushed = client->Push(**store, push_source, t, po);
    if (!pushed) return Fail(pushed.error().Wrap(fmt::format("push {}", t.Familiar())));
    if (auto s = PushAttestations(*client, **store, r->manifest.digest, t, po, quiet); !s) {
      return Fail(s.error().Wrap(fmt::format("push {}", t.Familiar())));
    }
    PrintPushSummary(*pushed, quiet);
    if (!quiet) {
      fmt::print(stderr, "Pushed {} {}\n", t.ToString(), pushed->descriptor.digest.ToString());
    }
  }
  if (!f.metadata_file.empty()) {
    auto md = BuildMetadataJson(r->manifest, r->config, r->tags);
    // An index has no config of its own (buildx writes none either).
    if (multi_platform) md.erase("containerimage.config.digest");
    if (auto s = WriteFileAtomic(f.metadata_file, md.dump(2) + "\n"); !s) {
      return Fail(s.error().Wrap("--metadata-file"));
    }
  }
  if (!quiet) {
    for (const auto& t : r->tags) fmt::print(stderr, "Tagged {}\n", t.Familiar());
    fmt::print(stderr, "Built in {:.2f}s ({} steps, {} cached)\n", secs, r->steps, r->cached_steps);
  }
  // With an output on stdout the ID goes to stderr: stdout is the archive.
  fmt::print(to_stdout ? stderr : stdout, "{}\n", r->manifest.digest.ToString());
  return kExitOk;
}

}  // namespace

Verb BuildVerb() {
  return {
      "build", "Build an image from a Dockerfile", [](CLI::App& app) -> Action {
        auto f = std::make_shared<BuildFlags>();
        // Repeatable options take one value each time, as docker's do
        // (`-t a CONTEXT --pull` must not read CONTEXT as a second tag).
        app.add_option("-t,--tag", f->tags, "Name and tag the image (repeatable)")
            ->allow_extra_args(false);
        app.add_option("-f,--file", f->file,
                       "Dockerfile (default CONTEXT/Dockerfile; - reads stdin)");
        app.add_option("--build-arg", f->build_args, "Build-time variable KEY=VALUE")
            ->allow_extra_args(false);
        app.add_option("--target", f->target, "Build up to this stage");
        app.add_flag("--no-cache", f->no_cache, "Do not use the build cache");
        app.add_option("--network", f->network,
                       "RUN network: default (private, outbound through a user-space NAT), "
                       "none, or host (needs --allow network.host)");
        app.add_option("--allow", f->allow,
                       "Grant an entitlement: network.host, security.insecure (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--compression", f->compression, "Layer compression: gzip or zstd");
        app.add_option("--compression-level", f->compression_level,
                       "Codec level: gzip 0-9 (default 1; libdeflate 0-8, 9 = libdeflate 12), "
                       "zstd 1-19 (default 3)");
        app.add_option("--progress", f->progress,
                       "auto, plain, tty, json, rawjson (= json), quiet (= -q)");
        app.add_option("--iidfile", f->iidfile, "Write the image ID (manifest digest) here");
        app.add_flag("--push", f->push, "Push the image after building");
        app.add_option("--lazy-base", f->lazy_base,
                       "true (default): a base whose file system no step reads (no RUN, "
                       "WORKDIR or COPY without --link) is not downloaded, only its manifest "
                       "and config; push mounts or fetches its layers, unpack/save fetch them");
        app.add_option("--label", f->labels, "Set an image label KEY=VALUE")
            ->allow_extra_args(false);
        app.add_option("--runtime", f->runtime, "OCI runtime for RUN (runc, crun, or a path)");
        app.add_flag("--print-plan", f->print_plan, "Print the parsed plan as JSON and exit");
        app.add_flag("--check", f->check,
                     "Run the build checks (BuildKit's linter) only; exit 1 on violations");
        app.add_option("--pull", f->pull,
                       "Pull policy: always, missing, never; a bare --pull is always")
            ->expected(0, 1)
            ->default_str("always");
        app.add_option("--platform", f->platform,
                       "Target platforms os/arch[/variant],... (several: one image each and an "
                       "index; foreign RUN steps need `strata binfmt --install`)");
        app.add_option("--cache-from", f->cache_from,
                       "Import build-cache records: REF, or BuildKit's type=registry,ref=R / "
                       "type=local,src=DIR (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--cache-to", f->cache_to,
                       "Export this build's cache records: REF, or BuildKit's "
                       "type=registry,ref=R[,mode=min|max] / type=local,dest=DIR "
                       "(repeatable)")
            ->allow_extra_args(false);
        app.add_option("-o,--output", f->outputs,
                       "Output in BuildKit's syntax: type=local|tar|oci|docker|image|"
                       "registry,... or DIR (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--annotation", f->annotations, "Manifest annotation KEY=VALUE (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--metadata-file", f->metadata_file,
                       "Write BuildKit's build metadata (containerimage.digest, ...) as JSON");
        app.add_option("--build-context", f->build_contexts,
                       "Named context NAME=DIR|docker-image://REF|oci-layout://DIR|URL.tar|git URL "
                       "(overrides FROM/--from NAME)")
            ->allow_extra_args(false);
        app.add_option("--no-cache-filter", f->no_cache_filter,
                       "Do not use the build cache for stage STAGE (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--secret", f->secrets, "Secret for RUN --mount=type=secret: id=ID,src=PATH")
            ->allow_extra_args(false);
        app.add_option("--ssh", f->ssh,
                       "SSH agent for RUN --mount=type=ssh and git: default|ID[=SOCKET|KEY[,KEY]]")
            ->allow_extra_args(false);
        app.add_flag("--load", f->load,
                     "Keep the image in the local store (buildx's --load; strata always does)");
        app.add_option("--provenance", f->provenance,
                       "SLSA provenance attestation: true (mode=min), false, "
                       "mode=min|max[,builder-id=URI]; a bare --provenance is true")
            ->expected(0, 1)
            ->default_str("true");
        app.add_option("--sbom", f->sbom,
                       "SPDX SBOM attestation of the image: true or false; a bare --sbom is true")
            ->expected(0, 1)
            ->default_str("true");
        app.add_flag("--lock", f->lock.lock,
                     "Write strata.lock next to the Dockerfile: every image and ADD URL the "
                     "build resolved, pinned by digest (merged with the pins already there)");
        app.add_flag("--update-lock", f->lock.update_lock,
                     "Refresh strata.lock with what the inputs resolve to now");
        app.add_flag("--locked", f->lock.locked,
                     "Fail at the first image or ADD URL that is not pinned in strata.lock or "
                     "resolves to something else");
        app.add_flag("--check-reproducible", f->check_reproducible,
                     "Build a second time in a fresh temporary store from the same inputs "
                     "(no cache) and fail naming the first differing file if the images differ");
        app.add_option("--attest-format", f->attest_format,
                       "oci (default: OCI 1.1 referrers of the image manifest) or buildkit "
                       "(attestation manifests inside an image index)");
        app.add_option("--add-host", f->add_hosts,
                       "Add HOST:IP to every RUN's /etc/hosts (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--ulimit", f->ulimits,
                       "Every RUN's resource limit NAME=SOFT[:HARD] (repeatable)")
            ->allow_extra_args(false);
        app.add_option("--shm-size", f->shm_size, "Size of every RUN's /dev/shm (default 64m)");
        // Required: CLI11 then keeps the last argument for it, so a
        // bare `--pull CONTEXT` is --pull=always, as with docker.
        app.add_option("CONTEXT", f->context,
                       "Build context: a directory, - (a tar on stdin), a git URL "
                       "(URL.git#REF:SUBDIR, ssh://, git@host:repo) or a tarball URL")
            ->required();
        return [f](Context& ctx) { return RunBuild(ctx, *f); };
      }};
}

}  // namespace strata::cli
