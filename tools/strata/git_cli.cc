#include "tools/strata/git_cli.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sstream>

#include <fmt/format.h>

#include "oci/digest.h"
#include "oci/util/file_util.h"
#include "registry/credentials.h"
#include "tools/strata/subprocess.h"

namespace strata::cli {
namespace fs = std::filesystem;
using builder::GitRef;

namespace {

bool Has(std::string_view s, std::string_view what) {
  return s.find(what) != std::string_view::npos;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The last non-empty lines of git's stderr (at most 3), for messages.
std::string Tail(std::string_view err) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(err)};
  for (std::string l; std::getline(in, l);) {
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
    if (!l.empty()) lines.push_back(l);
  }
  std::string out;
  for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) {
    out += (out.empty() ? "" : "; ") + lines[i];
  }
  return out.empty() ? "no message" : out;
}

bool IsAuthFailure(std::string_view err) {
  return Has(err, "Permission denied (") || Has(err, "Authentication failed") ||
         Has(err, "could not read Username") || Has(err, "could not read Password") ||
         Has(err, "returned error: 401") || Has(err, "returned error: 403") ||
         Has(err, "Access denied") || Has(err, "communication with agent failed");
}

// Normalizes a checkout: every mtime the commit time, modes as git knows
// them (0755 dirs and executables, 0644 other files); links are never
// followed (the walk does not descend into them, utimensat does not follow).
Status Normalize(const fs::path& dest, int64_t mtime) {
  const struct timespec ts[2] = {{static_cast<time_t>(mtime), 0}, {static_cast<time_t>(mtime), 0}};
  std::error_code ec;
  std::vector<fs::path> dirs = {dest};
  for (fs::recursive_directory_iterator it(dest, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return ErrnoError(errno, "stat " + p.string());
    if (S_ISDIR(st.st_mode)) {
      dirs.push_back(p);  // after its entries, so their changes do not move its mtime
      continue;
    }
    if (S_ISREG(st.st_mode) && ::chmod(p.c_str(), (st.st_mode & 0100) ? 0755 : 0644) != 0) {
      return ErrnoError(errno, "chmod " + p.string());
    }
    if (::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "set the mtime of " + p.string());
    }
  }
  if (ec) return MakeError(ErrorCode::kInternal, "walk {}: {}", dest.string(), ec.message());
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) {
    if (::chmod(d->c_str(), 0755) != 0 ||
        ::utimensat(AT_FDCWD, d->c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "set the mode and mtime of " + d->string());
    }
  }
  return OkStatus();
}

// Removes every `.git` (the repository, submodules' gitlink files) below
// `dest`, without following links.
Status RemoveGitEntries(const fs::path& dest) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (fs::recursive_directory_iterator it(dest, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() == ".git") {
      found.push_back(it->path());
      it.disable_recursion_pending();
    }
  }
  if (ec) return MakeError(ErrorCode::kInternal, "walk {}: {}", dest.string(), ec.message());
  for (const auto& p : found) STRATA_RETURN_IF_ERROR(RemoveAll(p));
  return OkStatus();
}

}  // namespace

// One operation's environment: a private HOME, the scrubbed variables, and
// the secrets to remove from messages.
struct GitCli::Run {
  ScopedTempDir home;
  std::vector<std::string> env;
  std::vector<std::string> secrets;
  std::string host;
  bool ssh = false;
  bool agent = false;
  std::chrono::seconds timeout;

