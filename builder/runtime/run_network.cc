#include "builder/runtime/run_network.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "oci/util/file_util.h"
#include "oci/util/strings.h"

extern char** environ;

namespace strata::builder {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `fd` for input for at most `timeout`; true if readable (or hung up).
bool WaitReadable(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, std::max<int>(0, static_cast<int>(left.count())));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// Reaps `pid`, waiting at most `timeout` (through its pidfd when there is
// one). True once reaped.
bool ReapWithin(pid_t pid, int pidfd, std::chrono::milliseconds timeout) {
  if (pidfd >= 0) {
    if (!WaitReadable(pidfd, timeout)) return false;
    int status;
    return ::waitpid(pid, &status, 0) == pid;
  }
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Moves `fd` to a number >= 10 (CLOEXEC), so that dup2 onto 3 and 4 in the
// child cannot clobber a source.
Result<UniqueFd> HighFd(UniqueFd fd) {
  int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10);
  if (high < 0) return ErrnoError(errno, "fcntl F_DUPFD_CLOEXEC");
  return UniqueFd(high);
}

}  // namespace

std::vector<std::string> NatHelperArgs(const std::filesystem::path& helper,
                                       const std::filesystem::path& netns, int ready_fd,
                                       int exit_fd) {
  return {helper.string(),
          "--configure",
          "--mtu=65520",
          "--disable-host-loopback",
          "--enable-sandbox",
          "--enable-seccomp",
          fmt::format("--ready-fd={}", ready_fd),
          fmt::format("--exit-fd={}", exit_fd),
          "--netns-type=path",
          netns.string(),
          std::string(kNatInterface)};
}

std::string NatResolvConf(std::string_view host) {
  std::string out;
  size_t start = 0;
  while (start < host.size()) {
    size_t end = host.find('\n', start);
    if (end == std::string_view::npos) end = host.size();
    std::string_view line = host.substr(start, end - start);
    start = end + 1;
    std::string_view t = TrimLeft(line);
    if (t.starts_with("nameserver")) continue;
    if (t.starts_with("search") || t.starts_with("domain") || t.starts_with("options")) {
      out.append(line);
      out.push_back('\n');
    }
  }
  out += fmt::format("nameserver {}\n", kNatDnsAddress);
  return out;
}

// ---- NetworkNamespace --------------------------------------------------------

Result<NetworkNamespace> NetworkNamespace::Create(const std::filesystem::path& file) {
  {
    STRATA_ASSIGN_OR_RETURN(UniqueFd fd,
                            OpenFile(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  }
  NetworkNamespace ns(file);  // removes the file on an error below
  // unshare(CLONE_NEWNET) changes only the calling thread: do it on a
  // short-lived thread so strata itself stays in the host namespace.
  int err = 0;
  std::string step;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      err = errno;
      step = "unshare(CLONE_NEWNET)";
      return;
    }
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0 ||
        (ifr.ifr_flags |= IFF_UP, ::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0)) {
      err = errno;
      step = "bring up lo";
      return;
    }
    std::string self = fmt::format("/proc/self/task/{}/ns/net", ::gettid());
    if (::mount(self.c_str(), file.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      err = errno;
      step = fmt::format("bind-mount the namespace on {}", file.string());
    }
  });
  t.join();
  if (err != 0) return ErrnoError(err, fmt::format("network namespace: {}", step));
  return ns;
}

NetworkNamespace::NetworkNamespace(NetworkNamespace&& o) noexcept : path_(std::move(o.path_)) {
  o.path_.clear();
}

NetworkNamespace& NetworkNamespace::operator=(NetworkNamespace&& o) noexcept {
  if (this != &o) {
    (void)Release();
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

NetworkNamespace::~NetworkNamespace() { (void)Release(); }

Status NetworkNamespace::Release() {
  if (path_.empty()) return OkStatus();
  std::filesystem::path p = std::exchange(path_, {});
  // EINVAL: nothing mounted there (creation failed before the mount).
  if (::umount2(p.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("unmount network namespace {}", p.string()));
  }
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("remove {}", p.string()));
  }
  return OkStatus();
}

// ---- NatNetwork ----------------------------------------------------------------

