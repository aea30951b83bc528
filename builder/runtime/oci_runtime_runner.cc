#include "builder/runtime/oci_runtime_runner.h"

#include "oci/json_util.h"
#include "oci/util/userns.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <stop_token>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "builder/runtime/rootless.h"
#include "builder/runtime/run_reaper.h"
#include "builder/runtime/runtime_spec.h"
#include "builder/runtime/user_db.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"
#include "oci/util/strings.h"
#include "oci/util/unique_fd.h"

extern char** environ;

namespace strata::builder {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxLine = 64 * 1024;

// ---- child processes -------------------------------------------------------

struct Child {
  pid_t pid = -1;
  UniqueFd out;  // read end of the child's stdout (invalid if not captured)
  UniqueFd err;  // read end of the child's stderr
};

// Starts argv[0] (a path) with stdin on /dev/null and stdout/stderr on pipes.
Result<Child> Spawn(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  // Only stdio reaches the child (and so the runtime and the container),
  // even if some descriptor of this process lacks O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = ::posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, fmt::format("start {}", argv[0]));
  return Child{pid, std::move(out_r), std::move(err_r)};
}

// Waits for `pid`; returns the exit code, 128+N for a signal.
int WaitExit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 255;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

struct Captured {
  int exit_code = -1;
  std::string output;  // stdout + stderr interleaved as read
};

// Runs argv to completion (killing it after `timeout`), capturing output.
Result<Captured> RunCaptured(const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout) {
  STRATA_ASSIGN_OR_RETURN(Child child, Spawn(argv));
  Captured c;
  auto deadline = Clock::now() + timeout;
  bool killed = false;
  std::vector<UniqueFd*> open = {&child.out, &child.err};
  while (!open.empty()) {
    std::vector<pollfd> fds;
    for (UniqueFd* f : open) fds.push_back(pollfd{f->get(), POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int n = ::poll(fds.data(), fds.size(), std::max<int>(0, static_cast<int>(left.count())));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!killed) {
        ::kill(child.pid, SIGKILL);
        killed = true;
        deadline = Clock::now() + std::chrono::seconds(5);
        continue;
      }
      break;  // a grandchild holds the pipe; give up reading
    }
    for (size_t i = fds.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
      if (r > 0 && c.output.size() < (1 << 20)) c.output.append(buf, static_cast<size_t>(r));
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        open[i]->Reset();
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  c.exit_code = WaitExit(child.pid);
  if (killed) {
    return MakeError(ErrorCode::kUnavailable, "{} timed out after {} ms", argv[0], timeout.count());
  }
  return c;
}

bool IsExecutableFile(const std::filesystem::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// ---- line splitting ----------------------------------------------------------

class LineSplitter {
 public:
  LineSplitter(OutputStream stream, OutputSink& sink) : stream_(stream), sink_(sink) {}
  void Feed(std::string_view data) {
    while (!data.empty()) {
      size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        buf_.append(data);
        while (buf_.size() >= kMaxLine) {
          sink_.Line(stream_, std::string_view(buf_).substr(0, kMaxLine));
          buf_.erase(0, kMaxLine);
        }
        return;
      }
      if (buf_.empty()) {
        sink_.Line(stream_, data.substr(0, nl));
      } else {
        buf_.append(data.substr(0, nl));
        sink_.Line(stream_, buf_);
        buf_.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  void Finish() {
    if (!buf_.empty()) sink_.Line(stream_, buf_);
    buf_.clear();
  }

 private:
  OutputStream stream_;
  OutputSink& sink_;
  std::string buf_;
};

// ---- mount stubs -------------------------------------------------------------

int OpenBeneath(int dirfd, const std::string& rel, uint64_t flags) {
  return OpenAt2(dirfd, rel, static_cast<int>(flags),
                 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
}

// True if the entry `name` in `dirfd` is an empty regular file or a
// directory holding only such entries (recursively); removes it if so.
bool RemoveIfEmptyStub(int dirfd, const std::string& name, int depth = 0) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if (S_ISREG(st.st_mode)) {
    return st.st_size == 0 && ::unlinkat(dirfd, name.c_str(), 0) == 0;
  }
  if (!S_ISDIR(st.st_mode) || depth > 16) return false;
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return false;
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") children.emplace_back(n);
  }
  bool ok = true;
  for (const std::string& c : children) ok = ok && RemoveIfEmptyStub(::dirfd(d), c, depth + 1);
  ::closedir(d);
  return ok && ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0;
}

// Records, for each mount destination, the top-most path component missing
// from the rootfs before the run (the runtime creates it as a mount point)
// and removes what is still an empty stub afterwards, restoring the parent
// directory's times. Paths through symlinks are left alone.
class MountStubCleaner {
 public:
  MountStubCleaner(const std::filesystem::path& rootfs, const std::vector<std::string>& dests) {
    root_.Reset(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_) return;
    for (const std::string& dest : dests) {
      std::string rel;
      std::filesystem::path p(dest);
      for (const auto& comp : p.relative_path()) {
        std::string c = comp.string();
        if (c.empty() || c == "." || c == "..") break;
        std::string parent = rel.empty() ? "." : rel;
        rel = rel.empty() ? c : rel + "/" + c;
        UniqueFd fd(OpenBeneath(root_.get(), rel, O_PATH | O_NOFOLLOW));
        if (fd) continue;
        if (errno == ENOENT) {
          UniqueFd pfd(OpenBeneath(root_.get(), parent, O_PATH | O_DIRECTORY));
          struct stat st;
          if (pfd && ::fstat(pfd.get(), &st) == 0 &&
              std::none_of(stubs_.begin(), stubs_.end(),
                           [&](const Stub& s) { return s.rel == rel; })) {
            stubs_.push_back(Stub{parent, c, rel, st.st_atim, st.st_mtim});
          }
        }
        break;
      }
    }
  }

  void Clean() {
    for (auto it = stubs_.rbegin(); it != stubs_.rend(); ++it) {
      UniqueFd pfd(OpenBeneath(root_.get(), it->parent, O_RDONLY | O_DIRECTORY));
      if (!pfd) continue;
      if (RemoveIfEmptyStub(pfd.get(), it->name)) {
        timespec times[2] = {it->atime, it->mtime};
        ::futimens(pfd.get(), times);
      }
    }
    stubs_.clear();
  }

 private:
  struct Stub {
    std::string parent;  // relative to the root, "." for the root itself
    std::string name;
    std::string rel;
    timespec atime, mtime;
  };
  UniqueFd root_;
  std::vector<Stub> stubs_;
};

// First "error"-level message in a runtime's JSON log, if any.
std::optional<std::string> RuntimeLogError(const std::filesystem::path& log) {
  auto text = ReadFile(log);
  if (!text) return std::nullopt;
  std::optional<std::string> found;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    auto j = nlohmann::json::parse(text->begin() + static_cast<std::ptrdiff_t>(start),
                                   text->begin() + static_cast<std::ptrdiff_t>(end), nullptr,
                                   /*allow_exceptions=*/false);
    start = end + 1;
    if (!j.is_object()) continue;
    auto level = j.find("level");
    auto msg = j.find("msg");
    if (level != j.end() && level->is_string() && msg != j.end() && msg->is_string() &&
        (*level == "error" || *level == "fatal")) {
      found = msg->get<std::string>();  // the last one is the outermost summary
    }
  }
  return found;
}

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string out;
  for (size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", rd() & 0xff);
  return out;
}

}  // namespace

Status DeleteContainer(const std::filesystem::path& runtime, const std::filesystem::path& state_dir,
                       std::string_view id) {
  STRATA_ASSIGN_OR_RETURN(Captured c, RunCaptured({runtime.string(), "--root", state_dir.string(),
                                                   "delete", "-f", std::string(id)},
                                                  std::chrono::seconds(30)));
  if (c.exit_code != 0) {
    return MakeError(ErrorCode::kInternal, "{} delete -f {}: exit code {}: {}",
                     runtime.filename().string(), id, c.exit_code, Trim(c.output));
  }
  return OkStatus();
}

Result<std::filesystem::path> FindExecutable(std::string_view name, std::string_view path_env) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty executable name");
  if (name.find('/') != std::string_view::npos) {
    std::filesystem::path p(name);
    if (IsExecutableFile(p)) return std::filesystem::absolute(p);
    return MakeError(ErrorCode::kNotFound, "{}: no such executable", name);
  }
  size_t start = 0;
  while (start <= path_env.size()) {
    size_t end = path_env.find(':', start);
    if (end == std::string_view::npos) end = path_env.size();
    std::string_view dir = path_env.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) continue;
    std::filesystem::path p = std::filesystem::path(dir) / name;
    if (p.is_absolute() && IsExecutableFile(p)) return p;
  }
  return MakeError(ErrorCode::kNotFound, "{}: executable file not found in $PATH", name);
}

OciRuntimeRunner::OciRuntimeRunner(OciRuntimeRunnerOptions options) : options_(std::move(options)) {
  if (options_.path_env.empty()) {
    const char* path = std::getenv("PATH");
    options_.path_env = path != nullptr ? path : std::string(kDefaultPath);
  }
  if (options_.bundle_dir.empty()) {
    options_.bundle_dir = options_.state_dir.parent_path() / "bundles";
  }
}

Result<std::filesystem::path> OciRuntimeRunner::Runtime() {
  std::lock_guard lock(mu_);
  if (runtime_) return *runtime_;
  STRATA_ASSIGN_OR_RETURN(std::filesystem::path p, SelectRuntime());
  runtime_ = p;
  return p;
}

Result<std::filesystem::path> OciRuntimeRunner::SelectRuntime() {
  std::vector<std::string> candidates;
  if (!options_.runtime.empty()) {
    candidates.push_back(options_.runtime);
  } else {
    candidates.assign(kDefaultRuntimes.begin(), kDefaultRuntimes.end());
  }
  std::vector<std::string> problems;
  bool any_found = false;
  for (const std::string& name : candidates) {
    auto path = FindExecutable(name, options_.path_env);
    if (!path) {
      problems.push_back(path.error().message());
      continue;
    }
    any_found = true;
    auto probe = RunCaptured({path->string(), "--version"}, std::chrono::seconds(10));
    if (probe && probe->exit_code == 0) return *path;
    problems.push_back(probe ? fmt::format("{} --version: exit code {}: {}", path->string(),
                                           probe->exit_code, Trim(probe->output))
                             : probe.error().message());
  }
  return MakeError(any_found ? ErrorCode::kFailedPrecondition : ErrorCode::kNotFound,
                   "no working OCI runtime ({})", fmt::join(problems, "; "));
}

Result<int> OciRuntimeRunner::Run(const RunSpec& spec, OutputSink& sink) {
  if (spec.cancel.stop_requested()) return MakeError(ErrorCode::kCancelled, "run cancelled");
  if (options_.state_dir.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "OCI runtime state dir not configured");
  }
  if (!spec.rootfs.is_absolute()) {
    return MakeError(ErrorCode::kInvalidArgument, "rootfs \"{}\" is not absolute",
                     spec.rootfs.string());
  }
  STRATA_ASSIGN_OR_RETURN(std::filesystem::path runtime, Runtime());
  STRATA_ASSIGN_OR_RETURN(ResolvedUser user, ResolveUser(spec.rootfs, spec.user));
  std::vector<Rlimit> wanted = spec.rlimits;
  for (const Rlimit& d : DefaultRlimits()) {
    if (std::none_of(wanted.begin(), wanted.end(),
                     [&](const Rlimit& r) { return r.type == d.type; }))
      wanted.push_back(d);
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<Rlimit> rlimits, ClampRlimits(wanted));
  std::optional<std::filesystem::path> nat_helper;
  if (spec.network == NetworkMode::kPrivate) {
    std::string name = options_.nat_helper.empty() ? std::string(kNatHelper) : options_.nat_helper;
    auto helper = FindExecutable(name, options_.path_env);
    if (!helper) {
      return MakeError(helper.error().code(),
                       "the default RUN network needs {} (Debian package slirp4netns), or use "
                       "--network none: {}",
                       name, helper.error().message());
    }
    nat_helper = *helper;
    STRATA_RETURN_IF_ERROR(CheckRootlessTun("/dev/net/tun"));
  }