  static Result<Run> Make(const GitCliOptions& o, const GitRef& ref,
                          const std::vector<std::pair<std::string, std::string>>& config) {
    Run r;
    r.host = ref.host;
    r.ssh = ref.ssh;
    r.agent = !o.ssh_auth_sock.empty();
    r.timeout = o.timeout;
    STRATA_ASSIGN_OR_RETURN(r.home,
                            ScopedTempDir::Create(fs::temp_directory_path(), "strata-git-"));
    ::chmod(r.home.path().c_str(), 0700);
    std::string ssh = "ssh -F /dev/null -o BatchMode=yes -o IdentityFile=none -o ConnectTimeout=30";
    if (!o.known_hosts.empty()) {
      ssh += " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" +
             ShellQuote(fs::absolute(o.known_hosts).string());
    } else {
      ssh += " -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=" +
             ShellQuote((r.home.path() / "known_hosts").string());
    }
    r.env = {"PATH=/usr/bin:/bin",    "HOME=" + r.home.path().string(), "LC_ALL=C",
             "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",    "GIT_TERMINAL_PROMPT=0",
             "GIT_SSH_COMMAND=" + ssh};
    if (!o.ssh_auth_sock.empty()) r.env.push_back("SSH_AUTH_SOCK=" + o.ssh_auth_sock.string());
    STRATA_RETURN_IF_ERROR(MakeDirs(r.home.path() / "templates"));
    std::vector<std::pair<std::string, std::string>> cfg = {
        {"init.templateDir", (r.home.path() / "templates").string()},
        {"credential.helper", ""},
        {"protocol.ext.allow", "never"},
        {"gc.auto", "0"},
        {"maintenance.auto", "false"},
        {"advice.detachedHead", "false"},
        {"uploadpack.allowAnySHA1InWant", "true"},
        {"init.defaultBranch", "main"}};
    cfg.insert(cfg.end(), config.begin(), config.end());
    // HTTPS credentials: BuildKit's secrets, host-specific first.
    if (!ref.ssh && (ref.remote.starts_with("https://") || ref.remote.starts_with("http://"))) {
      auto find = [&](const std::string& id) -> const std::string* {
        if (auto it = o.auth.find(id + "." + ref.host); it != o.auth.end()) return &it->second;
        if (auto it = o.auth.find(id); it != o.auth.end()) return &it->second;
        return nullptr;
      };
      std::string scheme = ref.remote.substr(0, ref.remote.find("://"));
      std::string header;
      if (const std::string* h = find("GIT_AUTH_HEADER")) {
        header = "Authorization: " + *h;
        r.secrets.push_back(*h);
      } else if (const std::string* t = find("GIT_AUTH_TOKEN")) {
        std::string b64 = registry::Base64Encode("x-access-token:" + *t);
        header = "Authorization: basic " + b64;
        r.secrets.push_back(*t);
        r.secrets.push_back(b64);
      }
      if (!header.empty()) {
        cfg.emplace_back(fmt::format("http.{}://{}/.extraheader", scheme, ref.host), header);
      }
    }
    r.env.push_back(fmt::format("GIT_CONFIG_COUNT={}", cfg.size()));
    for (size_t i = 0; i < cfg.size(); ++i) {
      r.env.push_back(fmt::format("GIT_CONFIG_KEY_{}={}", i, cfg[i].first));
      r.env.push_back(fmt::format("GIT_CONFIG_VALUE_{}={}", i, cfg[i].second));
    }
    return r;
  }

  std::string Redact(std::string s) const {
    for (const auto& v : secrets) {
      if (v.empty()) continue;
      for (size_t p; (p = s.find(v)) != std::string::npos;) s.replace(p, v.size(), "xxxxx");
    }
    return builder::RedactUrl(s);
  }

  Result<ProcessResult> Git(std::vector<std::string> args, const fs::path& cwd = {}) const {
    args.insert(args.begin(), "git");
    ProcessOptions po;
    po.env = env;
    po.cwd = cwd;
    po.timeout = timeout;
    po.max_output = 16 << 20;
    auto r = RunProcess(args, po);
    if (!r) return Unexpected(Error(r.error().code(), Redact(r.error().message())));
    return r;
  }

  // The error of a failed git call `what`: Unauthenticated naming the host
  // when the remote refused the credentials, else Unavailable.
  Error Failed(std::string_view what, const ProcessResult& p) const {
    std::string tail = Redact(Tail(p.err));
    if (IsAuthFailure(p.err)) {
      // The line that says why (ssh's "Permission denied (publickey)", an
      // HTTP 401), not git's generic advice after it.
      std::string why = tail;
      std::istringstream in{p.err};
      for (std::string l; std::getline(in, l);) {
        if (IsAuthFailure(l)) {
          why = Redact(l);
          break;
        }
      }
      return Error(ErrorCode::kUnauthenticated,
                   fmt::format("git {}: authentication to {} failed: {}{}", what, host, why,
                               ssh && !agent ? " (no ssh agent: pass --ssh default)"
                               : !ssh && secrets.empty()
                                   ? " (no credentials: pass --secret id=GIT_AUTH_TOKEN,env=VAR)"
                                   : ""));
    }
    if (Has(p.err, "Host key verification failed")) {
      return Error(ErrorCode::kUnauthenticated,
                   fmt::format("git {}: the host key of {} is not trusted ({})", what, host, tail));
    }
    return Error(ErrorCode::kUnavailable, fmt::format("git {}: {}", what, tail));
  }
};

