// OciRuntimeRunner: the real CommandRunner. Runs a RUN step with an OCI
// runtime (runc or crun) as `RUNTIME --root STATE run --bundle DIR ID`.
//
// Per Run():
//   1. resolves spec.user in the rootfs (user_db.h) and writes a bundle dir
//      (config.json from runtime_spec.h, plus the hosts, resolv.conf and
//      hostname files it binds) under options.bundle_dir; for the default
//      network (NetworkMode::kPrivate) it creates the private network
//      namespace and starts its NAT helper (run_network.h), both torn down
//      after the step whatever happens;
//   2. starts the runtime with stdin on /dev/null, stdout/stderr on pipes
//      and no other file descriptor of strata's, reading the pipes with poll(), handing complete
//      lines to the sink as they arrive (no tty; large outputs stream, nothing is buffered whole);
//   3. on spec.cancel, sends `RUNTIME kill ID KILL` (repeated until the
//      container is gone) and returns Cancelled;
//   4. always runs `RUNTIME delete -f ID`, removes the bundle, and removes
//      mount points the runtime had to create in the rootfs (e.g. an empty
//      /etc/hosts in an image without one) so they do not end up in the layer.
// A runtime that fails to start the container (bad config, missing
// executable) is an error carrying the runtime's message, distinct from the
// command exiting non-zero; this uses the runtime's `--log FILE --log-format
// json`, supported by runc and crun.
//
// Runtime selection: options.runtime (a name looked up in options.path_env,
// or a path) if set, else the first of "runc", "crun" whose `--version`
// succeeds. The choice is probed once per runner object and cached.
// Thread-safe: Run() may be called concurrently (each run has its own id and
// bundle).
#pragma once

#include <array>
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/runtime/command_runner.h"
#include "builder/runtime/run_network.h"
#include "oci/util/file_util.h"

namespace strata::builder {

struct OciRuntimeRunnerOptions {
  // Explicit runtime (`--runtime`): a name searched in path_env or a path.
  // Empty = auto-select among kDefaultRuntimes.
  std::string runtime;
  // The runtime's state dir (`--root`), e.g. STORE/runtime/runc. Required.
  std::filesystem::path state_dir;
  // Where bundle dirs are created; empty = a "bundles" sibling of state_dir
  // (not inside it: the runtime treats every entry of its root as a container).
  std::filesystem::path bundle_dir;
  // PATH used to find runtimes by name; empty = $PATH at construction.
  std::string path_env;
  // The host's resolver config copied (or adapted) into the container.
  std::filesystem::path host_resolv_conf = "/etc/resolv.conf";
  // Pass --no-pivot to `run` (for roots where pivot_root is impossible).
  bool no_pivot = false;
  // The NAT helper of the default network: a name searched in path_env or a
  // path. Empty = kNatHelper.
  std::string nat_helper;
  // linux.resources.pids.limit of every step; 0 = none.
  int64_t pids_limit = kDefaultPidsLimit;
  // A RunOwner's token (run_reaper.h): container ids and bundle dirs are
  // named after it so that a later strata process can tell whether their
  // owner is alive. Empty = ids from the pid (nothing reapable by owner).
  std::string owner;
};

inline constexpr std::array<std::string_view, 2> kDefaultRuntimes = {"runc", "crun"};

class OciRuntimeRunner : public CommandRunner {
 public:
  explicit OciRuntimeRunner(OciRuntimeRunnerOptions options);
  // Stops the networks kept for reuse.
  ~OciRuntimeRunner() override;

  // The runtime executable to use (absolute path). NotFound when no
  // candidate exists; FailedPrecondition when candidates exist but none
  // works (the message lists why). Cached after the first success.
  Result<std::filesystem::path> Runtime();

  Result<int> Run(const RunSpec& spec, OutputSink& sink) override;

 private:
  // A default network (namespace + NAT helper) kept between steps: setting
  // one up and stopping it cost 33-57 ms per RUN. Steps of one build take
  // an idle one or make one, and give it back afterwards unless the step ran
  // with security=insecure (it could have reconfigured the namespace), was
  // cancelled, or the helper died; BuildKit pools its namespaces likewise.
  // A step's processes never outlive it (their pid namespace dies with the
  // container), so nothing of one step listens in the next.
  struct PooledNetwork {
    ScopedTempDir dir;  // holds netns and nat.log; removed after `net`
    PrivateNetwork net;
  };
  Result<std::unique_ptr<PooledNetwork>> TakeNetwork(const std::filesystem::path& helper,
                                                     const std::string& prefix);
  void GiveBackNetwork(std::unique_ptr<PooledNetwork> net);
  Result<std::filesystem::path> SelectRuntime();

  OciRuntimeRunnerOptions options_;
  std::mutex mu_;
  std::optional<std::filesystem::path> runtime_;  // guarded by mu_
  std::atomic<uint64_t> counter_{0};
  std::mutex net_mu_;
  std::vector<std::unique_ptr<PooledNetwork>> idle_networks_;  // guarded by net_mu_
};

// `RUNTIME --root STATE_DIR delete -f ID`, bounded to 30 s. Unavailable on
// timeout, Internal with the runtime's output when it fails.
Status DeleteContainer(const std::filesystem::path& runtime, const std::filesystem::path& state_dir,
                       std::string_view id);

// Looks `name` up in the colon-separated `path_env` (a name containing '/'
// is returned as is if executable). NotFound otherwise.
Result<std::filesystem::path> FindExecutable(std::string_view name, std::string_view path_env);

}  // namespace strata::builder