  STRATA_RETURN_IF_ERROR(MakeDirs(options_.state_dir, 0700));
  STRATA_RETURN_IF_ERROR(MakeDirs(options_.bundle_dir, 0700));
  const std::string bundle_prefix =
      options_.owner.empty() ? std::string("run-") : OwnedBundlePrefix(options_.owner);
  STRATA_ASSIGN_OR_RETURN(ScopedTempDir bundle,
                          ScopedTempDir::Create(options_.bundle_dir, bundle_prefix));
  const std::filesystem::path& dir = bundle.path();

  RuntimeSpecOptions o;
  o.args = spec.args;
  o.env = WithDefaultEnv(spec.env, user.home);
  o.cwd = spec.cwd.empty() ? "/" : spec.cwd;
  o.uid = user.uid;
  o.gid = user.gid;
  o.additional_gids = user.supplementary_gids;
  o.rootfs = spec.rootfs;
  o.hostname = spec.hostname.empty() ? "strata" : spec.hostname;
  o.network = spec.network;
  o.security = spec.security;
  if (spec.security == SecurityMode::kInsecure) o.insecure_capabilities = BoundingCapabilities();
  o.pids_limit = options_.pids_limit;
  o.rootless = InUserNamespace();
  o.tty_gid_mapped = !o.rootless || GidMappedInProcess(5);
  o.binds = spec.binds;
  o.tmpfs = spec.tmpfs;
  o.rlimits = std::move(rlimits);
  o.shm_size_bytes = spec.shm_size_bytes;
  o.hosts_file = dir / "hosts";
  o.resolv_conf_file = dir / "resolv.conf";
  o.hostname_file = dir / "hostname";
  std::unique_ptr<PooledNetwork> network;
  if (nat_helper) {
    auto net = TakeNetwork(*nat_helper, bundle_prefix);
    if (!net) return Unexpected(net.error().Wrap("set up the default RUN network"));
    network = std::move(*net);
    o.network_namespace = network->net.netns_path();
  }
  STRATA_ASSIGN_OR_RETURN(nlohmann::json config, GenerateRuntimeSpec(o));