std::optional<std::pair<std::string, std::string>> PickRef(std::string_view ls_remote,
                                                           std::string_view want) {
  std::map<std::string, std::string, std::less<>> refs;
  std::istringstream in{std::string(ls_remote)};
  for (std::string line; std::getline(in, line);) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    refs[line.substr(tab + 1)] = line.substr(0, tab);
  }
  std::vector<std::string> names;
  if (want.empty() || want == "HEAD") {
    names = {"HEAD"};
  } else if (want.starts_with("refs/")) {
    names = {std::string(want)};
  } else {
    names = {"refs/tags/" + std::string(want), "refs/heads/" + std::string(want)};
  }
  for (const auto& n : names) {
    if (auto it = refs.find(n + "^{}"); it != refs.end()) return std::pair(n, it->second);
    if (auto it = refs.find(n); it != refs.end()) return std::pair(n, it->second);
  }
  return std::nullopt;
}

Result<std::string> GitCli::Resolve(const GitRef& ref) {
  if (builder::IsCommitId(ref.ref)) return ref.ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = resolved_.find({ref.remote, ref.ref}); it != resolved_.end()) return it->second;
  }
  STRATA_ASSIGN_OR_RETURN(auto run, Run::Make(opts_, ref, {}));
  std::vector<std::string> args = {"ls-remote", "--", ref.remote};
  if (ref.ref.empty()) {
    args.push_back("HEAD");
  } else if (ref.ref.starts_with("refs/")) {
    args.push_back(ref.ref);
    args.push_back(ref.ref + "^{}");  // an annotated tag's commit
  } else {
    args.push_back("refs/heads/" + ref.ref);
    args.push_back("refs/tags/" + ref.ref);
    args.push_back("refs/tags/" + ref.ref + "^{}");
  }
  STRATA_ASSIGN_OR_RETURN(auto p, run.Git(args));
  const std::string shown = builder::RedactUrl(ref.remote);
  if (p.exit_code != 0) return Unexpected(run.Failed("ls-remote " + shown, p));
  auto picked = PickRef(p.out, ref.ref);
  if (!picked) {
    return MakeError(
        ErrorCode::kNotFound, "git ref {} not found at {}{}", ref.ref.empty() ? "HEAD" : ref.ref,
        shown,
        ref.ref.size() >= 7 && ref.ref.find_first_not_of("0123456789abcdef") == std::string::npos
            ? " (a commit must be given in full: 40 hex digits)"
            : "");
  }
  std::lock_guard<std::mutex> lock(mu_);
  ref_names_[{ref.remote, picked->second}] = picked->first;
  return resolved_.try_emplace({ref.remote, ref.ref}, picked->second).first->second;
}

int GitCli::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