Result<NatNetwork> NatNetwork::Start(const NatNetworkOptions& o) {
  const std::string name = o.helper.filename().string();
  int ready[2], quit[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd ready_r(ready[0]), ready_w_low(ready[1]);
  if (::pipe2(quit, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd quit_r_low(quit[0]), quit_w(quit[1]);
  STRATA_ASSIGN_OR_RETURN(UniqueFd ready_w, HighFd(std::move(ready_w_low)));
  STRATA_ASSIGN_OR_RETURN(UniqueFd quit_r, HighFd(std::move(quit_r_low)));

  constexpr int kReadyFd = 3, kExitFd = 4;
  std::vector<std::string> argv = NatHelperArgs(o.helper, o.netns, kReadyFd, kExitFd);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, o.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_adddup2(&fa, ready_w.get(), kReadyFd);
  posix_spawn_file_actions_adddup2(&fa, quit_r.get(), kExitFd);
  // Nothing else of strata's reaches the helper.
  posix_spawn_file_actions_addclosefrom_np(&fa, kExitFd + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = ::posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, fmt::format("start {}", o.helper.string()));

  NatNetwork nat;
  nat.pid_ = pid;
  nat.pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  nat.exit_fd_ = std::move(quit_w);
  nat.stop_timeout_ = o.stop_timeout;
  ready_w.Reset();  // so that a helper dying early reads as EOF
  quit_r.Reset();

  // Ready when the helper writes "1" on its ready fd; EOF = it exited.
  char c = 0;
  bool ok = false;
  const bool readable = WaitReadable(ready_r.get(), o.start_timeout);
  if (readable) {
    ssize_t n;
    do {
      n = ::read(ready_r.get(), &c, 1);
    } while (n < 0 && errno == EINTR);
    ok = n == 1 && c == '1';
  }
  if (!ok) {
    const bool timed_out = !readable;
    (void)nat.Stop();
    auto log = ReadFile(o.log);
    std::string text = log ? *log : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return MakeError(ErrorCode::kUnavailable, "{} did not {}{}{}", name,
                     timed_out ? fmt::format("become ready within {} ms", o.start_timeout.count())
                               : std::string("start"),
                     text.empty() ? "" : ": ", text);
  }
  return nat;
}

NatNetwork::NatNetwork(NatNetwork&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::move(o.pidfd_)),
      exit_fd_(std::move(o.exit_fd_)),
      stop_timeout_(o.stop_timeout_) {}

NatNetwork& NatNetwork::operator=(NatNetwork&& o) noexcept {
  if (this != &o) {
    (void)Stop();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    exit_fd_ = std::move(o.exit_fd_);
    stop_timeout_ = o.stop_timeout_;
  }
  return *this;
}

NatNetwork::~NatNetwork() { (void)Stop(); }

Status NatNetwork::Stop() {
  if (pid_ < 0) return OkStatus();
  pid_t pid = std::exchange(pid_, -1);
  exit_fd_.Reset();  // the helper exits when it sees EOF here
  if (ReapWithin(pid, pidfd_.get(), stop_timeout_)) {
    pidfd_.Reset();
    return OkStatus();
  }
  ::kill(pid, SIGKILL);
  bool reaped = ReapWithin(pid, pidfd_.get(), std::chrono::seconds(1));
  pidfd_.Reset();
  if (!reaped) {
    return MakeError(ErrorCode::kInternal, "{} (pid {}) did not exit after SIGKILL", kNatHelper,
                     pid);
  }
  return OkStatus();
}

// ---- PrivateNetwork ------------------------------------------------------------

Result<PrivateNetwork> PrivateNetwork::Setup(const std::filesystem::path& dir,
                                             const std::filesystem::path& helper) {
  PrivateNetwork net;
  STRATA_ASSIGN_OR_RETURN(net.ns_, NetworkNamespace::Create(dir / "netns"));
  NatNetworkOptions o;
  o.helper = helper;
  o.netns = net.ns_.path();
  o.log = dir / "nat.log";
  STRATA_ASSIGN_OR_RETURN(net.nat_, NatNetwork::Start(o));
  return net;
}

Status PrivateNetwork::Teardown() {
  Status nat = nat_.Stop();
  Status ns = ns_.Release();
  if (!nat) return nat;
  return ns;
}

}  // namespace strata::builder