  auto host_resolv = ReadFile(options_.host_resolv_conf);
  // The bundle lives as long as this RUN: no fsync (8 of them cost 50-90 ms
  // per step on a busy disk).
  STRATA_RETURN_IF_ERROR(
      WriteScratchFile(o.hosts_file, GenerateHostsFile(o.hostname, spec.extra_hosts)));
  STRATA_RETURN_IF_ERROR(WriteScratchFile(
      o.resolv_conf_file, GenerateResolvConf(host_resolv ? *host_resolv : "", spec.network)));
  STRATA_RETURN_IF_ERROR(WriteScratchFile(o.hostname_file, o.hostname + "\n"));
  STRATA_RETURN_IF_ERROR(WriteScratchFile(dir / "config.json", oci::DumpJson(config, 2) + "\n"));

  // Mount points the runtime may create inside the rootfs.
  std::vector<std::string> dests = {
      "/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"};
  for (const BindMount& b : spec.binds) dests.push_back(b.destination);
  for (const TmpfsMount& t : spec.tmpfs) dests.push_back(t.destination);
  MountStubCleaner stubs(spec.rootfs, dests);

  const std::string id =
      options_.owner.empty()
          ? fmt::format("strata-{}-{}-{}", ::getpid(), counter_.fetch_add(1), RandomHex(4))
          : OwnedContainerId(options_.owner, counter_.fetch_add(1));
  const std::string state = options_.state_dir.string();
  const std::filesystem::path log = dir / "runtime.log";
  std::vector<std::string> argv = {runtime.string(), "--root", state, "--log",    log.string(),
                                   "--log-format",   "json",   "run", "--bundle", dir.string()};
  if (options_.no_pivot) argv.push_back("--no-pivot");
  argv.push_back(id);

