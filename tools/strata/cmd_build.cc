// strata build: run a Dockerfile into a new image (see builder/executor.h).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "builder/engine/executor.h"
#include "builder/frontend/plan.h"
#include "builder/runtime/build_namespace.h"
#include "builder/runtime/oci_runtime_runner.h"
#include "builder/runtime/run_reaper.h"
#include "oci/json_util.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "registry/transport.h"
#include "tools/curl/curl_transport.h"
#include "tools/strata/registry_cli.h"
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
  std::string compression = "gzip";
  int compression_level = -1;
  std::string progress = "auto";
  std::string iidfile;
  bool push = false;
  std::vector<std::string> labels;
  std::string runtime;
  bool print_plan = false;
  bool check = false;
  std::string pull = "missing";
  std::string platform;
  std::vector<std::string> secrets;
  std::vector<std::string> cache_from;
  std::string cache_to;
  std::string context;
};

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

int RunBuild(Context& ctx, const BuildFlags& f) {
  auto args = ParseKeyValues(f.build_args, "--build-arg", true);
  if (!args) return Fail(args.error());
  auto labels = ParseKeyValues(f.labels, "--label", false);
  if (!labels) return Fail(labels.error());
  fs::path context = f.context;
  fs::path dockerfile = f.file.empty() ? context / "Dockerfile" : fs::path(f.file);
  std::optional<std::string> stdin_text;
  if (f.file == "-") {
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
  if (f.print_plan) {
    builder::ParseOptions po;
    po.file_name = dockerfile.filename().string();
    po.build_args = *args;
    po.target = f.target;
    auto plan = builder::ParseDockerfileToJson(*text, po);
    if (!plan) return Fail(plan.error());
    fmt::print("{}\n", oci::DumpJson(*plan, 2));
    return kExitOk;
  }
  builder::BuildOptions o;
  o.context_dir = context;
  o.dockerfile = dockerfile;
  o.dockerfile_text = std::move(*text);
  o.tags = f.tags;
  o.build_args = *args;
  o.target = f.target;
  o.no_cache = f.no_cache;
  o.labels = *labels;
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
  for (const auto& sec : f.secrets) {
    // buildx's forms: id=ID,src=PATH (or source=), id=ID,env=VAR, type=file|env,
    // and id=ID alone (the variable ID if set, else the file ID).
    std::string id, src, env, type;
    size_t i = 0;
    while (i <= sec.size()) {
      size_t j = sec.find(',', i);
      if (j == std::string::npos) j = sec.size();
      std::string part = sec.substr(i, j - i);
      i = j + 1;
      size_t eq = part.find('=');
      std::string key = part.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
      if (key == "id") {
        id = value;
      } else if (key == "src" || key == "source") {
        src = value;
      } else if (key == "env") {
        env = value;
      } else if (key == "type" && (value == "file" || value == "env")) {
        type = value;
      } else {
        return Fail(Error(ErrorCode::kInvalidArgument,
                          fmt::format("--secret {}: unknown or bad field \"{}\" (want id=, src=, "
                                      "env=, type=file|env)",
                                      sec, part)));
      }
    }
    if (id.empty()) id = !src.empty() ? fs::path(src).filename().string() : env;
    if (id.empty() || (!src.empty() && !env.empty())) {
      return Fail(Error(ErrorCode::kInvalidArgument,
                        fmt::format("--secret {}: want id=ID,src=PATH or id=ID,env=VAR", sec)));
    }
    if (type == "env" && env.empty()) env = !src.empty() ? std::exchange(src, "") : id;
    if (type == "file" && src.empty()) src = id;
    if (src.empty() && env.empty()) {
      // id alone: the environment first, then a file of that name.
      if (std::getenv(id.c_str()) != nullptr) {
        env = id;
      } else {
        src = id;
      }
    }
    builder::BuildOptions::Secret s;
    if (!env.empty()) {
      const char* v = std::getenv(env.c_str());
      if (v == nullptr) {
        return Fail(
            Error(ErrorCode::kNotFound,
                  fmt::format("--secret {}: environment variable {} is not set", sec, env)));
      }
      s.value = v;
    } else {
      std::error_code ec;
      if (!fs::is_regular_file(src, ec)) {
        return Fail(Error(ErrorCode::kNotFound,
                          fmt::format("--secret {}: {} is not a readable file", sec, src)));
      }
      s.file = src;
    }
    o.secrets[id] = std::move(s);
  }
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
  if (f.compression == "zstd") {
    o.compression.compression = oci::Compression::kZstd;
  } else if (f.compression != "gzip") {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("--compression {}: want gzip or zstd", f.compression)));
  }
  o.compression.level = f.compression_level;
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    char* end = nullptr;
    long long v = std::strtoll(sde, &end, 10);
    if (*end != '\0' || v < 0) {
      return Fail(Error(ErrorCode::kInvalidArgument,
                        fmt::format("SOURCE_DATE_EPOCH={} is not a unix time", sde)));
    }
    o.source_date_epoch = v;
  }
  if (!f.platform.empty()) {
    // Cross-platform builds (emulation) are not supported: refuse rather
    // than build for the host under another name.
    auto p = oci::Platform::Parse(f.platform);
    if (!p) return Fail(p.error());
    if (!oci::Platform::Host().Matches(*p)) {
      return Fail(Error(ErrorCode::kUnimplemented,
                        fmt::format("--platform {}: only the host platform ({}) can be built here",
                                    f.platform, oci::Platform::Host().ToString())));
    }
  }
  if (f.push && f.tags.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument, "build --push needs at least one -t REF"));
  }
  if (f.pull != "missing" && f.pull != "always" && f.pull != "never") {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("--pull {}: want always, missing or never", f.pull)));
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

  std::unique_ptr<builder::ProgressSink> progress;
  std::string mode = f.progress;
  if (ctx.global.quiet) mode = "quiet";
  if (mode == "auto") mode = ::isatty(STDERR_FILENO) ? "tty" : "plain";
  if (mode == "tty" && !::isatty(STDERR_FILENO)) mode = "plain";
  if (mode == "tty") {
    progress = std::make_unique<TtyProgress>();
  } else if (mode == "plain") {
    progress = std::make_unique<PlainProgress>();
  } else if (mode == "json") {
    progress = std::make_unique<JsonProgress>();
  } else if (mode == "quiet") {
    progress = std::make_unique<QuietProgress>();
  } else {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("--progress {}: want auto, plain, tty, json", f.progress)));
  }
  // FROM images that are not in the store come from their registry.
  std::shared_ptr<registry::CredentialStore> creds;
  std::unique_ptr<registry::Client> client;
  StderrProgress pull_progress(ctx.global.quiet || mode == "json");
  auto ensure_client = [&]() -> Status {
    if (client) return OkStatus();
    STRATA_ASSIGN_OR_RETURN(creds, MakeCredentialStore(ctx));
    client = MakeClient(ctx, creds);
    return OkStatus();
  };
  oci::Store* store_ptr = store->get();
  if (f.pull != "never") {
    o.pull_always = f.pull == "always";
    o.resolver = [&](const oci::Reference& ref,
                     const oci::Platform& platform) -> Result<oci::Descriptor> {
      STRATA_RETURN_IF_ERROR(ensure_client());
      registry::PullOptions po;
      po.platform = platform;
      po.progress = &pull_progress;
      STRATA_ASSIGN_OR_RETURN(auto pulled, client->Pull(*store_ptr, ref, po));
      return pulled.manifest;
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
  // --cache-from: pull each cache image and import its records; a missing
  // cache (the first CI run) is a warning, as with BuildKit.
  for (const auto& ref_s : f.cache_from) {
    auto ref = oci::Reference::Parse(ref_s);
    if (!ref) return Fail(ref.error().Wrap("--cache-from"));
    if (auto s = ensure_client(); !s) return Fail(s.error());
    registry::PullOptions po;
    po.progress = &pull_progress;
    auto pulled = client->Pull(**store, *ref, po);
    if (!pulled) {
      progress->Warning(fmt::format("--cache-from {}: {}", ref_s, pulled.error().message()));
      continue;
    }
    auto img = (*store)->LoadImage(pulled->manifest);
    if (!img) return Fail(img.error().Wrap(fmt::format("--cache-from {}", ref_s)));
    auto n = builder::ImportCache(**store, *img);
    if (!n) return Fail(n.error().Wrap(fmt::format("--cache-from {}", ref_s)));
  }
  builder::Executor exec(**store, runner, *progress);
  auto start = std::chrono::steady_clock::now();
  auto r = exec.Build(o);
  progress.reset();  // a live tty display is erased/finished before we print
  if (!r) return Fail(r.error());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!f.iidfile.empty()) {
    if (auto s = WriteFileAtomic(f.iidfile, r->manifest.digest.ToString()); !s) {
      return Fail(s.error());
    }
  }
  if (!f.cache_to.empty()) {
    auto ref = oci::Reference::Parse(f.cache_to);
    if (!ref) return Fail(ref.error().Wrap("--cache-to"));
    auto cache = builder::ExportCache(**store, r->cache_records);
    if (!cache) return Fail(cache.error().Wrap("--cache-to"));
    if (auto s = ensure_client(); !s) return Fail(s.error());
    registry::PushOptions po;
    po.progress = &pull_progress;
    auto pushed = client->Push(**store, cache->digest.ToString(), *ref, po);
    if (!pushed) return Fail(pushed.error().Wrap(fmt::format("--cache-to {}", f.cache_to)));
  }
  if (f.push) {
    if (auto s = ensure_client(); !s) return Fail(s.error());
    for (const auto& t : r->tags) {
      registry::PushOptions po;
      po.progress = &pull_progress;
      auto pushed = client->Push(**store, r->manifest.digest.ToString(), t, po);
      if (!pushed) return Fail(pushed.error().Wrap(fmt::format("push {}", t.Familiar())));
      if (!ctx.global.quiet) {
        fmt::print(stderr, "Pushed {} {}\n", t.ToString(), pushed->descriptor.digest.ToString());
      }
    }
  }
  if (!ctx.global.quiet) {
    for (const auto& t : r->tags) fmt::print(stderr, "Tagged {}\n", t.Familiar());
    fmt::print(stderr, "Built in {:.2f}s ({} steps, {} cached)\n", secs, r->steps, r->cached_steps);
  }
  fmt::print("{}\n", r->manifest.digest.ToString());
  return kExitOk;
}

}  // namespace

