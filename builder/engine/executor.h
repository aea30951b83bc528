// Executor: runs a Plan (plan.h) into new, immutable images in the store.
//
// Per stage, in dependency order: FROM seeds the config and layer chain (a
// stored image, a previous stage, or scratch; ONBUILD triggers of the base
// run first); each instruction is expanded at dispatch with the stage's ENV
// and the ARGs in effect, then:
//   RUN       a writable snapshot of the chain (Snapshotter: overlayfs, or
//             copies), run by the CommandRunner; its changes become the
//             layer (whiteouts converted) and, renamed, the snapshot of the
//             new chain.
//   COPY/ADD  selected sources (after .dockerignore) copied into a staging
//             dir that becomes the layer and the snapshot.
//   others    config and history only.
// Steps that make layers are cached (build_cache.h) under a key chained from
// the parent's key, the expanded instruction, the env/args in effect and the
// content digests of COPY sources; a miss disables lookups for the rest of
// the stage. Nothing is tagged unless the whole build succeeds, and no
// existing blob is ever opened for writing.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "builder/engine/build_cache.h"
#include "builder/engine/clock.h"
#include "builder/engine/git_source.h"
#include "builder/engine/named_contexts.h"
#include "builder/engine/snapshotter.h"
#include "builder/engine/step_progress.h"
#include "builder/frontend/plan.h"
#include "builder/runtime/binfmt.h"
#include "builder/runtime/command_runner.h"
#include "oci/compress.h"
#include "oci/descriptor.h"
#include "oci/layer_reader.h"
#include "oci/reference.h"
#include "oci/store.h"