  auto cleanup = [&]() {
    (void)RunCaptured({runtime.string(), "--root", state, "delete", "-f", id},
                      std::chrono::seconds(30));
    stubs.Clean();
  };

  auto child = Spawn(argv);
  if (!child) {
    cleanup();
    return Unexpected(child.error().Wrap("run container"));
  }

  // Wakes poll() when the build is cancelled.
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::optional<std::stop_callback<std::function<void()>>> on_stop;
  if (wake) {
    int wfd = wake.get();
    on_stop.emplace(spec.cancel, std::function<void()>([wfd] {
                      uint64_t one = 1;
                      (void)!::write(wfd, &one, sizeof(one));
                    }));
  }

  LineSplitter out_lines(OutputStream::kStdout, sink);
  LineSplitter err_lines(OutputStream::kStderr, sink);
  struct Stream {
    UniqueFd* fd;
    LineSplitter* lines;
  };
  std::vector<Stream> open = {{&child->out, &out_lines}, {&child->err, &err_lines}};
  bool cancelled = false;
  Clock::time_point last_kill{};
  int kills = 0;
  auto send_kill = [&]() {
    last_kill = Clock::now();
    ++kills;
    if (kills > 20) {
      ::kill(child->pid, SIGKILL);  // the runtime itself does not react
      return;
    }
    (void)RunCaptured({runtime.string(), "--root", state, "kill", id, "KILL"},
                      std::chrono::seconds(10));
  };
  char buf[65536];
  while (!open.empty()) {
    std::vector<pollfd> fds;
    for (const Stream& s : open) fds.push_back(pollfd{s.fd->get(), POLLIN, 0});
    if (wake && !cancelled) fds.push_back(pollfd{wake.get(), POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), cancelled ? 250 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (!cancelled && spec.cancel.stop_requested()) {
      cancelled = true;
      send_kill();
      continue;
    }
    if (cancelled && Clock::now() - last_kill > std::chrono::milliseconds(500)) send_kill();
    for (size_t i = open.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
      if (r > 0) {
        open[i].lines->Feed(std::string_view(buf, static_cast<size_t>(r)));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        open[i].lines->Finish();
        open[i].fd->Reset();
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  int exit_code = WaitExit(child->pid);
  on_stop.reset();
  cleanup();
  Status net_down = OkStatus();
  if (network) {
    if (cancelled || spec.security == SecurityMode::kInsecure) {
      net_down = network->net.Teardown();
    } else {
      GiveBackNetwork(std::move(network));
    }
  }

  if (cancelled) return MakeError(ErrorCode::kCancelled, "run cancelled; container {} killed", id);
  if (exit_code != 0) {
    if (auto err = RuntimeLogError(log)) {
      return MakeError(ErrorCode::kFailedPrecondition, "{} run: {}", runtime.filename().string(),
                       *err);
    }
  }
  if (!net_down) return Unexpected(net_down.error().Wrap("tear down the default RUN network"));
  return exit_code;
}

namespace {

// Whether `pid` (our child) is running: not gone and not a zombie.
bool ChildRunning(pid_t pid) {
  if (pid <= 0) return false;
  auto stat = ReadFile(fmt::format("/proc/{}/stat", pid));
  if (!stat) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

}  // namespace

Result<std::unique_ptr<OciRuntimeRunner::PooledNetwork>> OciRuntimeRunner::TakeNetwork(
    const std::filesystem::path& helper, const std::string& prefix) {
  {
    std::lock_guard<std::mutex> lock(net_mu_);
    while (!idle_networks_.empty()) {
      std::unique_ptr<PooledNetwork> net = std::move(idle_networks_.back());
      idle_networks_.pop_back();
      if (ChildRunning(net->net.nat_pid())) return net;
      (void)net->net.Teardown();  // its helper died: make a new one
    }
  }
  // Named like a bundle, so that a later strata process reaps it if this
  // one dies (run_reaper.h).
  STRATA_ASSIGN_OR_RETURN(ScopedTempDir dir,
                          ScopedTempDir::Create(options_.bundle_dir, prefix + "net-"));
  STRATA_ASSIGN_OR_RETURN(PrivateNetwork net, PrivateNetwork::Setup(dir.path(), helper));
  return std::unique_ptr<PooledNetwork>(new PooledNetwork{std::move(dir), std::move(net)});
}

void OciRuntimeRunner::GiveBackNetwork(std::unique_ptr<PooledNetwork> net) {
  std::lock_guard<std::mutex> lock(net_mu_);
  idle_networks_.push_back(std::move(net));
}

OciRuntimeRunner::~OciRuntimeRunner() {
  std::lock_guard<std::mutex> lock(net_mu_);
  for (auto& net : idle_networks_) (void)net->net.Teardown();
  idle_networks_.clear();
}

}  // namespace strata::builder
