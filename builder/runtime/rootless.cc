#include "builder/runtime/rootless.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "builder/runtime/oci_runtime_runner.h"
#include "oci/util/strings.h"
#include "oci/util/unique_fd.h"
#include "oci/util/userns.h"

extern char** environ;

namespace strata::builder {
namespace {

constexpr size_t kMaxMapLines = 340;  // the kernel's limit per uid_map/gid_map

std::optional<std::string> ReadSmallFile(const char* path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  s = Trim(s);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string MapArgs(const std::vector<IdMapping>& map) {
  std::string out;
  for (const auto& m : map) out += fmt::format(" {} {} {}", m.inside, m.outside, m.count);
  return out;
}

// Runs `argv` (a helper such as newuidmap) and returns its stderr, or an
// error carrying it when the helper fails.
Status RunHelper(const std::vector<std::string>& args) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd err_r(p[0]), err_w(p[1]);
  std::vector<char*> cargv;
  for (const auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "fork");
  if (pid == 0) {
    ::dup2(err_w.get(), STDERR_FILENO);
    ::execv(cargv[0], cargv.data());
    std::fprintf(stderr, "exec %s: %s", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  err_w.Reset();
  std::string err;
  char buf[512];
  while (err.size() < 4096) {
    ssize_t n = ::read(err_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    err.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, "waitpid");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return OkStatus();
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  for (char& c : err) {
    if (c == '\n') c = ' ';
  }
  return MakeError(ErrorCode::kFailedPrecondition, "{} failed: {}", args[0],
                   err.empty() ? std::string("no message") : err);
}

bool WriteProcFile(const char* path, const std::string& data) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, data.data(), data.size());
  ::close(fd);
  return n == static_cast<ssize_t>(data.size());
}

// In the child: reports `step` and errno on stderr, then exits.
[[noreturn]] void ChildFail(const char* step) {
  std::fprintf(stderr, "strata: rootless: %s: %s\n", step, std::strerror(errno));
  ::_exit(1);
}

volatile pid_t g_child = 0;  // for the parent's signal forwarding only
void Forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

}  // namespace

std::vector<SubIdRange> ParseSubIds(std::string_view text, std::string_view user, uint32_t id) {
  std::vector<SubIdRange> out;
  const std::string id_text = std::to_string(id);
  for (std::string_view raw : Split(text, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view name = line.substr(0, c1);
    if (name != id_text && (user.empty() || name != user)) continue;
    auto start = ParseU64(line.substr(c1 + 1, c2 - c1 - 1));
    auto count = ParseU64(line.substr(c2 + 1));
    if (!start || !count || *count == 0 || *start > UINT32_MAX || *count > UINT32_MAX ||
        *start + *count > uint64_t{UINT32_MAX}) {
      continue;
    }
    out.push_back({static_cast<uint32_t>(*start), static_cast<uint32_t>(*count)});
  }
  return out;
}

std::vector<IdMapping> RootlessIdMap(uint32_t id, const std::vector<SubIdRange>& ranges) {
  std::vector<IdMapping> map{{0, id, 1}};
  uint64_t next = 1;
  for (const auto& r : ranges) {
    if (map.size() >= kMaxMapLines) break;
    uint64_t count = std::min<uint64_t>(r.count, uint64_t{UINT32_MAX} - next);
    if (count == 0) break;
    map.push_back({static_cast<uint32_t>(next), r.start, static_cast<uint32_t>(count)});
    next += count;
  }
  return map;
}

RootlessHost ReadRootlessHost() {
  RootlessHost h;
  h.uid = ::getuid();
  h.gid = ::getgid();
  if (const passwd* pw = ::getpwuid(h.uid); pw != nullptr) h.user = pw->pw_name;
  h.max_user_namespaces = ReadSmallFile("/proc/sys/user/max_user_namespaces");
  h.unprivileged_userns_clone = ReadSmallFile("/proc/sys/kernel/unprivileged_userns_clone");
  h.subuid = ReadSmallFile("/etc/subuid");
  h.subgid = ReadSmallFile("/etc/subgid");
  if (const char* p = std::getenv("PATH"); p != nullptr) h.path_env = p;
  return h;
}

Result<RootlessPlan> PlanRootless(const RootlessHost& h) {
  if (h.max_user_namespaces) {
    if (auto v = ParseU64(*h.max_user_namespaces); v && *v == 0) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "rootless build: user namespaces are disabled "
                       "(/proc/sys/user/max_user_namespaces is 0); as root: sysctl -w "
                       "user.max_user_namespaces=15000");
    }
  }
  if (h.unprivileged_userns_clone) {
    if (auto v = ParseU64(*h.unprivileged_userns_clone); v && *v == 0) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "rootless build: unprivileged user namespaces are disabled "
                       "(/proc/sys/kernel/unprivileged_userns_clone is 0); as root: sysctl -w "
                       "kernel.unprivileged_userns_clone=1");
    }
  }
  std::string who = h.user.empty() ? std::to_string(h.uid) : h.user;
  auto uids = ParseSubIds(h.subuid.value_or(""), h.user, h.uid);
  auto gids = ParseSubIds(h.subgid.value_or(""), h.user, h.uid);
  RootlessPlan plan;
  if (uids.empty() && gids.empty()) {
    plan.single_id = true;
    plan.uid_map = RootlessIdMap(h.uid, {});
    plan.gid_map = RootlessIdMap(h.gid, {});
    return plan;
  }
  if (uids.empty() || gids.empty()) {
    const char* missing = uids.empty() ? "/etc/subuid" : "/etc/subgid";
    return MakeError(ErrorCode::kFailedPrecondition,
                     "rootless build: {} has a range in {} but none in {}; add one, e.g. "
                     "\"{}:100000:65536\"",
                     who, uids.empty() ? "/etc/subgid" : "/etc/subuid", missing, who);
  }
  auto uidmap = FindExecutable("newuidmap", h.path_env);
  auto gidmap = FindExecutable("newgidmap", h.path_env);
  if (!uidmap || !gidmap) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "rootless build: {} not found in PATH; install Debian's uidmap "
                     "(apt-get install uidmap) to use {}'s ranges in /etc/subuid",
                     !uidmap ? "newuidmap" : "newgidmap", who);
  }
  plan.newuidmap = *uidmap;
  plan.newgidmap = *gidmap;
  plan.uid_map = RootlessIdMap(h.uid, uids);
  plan.gid_map = RootlessIdMap(h.gid, gids);
  return plan;
}