Verb BuildVerb() {
  return {"build", "Build an image from a Dockerfile", [](CLI::App& app) -> Action {
            auto f = std::make_shared<BuildFlags>();
            app.add_option("-t,--tag", f->tags, "Name and tag the image (repeatable)");
            app.add_option("-f,--file", f->file,
                           "Dockerfile (default CONTEXT/Dockerfile; - reads stdin)");
            app.add_option("--build-arg", f->build_args, "Build-time variable KEY=VALUE");
            app.add_option("--target", f->target, "Build up to this stage");
            app.add_flag("--no-cache", f->no_cache, "Do not use the build cache");
            app.add_option("--network", f->network,
                           "RUN network: default (private, outbound through a user-space NAT), "
                           "none, or host (needs --allow network.host)");
            app.add_option("--allow", f->allow,
                           "Grant an entitlement: network.host, security.insecure (repeatable)");
            app.add_option("--compression", f->compression, "Layer compression: gzip or zstd");
            app.add_option("--compression-level", f->compression_level,
                           "Codec level: gzip 0-9 (default 1; libdeflate 0-8, 9 = libdeflate 12), "
                           "zstd 1-19 (default 3)");
            app.add_option("--progress", f->progress, "auto, plain, tty, json");
            app.add_option("--iidfile", f->iidfile, "Write the image ID (manifest digest) here");
            app.add_flag("--push", f->push, "Push the image after building");
            app.add_option("--label", f->labels, "Set an image label KEY=VALUE");
            app.add_option("--runtime", f->runtime, "OCI runtime for RUN (runc, crun, or a path)");
            app.add_flag("--print-plan", f->print_plan, "Print the parsed plan as JSON and exit");
            app.add_flag("--check", f->check,
                         "Run the build checks (BuildKit's linter) only; exit 1 on violations");
            app.add_option("--pull", f->pull, "Pull policy: always, missing, never");
            app.add_option("--platform", f->platform, "Target platform (host only for now)");
            app.add_option("--cache-from", f->cache_from,
                           "Import build-cache records from this registry image (repeatable)");
            app.add_option("--cache-to", f->cache_to,
                           "Export this build's cache records to this registry image");
            app.add_option("--secret", f->secrets,
                           "Secret for RUN --mount=type=secret: id=ID,src=PATH");
            app.add_option("CONTEXT", f->context, "Build context directory")->required();
            return [f](Context& ctx) { return RunBuild(ctx, *f); };
          }};
}

}  // namespace strata::cli