Status GitCli::Checkout(const GitRef& ref, const std::string& commit, const fs::path& dest,
                        bool keep_git_dir) {
  if (!builder::IsCommitId(commit)) {
    return MakeError(ErrorCode::kInvalidArgument, "git checkout: {} is no commit id", commit);
  }
  const std::string shown = builder::RedactUrl(ref.remote);
  STRATA_RETURN_IF_ERROR(MakeDirs(opts_.cache_dir));
  const std::string name = oci::Digest::Of(ref.remote).hex();
  const fs::path repo = opts_.cache_dir / (name + ".git");
  // One fetch/checkout of a remote at a time, across threads and processes.
  STRATA_ASSIGN_OR_RETURN(
      auto lock, OpenFile(opts_.cache_dir / (name + ".lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError(errno, "lock the git cache");
  }
  STRATA_ASSIGN_OR_RETURN(auto run, Run::Make(opts_, ref, {}));
  const std::string gd = "--git-dir=" + repo.string();
  if (std::error_code ec; !fs::exists(repo / "HEAD", ec)) {
    STRATA_ASSIGN_OR_RETURN(auto p, run.Git({"init", "-q", "--bare", repo.string()}));
    if (p.exit_code != 0) return Unexpected(run.Failed("init the cache", p));
  }
  auto have = [&]() -> Result<bool> {
    STRATA_ASSIGN_OR_RETURN(auto p, run.Git({gd, "cat-file", "-e", commit + "^{commit}"}));
    return p.exit_code == 0;
  };
  STRATA_ASSIGN_OR_RETURN(bool cached, have());
  if (!cached) {
    std::string refname;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = ref_names_.find({ref.remote, commit});
      refname = it != ref_names_.end() ? it->second : commit;
      ++fetches_;
    }
    // Shallow first; the dumb HTTP protocol (and servers that refuse a
    // commit by id) need a full fetch.
    STRATA_ASSIGN_OR_RETURN(
        auto p, run.Git({gd, "fetch", "-q", "--no-tags", "--depth=1", "--", ref.remote, refname}));
    if (p.exit_code != 0 && IsAuthFailure(p.err))
      return Unexpected(run.Failed("fetch " + shown, p));
    STRATA_ASSIGN_OR_RETURN(cached, have());
    if (!cached) {
      std::vector<std::string> full = {gd, "fetch", "-q", "--no-tags", "--", ref.remote};
      if (refname == commit) {
        full.push_back("+refs/heads/*:refs/strata-fetch/heads/*");
        full.push_back("+refs/tags/*:refs/strata-fetch/tags/*");
      } else {
        full.push_back(refname);
      }
      STRATA_ASSIGN_OR_RETURN(p, run.Git(full));
      if (p.exit_code != 0) return Unexpected(run.Failed("fetch " + shown, p));
      STRATA_ASSIGN_OR_RETURN(cached, have());
    }
    if (!cached) {
      return MakeError(ErrorCode::kNotFound,
                       "git commit {} not found at {} (did {} move while it was fetched?)", commit,
                       shown, ref.ref.empty() ? "HEAD" : ref.ref);
    }
    STRATA_ASSIGN_OR_RETURN(p,
                            run.Git({gd, "update-ref", "refs/strata/commits/" + commit, commit}));
    if (p.exit_code != 0) return Unexpected(run.Failed("keep the commit", p));
  }
  STRATA_ASSIGN_OR_RETURN(auto when, run.Git({gd, "show", "-s", "--format=%ct", commit}));
  if (when.exit_code != 0) return Unexpected(run.Failed("read the commit time", when));
  const int64_t mtime = std::strtoll(when.out.c_str(), nullptr, 10);
  STRATA_ASSIGN_OR_RETURN(auto modules, run.Git({gd, "cat-file", "-e", commit + ":.gitmodules"}));
  const bool submodules = modules.exit_code == 0;
  if (!keep_git_dir && !submodules) {
    // The tree only, straight from the cache (a private index file).
    auto env = run.env;
    run.env.push_back("GIT_INDEX_FILE=" + (run.home.path() / "index").string());
    STRATA_ASSIGN_OR_RETURN(auto p, run.Git({gd, "--work-tree=" + dest.string(), "checkout", "-q",
                                             "-f", commit, "--", "."}));
    run.env = std::move(env);
    if (p.exit_code != 0) return Unexpected(run.Failed("checkout " + commit, p));
  } else {
    // A repository of its own: .git kept (origin = the remote, without any
    // password), or needed for the submodules.
    std::vector<std::vector<std::string>> steps = {
        {"init", "-q"},
        {"fetch", "-q", "--no-tags", "--depth=1", "--", repo.string(), commit},
        {"checkout", "-q", "--detach", commit},
        {"remote", "add", "origin", shown}};
    for (const auto& s : steps) {
      STRATA_ASSIGN_OR_RETURN(auto p, run.Git(s, dest));
      if (p.exit_code != 0) return Unexpected(run.Failed(s[0], p));
    }
    if (submodules) {
      // Submodules from the network only: file:// and local paths in a
      // .gitmodules would read the host's files.
      STRATA_ASSIGN_OR_RETURN(auto sub, Run::Make(opts_, ref, {{"protocol.file.allow", "never"}}));
      STRATA_ASSIGN_OR_RETURN(
          auto p, sub.Git({"submodule", "update", "-q", "--init", "--recursive"}, dest));
      if (p.exit_code != 0) return Unexpected(sub.Failed("submodule update", p));
    }
    if (!keep_git_dir) STRATA_RETURN_IF_ERROR(RemoveGitEntries(dest));
  }
  return Normalize(dest, mtime);
}

}  // namespace strata::cli