namespace strata::builder {

// Finds an image that is not in the store (pull). Returns its descriptor in
// the store after fetching, or an error.
using ImageResolver =
    std::function<Result<oci::Descriptor>(const oci::Reference& ref, const oci::Platform&)>;

// Fetches a blob that is not in the store (a lazy base layer) from the
// registry recorded as its source (oci/blob_sources.h), verified, into the
// store. Injected like ImageResolver (builder/ never speaks HTTP).
using BlobFetcher = std::function<Status(const oci::Descriptor& blob)>;

// Downloads `url` into `dest` (a new file) for ADD; sets `last_modified` to
// the Last-Modified header's value ("" if none). Injected by the caller so
// builder/ never speaks HTTP itself.
using UrlFetcher = std::function<Status(const std::string& url, const std::filesystem::path& dest,
                                        std::string* last_modified)>;

inline constexpr std::string_view kAllowNetworkHost = "network.host";
inline constexpr std::string_view kAllowSecurityInsecure = "security.insecure";

// An input the build resolved from outside the context (provenance's
// resolvedDependencies): an image by manifest digest, an ADD URL by the
// digest of its content, a git source by its commit.
struct ResolvedInput {
  enum class Kind { kImage, kUrl, kGit };
  Kind kind = Kind::kImage;
  // image: the normalized reference; url: the URL as written; git: the
  // remote without a password, `#REF` (HEAD when none) and `:SUBDIR` if any.
  std::string ref;
  oci::Digest digest;    // image: the platform's manifest; url: the content; git: unset
  std::string platform;  // image: the platform resolved ("linux/amd64"); else ""
  std::string commit = {};  // git: the commit the ref resolved to
  auto operator<=>(const ResolvedInput&) const = default;
};

struct BuildOptions {
  // The snapshotter for this build (snapshotter_choice.h: overlay, with
  // userxattr in a rootless build, or copies); null = the Executor's own.
  // Not owned; outlives the build.
  Snapshotter* snapshotter = nullptr;
  std::filesystem::path context_dir;
  std::filesystem::path dockerfile;  // empty = context_dir/Dockerfile
  // The Dockerfile's text (the CLI reads it once, also for `-f -`);
  // `dockerfile` then only names it in messages and locates its
  // <name>.dockerignore. Without it the executor reads `dockerfile`.
  std::optional<std::string> dockerfile_text;
  std::vector<std::string> tags;
  std::map<std::string, std::string> build_args;
  std::string target;
  bool no_cache = false;
  // --no-cache-filter: stages (by AS name, or index) rebuilt without the
  // cache while the others still hit it. A name that is no stage of the
  // Dockerfile fails the build before any step runs (InvalidArgument).
  std::vector<std::string> no_cache_stages;
  // --build-context NAME=VALUE: NAME in FROM, COPY --from and RUN --mount
  // from= means VALUE (builder/engine/named_contexts.h).
  std::map<std::string, NamedContext> named_contexts;
  // RUN's network unless a RUN says otherwise (--network default|none|host).
  NetworkMode network = NetworkMode::kPrivate;
  // Granted entitlements (`--allow`, BuildKit's names): kAllowNetworkHost
  // lets RUN use the host network, kAllowSecurityInsecure lets a RUN use
  // --security=insecure. Without them such a RUN fails (PermissionDenied).
  std::set<std::string, std::less<>> allow;
  oci::CompressOptions compression;
  // Largest uncompressed layer applied to disk (base-image snapshots, ADD
  // of a local archive).
  uint64_t max_layer_bytes = oci::kDefaultMaxLayerBytes;
  std::map<std::string, std::string> labels;
  // Annotations of the image manifest (`--annotation`, `-o annotation.K=V`).
  std::map<std::string, std::string> manifest_annotations;
  std::optional<int64_t> source_date_epoch;
  // Where to find a FROM image that is not in the store; empty = error.
  ImageResolver resolver;
  // "always" resolves every FROM image through `resolver` first.
  bool pull_always = false;
  // Lazy base layers, used only when both are set: a FROM image that is not
  // in the store, of a stage that never reads its base's file system
  // (builder/frontend/base_use.h; ONBUILD triggers in its config count as
  // reading), is resolved through `metadata_resolver`, which stores its
  // manifest and config only (and returns the manifest's descriptor; the
  // reference is tagged, so a rebuild finds it offline); the built image then
  // references layers the store does not have. Whatever later needs such a
  // layer (a stage that does read it, a view of the chain) fetches it
  // through `blob_fetcher` first.
  ImageResolver metadata_resolver;
  BlobFetcher blob_fetcher;
  // --secret: what RUN --mount=type=secret can use (never part of a layer, a
  // cache key or the history), by id: a file (src=PATH) or a value taken
  // from the CLI's environment (env=VAR), kept in memory.
  struct Secret {
    std::filesystem::path file;        // set for a file secret
    std::optional<std::string> value;  // set for an environment secret
  };
  std::map<std::string, Secret> secrets;
  // Every RUN's extra /etc/hosts entries (--add-host), resource limits
  // (--ulimit: replace the runtime's defaults of their type; the CLI
  // refuses values above its own hard limits) and /dev/shm size (--shm-size,
  // 0 = 64 MiB). Part of each RUN's cache key when set, as in BuildKit's
  // ExecOp.
  std::vector<HostEntry> extra_hosts;
  std::vector<Rlimit> ulimits;
  uint64_t shm_size_bytes = 0;
  // ADD https://...; empty = ADD of a URL is an error.
  UrlFetcher fetcher;
  // ADD <git source> (git_source.h); null = ADD of a git source is an error.
  // Not owned; outlives the build.
  GitClient* git = nullptr;
  // --ssh: the agent socket of each id RUN --mount=type=ssh can use (the
  // caller's SSH_AUTH_SOCK, or an agent the CLI started for key files). The
  // socket is relayed into the RUN (ssh_relay.h), never stored anywhere.
  std::map<std::string, std::filesystem::path> ssh;
  // The platform this build makes (`--platform`; one per Build): the
  // predefined TARGET* ARGs, the config's os/architecture/variant, the
  // manifest a FROM picks from an index. Unset: the host's. A stage with
  // `FROM --platform=P` is built for P (BUILDPLATFORM: natively).
  std::optional<oci::Platform> platform;
  // binfmt_misc, checked before a RUN for a foreign architecture runs
  // (builder/runtime/binfmt.h); tests point it at a fake directory.
  std::filesystem::path binfmt_dir = std::string(kBinfmtMiscDir);
  // Called with every image and URL as it is resolved (`build --locked`:
  // builder/engine/lockfile.h); an error fails the build at that step.
  std::function<Status(const ResolvedInput&)> check_input;
};

struct BuildResult {
  oci::Descriptor manifest;
  oci::Digest config;
  std::vector<oci::Reference> tags;
  int steps = 0;
  int cached_steps = 0;
  // The cache records the build hit or wrote (for --cache-to).
  std::vector<std::pair<oci::Digest, CacheRecord>> cache_records;
  // BuildPlatforms: each platform's image (manifest above is their index).
  std::vector<std::pair<oci::Platform, oci::Descriptor>> platform_images;
  // Every image and URL the build resolved, sorted, each once.
  std::vector<ResolvedInput> inputs;
};

// The ENV of `image` when it is in the store (for the UndefinedVar check,
// which never pulls); nullopt otherwise.
std::optional<std::vector<std::string>> LocalImageEnv(const oci::Store& store,
                                                      const std::string& image);

// `build --check`: BuildKit's build checks only, nothing built.
struct CheckReport {
  std::string text;  // as `docker build --check` prints it
  size_t warnings = 0;
  std::string error;  // "lint violation found for rules: ..." with check=error=true
};
Result<CheckReport> CheckDockerfile(const oci::Store& store, const BuildOptions& options);

class Executor {
 public:
  // The production seams: overlayfs snapshots and the system clock.
  Executor(oci::Store& store, CommandRunner& runner, ProgressSink& progress);
  // Injected seams (tests: NativeSnapshotter, a FixedClock).
  Executor(oci::Store& store, CommandRunner& runner, ProgressSink& progress,
           Snapshotter& snapshotter, Clock& clock)
      : store_(store),
        runner_(runner),
        progress_(progress),
        snapshotter_(snapshotter),
        clock_(clock) {}

  // Parses the Dockerfile, runs the stages the target needs, writes config
  // and manifest, tags every `tags` entry. Errors name the Dockerfile line.
  Result<BuildResult> Build(const BuildOptions& options);
  // The target once per platform (options.platform ignored), each an image
  // of its own, then an OCI image index of them with platform descriptors,
  // tagged with every `tags` entry (the children are untagged). The result's
  // manifest is the index; steps, cached steps and cache records are those
  // of all platforms. Progress names carry the platform. multi_platform.cc.
  Result<BuildResult> BuildPlatforms(const BuildOptions& options,
                                     const std::vector<oci::Platform>& platforms);

 private:
  oci::Store& store_;
  CommandRunner& runner_;
  ProgressSink& progress_;
  std::unique_ptr<Snapshotter> own_snapshotter_;
  std::unique_ptr<Clock> own_clock_;
  Snapshotter& snapshotter_;
  Clock& clock_;
};

}  // namespace strata::builder
