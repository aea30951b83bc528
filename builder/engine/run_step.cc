// RUN: the command in a writable snapshot of the stage (Snapshotter), with
// its --mount sources (run_mounts.cc); what it changed becomes the layer.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "builder/engine/build.h"
#include "builder/engine/config_edit.h"
#include "builder/engine/run_mounts.h"
#include "builder/engine/staging.h"
#include "builder/frontend/build_args.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

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
    // What the lowers show at `child`, looked up inside each lower (never
    // through a link of a hostile layer): the first entry found decides, and
    // a whiteout means there is none.
    const struct stat* lower = nullptr;
    struct stat lst;
    for (const auto& l : lowers) {
      UniqueFd root(::open(l.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (root.get() < 0) break;
      int fd = OpenInRoot(root.get(), child, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
      if (fd < 0) {
        if (errno == ENOENT) continue;
        break;  // a link on the way, or unreadable: keep the dir
      }
      UniqueFd entry(fd);
      if (::fstat(fd, &lst) == 0 && !(S_ISCHR(lst.st_mode) && lst.st_rdev == 0)) lower = &lst;
      break;
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

}  // namespace

Status Build::DoRun(const Instruction& ins, const RunCommand& run, const PlanInstruction& pi,
                    StageState& st, const std::string& label) {
  const auto& cc = st.config.config;
  const std::vector<std::string> shell = ShellOf(st.config);
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
      auto dir = oci::MakeSnapshotScratchDir(store_, ".heredoc-");
      if (!dir) return Fail(ins, dir.error());
      fs::path file = dir->path() / "script";
      STRATA_RETURN_IF_ERROR(WriteScratchFile(file, h.content, 0755));
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
  spec.extra_hosts = opts_.extra_hosts;
  spec.rlimits = opts_.ulimits;
  spec.shm_size_bytes = opts_.shm_size_bytes;
  // Only when set: the keys of builds without them stay as they were.
  for (const auto& h : spec.extra_hosts) key.Add("add-host").Add(h.host).Add(h.ip);
  for (const auto& r : spec.rlimits) {
    key.Add("ulimit").Add(fmt::format("{}={}:{}", r.type, r.soft, r.hard));
  }
  if (spec.shm_size_bytes != 0) key.Add(fmt::format("shm-size={}", spec.shm_size_bytes));
  RunMounts held;
  STRATA_RETURN_IF_ERROR(PrepareMounts(ins, run, spec, key, held));
  oci::Digest k = key.Finish();
  int id = ++step_;
  progress_.StepStart(id, label);
  auto start = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) return OkStatus();
  // A stage for a foreign architecture runs its commands under QEMU through
  // a binfmt_misc handler that strata never registers by itself.
  if (auto s = CheckEmulation(st.platform, oci::Platform::Host(), opts_.binfmt_dir); !s) {
    return Fail(ins, s.error());
  }
  auto lowers = Lowers(st);
  if (!lowers) return Fail(ins, lowers.error());
  auto active = snapshotter_.Prepare(*lowers, store_.SnapshotsDir());
  if (!active) return Fail(ins, active.error());
  spec.rootfs = (*active)->root();
  StepSink out(progress_, id);
  TailSink tail(&out, 20);
  auto rc = runner_.Run(spec, tail);
  auto changes = (*active)->Finish();
  if (!changes && rc && *rc == 0) return Fail(ins, changes.error());
  if (!rc) return Fail(ins, rc.error().Wrap(fmt::format("RUN {}", fmt::join(spec.args, " "))));
  if (*rc != 0) {
    std::string msg = fmt::format("{}: exit code {}", ins.original, *rc);
    auto lines = tail.Tail();
    if (!lines.empty()) {
      msg += "\n--- last output ---";
      for (const auto& l : lines) msg += "\n" + l;
    }
    return Fail(ins, Error(ErrorCode::kFailedPrecondition, msg));
  }
  const fs::path& upper = *changes;
  PruneCopiedUpDirs(upper, *lowers, "");
  bool empty = IsEmptyDir(upper);
  CacheRecord rec;
  rec.created_by = created_by;
  rec.empty_layer = empty;
  if (!empty) {
    auto info = Commit(upper, /*overlay_upper=*/true, out);
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

}  // namespace strata::builder