std::string DescribePlan(const RootlessPlan& plan) {
  auto fmt_map = [](const std::vector<IdMapping>& m) {
    std::string s;
    for (const auto& e : m) {
      if (!s.empty()) s += ' ';
      s += fmt::format("{}:{}:{}", e.inside, e.outside, e.count);
    }
    return s;
  };
  return fmt::format("user namespace: uid map {}, gid map {}{}", fmt_map(plan.uid_map),
                     fmt_map(plan.gid_map),
                     plan.single_id ? " (no /etc/subuid range: root-owned files only)" : "");
}

Result<int> RunInRootlessNamespace(const RootlessPlan& plan, char** argv,
                                   const std::vector<std::string>& extra_env) {
  // Everything the child needs is made before fork.
  std::vector<std::string> env_store;
  const std::string marker = std::string(kRootlessChildEnv) + "=";
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with(marker)) continue;
    bool overridden = false;
    for (const auto& x : extra_env) {
      auto eq = x.find('=');
      if (kv.starts_with(std::string_view(x).substr(0, eq + 1))) overridden = true;
    }
    if (!overridden) env_store.emplace_back(kv);
  }
  for (const auto& x : extra_env) env_store.push_back(x);
  env_store.push_back(marker + std::to_string(::getpid()));
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string uid_map = fmt::format("0 {} 1\n", plan.uid_map.at(0).outside);
  const std::string gid_map = fmt::format("0 {} 1\n", plan.gid_map.at(0).outside);

  int rp[2], gp[2];
  if (::pipe2(rp, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd ready_r(rp[0]), ready_w(rp[1]);
  if (::pipe2(gp, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd go_r(gp[0]), go_w(gp[1]);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "rootless: fork");
  if (pid == 0) {
    ready_r.Reset();
    go_w.Reset();
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail("prctl(PR_SET_PDEATHSIG)");
    int err = 0;
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) err = errno;
    if (err == 0 && plan.single_id) {
      // Unprivileged writers may map their own id only, after denying
      // setgroups (user_namespaces(7)).
      if (!WriteProcFile("/proc/self/uid_map", uid_map) ||
          !WriteProcFile("/proc/self/setgroups", "deny") ||
          !WriteProcFile("/proc/self/gid_map", gid_map)) {
        err = errno != 0 ? errno : EIO;
      }
    }
    (void)!::write(ready_w.get(), &err, sizeof(err));
    if (err != 0) ::_exit(1);
    char go = 0;
    while (::read(go_r.get(), &go, 1) < 0 && errno == EINTR) {
    }
    if (go != 'g') ::_exit(1);
    if (!plan.single_id && ::setgroups(0, nullptr) != 0) ChildFail("setgroups");
    if (::setresgid(0, 0, 0) != 0) ChildFail("setresgid(0)");
    if (::setresuid(0, 0, 0) != 0) ChildFail("setresuid(0)");
    ::execve("/proc/self/exe", argv, envp.data());
    ChildFail("exec /proc/self/exe");
  }
  ready_w.Reset();
  go_r.Reset();
  auto abandon = [&](Error e) -> Result<int> {
    go_w.Reset();  // the child reads EOF and exits
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return std::unexpected(std::move(e));
  };
  int child_err = 0;
  ssize_t n;
  while ((n = ::read(ready_r.get(), &child_err, sizeof(child_err))) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof(child_err))) {
    return abandon(Error(ErrorCode::kInternal, "rootless: the namespace child died"));
  }
  if (child_err != 0) {
    if (child_err == EPERM || child_err == EACCES || child_err == ENOSPC) {
      return abandon(Error(
          ErrorCode::kFailedPrecondition,
          fmt::format("rootless build: this system refuses unprivileged user namespaces "
                      "(unshare(CLONE_NEWUSER): {}); check user.max_user_namespaces, "
                      "kernel.unprivileged_userns_clone and "
                      "kernel.apparmor_restrict_unprivileged_userns, or a container runtime's "
                      "seccomp profile",
                      std::strerror(child_err))));
    }
    return abandon(Error(ErrorCode::kFailedPrecondition,
                         fmt::format("rootless build: making the user namespace failed: {}",
                                     std::strerror(child_err))));
  }
  if (!plan.single_id) {
    const std::string p = std::to_string(pid);
    for (const auto& [helper, map] :
         {std::pair{&plan.newuidmap, &plan.uid_map}, std::pair{&plan.newgidmap, &plan.gid_map}}) {
      std::vector<std::string> args{helper->string(), p};
      for (const auto& m : *map) {
        args.push_back(std::to_string(m.inside));
        args.push_back(std::to_string(m.outside));
        args.push_back(std::to_string(m.count));
      }
      if (auto s = RunHelper(args); !s) {
        return abandon(Error(
            ErrorCode::kFailedPrecondition,
            fmt::format("rootless build: mapping{} refused: {} (check /etc/subuid, /etc/subgid "
                        "and that {} is setuid root or has cap_setuid)",
                        MapArgs(*map), s.error().message(), helper->string())));
      }
    }
  }
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = Forward;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  char go = 'g';
  if (::write(go_w.get(), &go, 1) != 1) return abandon(ErrnoError(errno, "rootless: pipe").error());
  go_w.Reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, "rootless: waitpid");
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

Status CheckRootlessTun(const std::filesystem::path& tun) {
  if (!InUserNamespace()) return OkStatus();
  if (::access(tun.c_str(), R_OK | W_OK) == 0) return OkStatus();
  int err = errno;
  struct stat st {};
  std::string mode = ::stat(tun.c_str(), &st) == 0 ? fmt::format("mode {:04o}", st.st_mode & 07777)
                                                   : std::string(std::strerror(err));
  return MakeError(ErrorCode::kFailedPrecondition,
                   "rootless RUN network: {} is not open to unprivileged users here ({}); use "
                   "--network none, or as root: chmod 0666 {} (Debian's default)",
                   tun.string(), mode, tun.string());
}

bool AdoptRootlessChild() {
  const char* v = std::getenv(kRootlessChildEnv);
  if (v == nullptr || *v == '\0') return false;
  auto parent = ParseU64(v);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!parent || static_cast<uint64_t>(::getppid()) != *parent) ::_exit(1);  // parent gone
  ::unsetenv(kRootlessChildEnv);
  return true;
}

}  // namespace strata::builder
