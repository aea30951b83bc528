// RUN --mount: cache dirs, tmpfs, binds of the context or of a stage or
// image, secrets, ssh agents (relayed: ssh_relay.h). What a mount contributes to the step's cache
// key goes into the key: bind sources by content, a `from` by its chain key.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/engine/image_path.h"
#include "builder/engine/run_mounts.h"
#include "builder/engine/staging.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

// What a RUN --mount=type=bind of the context sees: .dockerignore applies,
// as in BuildKit, which only ever holds the filtered context. Lists `source`
// (at `rel` in the context; "" = the context itself) without descending into
// links, in sorted order; `excluded` tells whether anything was left out.
struct BindFile {
  std::string rel;  // relative to `source`
  fs::path path;
  struct stat st;
};

void ListBindSource(const DockerIgnore& ignore, const fs::path& dir, const std::string& ctx_rel,
                    const std::string& rel, std::vector<BindFile>& out, bool& excluded) {
  for (const auto& n : SortedNames(dir)) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string c = ctx_rel.empty() ? r : ctx_rel + "/" + r;
    BindFile f{r, dir / n, {}};
    if (::lstat(f.path.c_str(), &f.st) != 0) continue;
    bool is_dir = S_ISDIR(f.st.st_mode);
    if (ignore.Matches(c)) {
      excluded = true;
      if (is_dir && ignore.MayReincludeUnder(c)) {
        ListBindSource(ignore, f.path, ctx_rel, r, out, excluded);
      }
      continue;
    }
    out.push_back(f);
    if (is_dir) ListBindSource(ignore, f.path, ctx_rel, r, out, excluded);
  }
}

// Recreates `files` below `root`: directories made, files hard-linked (copied
// across file systems), links recreated. Every operation stays in the root.
Status MakeFilteredTree(const RootDir& root, const std::vector<BindFile>& files) {
  for (const auto& f : files) {
    STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(f.rel, /*create_parents=*/true));
    const char* name = at.name.c_str();
    if (S_ISDIR(f.st.st_mode)) {
      if (::mkdirat(at.dir.get(), name, f.st.st_mode & 07777) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "mkdir " + f.rel);
      }
    } else if (S_ISLNK(f.st.st_mode)) {
      std::error_code ec;
      auto target = fs::read_symlink(f.path, ec);
      if (ec) return MakeError(ErrorCode::kInternal, "readlink {}: {}", f.rel, ec.message());
      if (::symlinkat(target.c_str(), at.dir.get(), name) != 0) {
        return ErrnoError(errno, "symlink " + f.rel);
      }
    } else if (S_ISREG(f.st.st_mode)) {
      if (::linkat(AT_FDCWD, f.path.c_str(), at.dir.get(), name, 0) == 0) continue;
      STRATA_ASSIGN_OR_RETURN(auto in, OpenFile(f.path, O_RDONLY | O_NOFOLLOW));
      int fd = ::openat(at.dir.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        f.st.st_mode & 07777);
      if (fd < 0) return ErrnoError(errno, "create " + f.rel);
      UniqueFd out(fd);
      STRATA_RETURN_IF_ERROR(CopyContents(in.get(), out.get(), f.st.st_size, f.path));
    }
    // Sockets, fifos and devices of the context are not part of it.
  }
  return OkStatus();
}

}  // namespace

Status Build::PrepareMounts(const Instruction& ins, const RunCommand& run, RunSpec& spec,
                            CacheKey& key, RunMounts& held) {
  auto& mount_views = held.views;
  auto& rw_copies = held.scratch;
  auto& cache_locks = held.locks;
  std::set<fs::path> locked_dirs;
  // The root of `from` (a stage or image, resolved as FROM resolves it) for
  // a mount; the view stays for the step. Its key goes into `key`.
  auto from_root = [&](const std::string& from) -> Result<fs::path> {
    STRATA_ASSIGN_OR_RETURN(auto src,
                            ResolveSource(from, fmt::format("RUN --mount from={}", from)));
    STRATA_ASSIGN_OR_RETURN(auto v, ViewOf(src.state));
    fs::path root = v->root();
    mount_views.push_back(std::move(v));
    key.Add(src.cache_key);
    return root;
  };
  for (const auto& m : run.mounts) {
    std::string target = m.target;
    if (m.type == "secret" && target.empty() && !m.env.empty()) {
      // env= alone: the secret reaches this RUN's environment only (never
      // the cache key, the history or a layer).
    } else if (m.type == "secret" && target.empty()) {
      target = "/run/secrets/" + (m.id.empty() ? fs::path(m.source).filename().string() : m.id);
    }
    // No target: BuildKit mounts at the WORKDIR; a relative one joins it.
    if (target.empty() && m.type != "secret") target = spec.cwd;
    if (!target.empty()) {
      if (target[0] != '/') target = spec.cwd + "/" + target;
      target = CleanAbs(target);
      if (target == "/") {
        return Fail(ins,
                    Error(ErrorCode::kInvalidArgument,
                          fmt::format("RUN --mount type={}: invalid mount target \"/\"", m.type)));
      }
    }
    key.Add(m.type).Add(target);
    if (m.type == "cache") {
      std::string id = m.id.empty() ? target : m.id;
      fs::path dir = store_.root() / "cache-mounts" / oci::Digest::Of(id).hex().substr(0, 32);
      key.Add(m.sharing).Add(m.readonly ? "ro" : "rw");
      // sharing=: every user of a cache holds its lock for the step: shared
      // users share it, `locked` users wait for sole use, and a `private`
      // user that cannot have it alone gets a fresh directory of its own.
      STRATA_RETURN_IF_ERROR(MakeDirs(dir.parent_path()));
      auto lock = OpenFile(dir.string() + ".lock", O_RDWR | O_CREAT, 0600);
      if (!lock) return Fail(ins, lock.error());
      bool own_dir = false;
      if (!locked_dirs.insert(dir).second) {
        // The same cache twice in one RUN: the first mount's lock covers it.
      } else if (m.sharing == "private") {
        if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
          auto fresh = oci::MakeSnapshotScratchDir(store_, ".cache-private-");
          if (!fresh) return Fail(ins, fresh.error());
          dir = fresh->path() / "data";
          rw_copies.push_back(std::move(*fresh));
          own_dir = true;
        }
      } else {
        int how = m.sharing == "locked" ? LOCK_EX : LOCK_SH;
        while (::flock(lock->get(), how) != 0) {
          if (errno != EINTR) return Fail(ins, ErrnoError(errno, "lock cache mount").error());
        }
      }
      // The lock file's mtime is the cache's last use (prune's LRU order).
      (void)::futimens(lock->get(), nullptr);
      cache_locks.push_back(std::move(*lock));
      if (own_dir || !Exists(dir)) {
        // A new cache: seeded from `from`/`source` when given, then given
        // mode/uid/gid (applied on creation only, as BuildKit).
        ScopedTempDir seed_tmp;
        fs::path fresh = dir;
        if (!own_dir) {
          auto t = ScopedTempDir::Create(dir.parent_path(), ".new-");
          if (!t) return Fail(ins, t.error());
          seed_tmp = std::move(*t);
          fresh = seed_tmp.path() / "data";
        }
        if (!m.from.empty()) {
          auto root = from_root(m.from);
          if (!root) return Fail(ins, root.error());
          auto src = ResolveInRoot(*root, m.source.empty() ? "." : m.source, true);
          if (!src) return Fail(ins, src.error());
          std::error_code ec;
          fs::copy(*src, fresh, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
          if (ec) {
            return Fail(ins, Error(ErrorCode::kNotFound,
                                   fmt::format("RUN --mount=type=cache,from={},source={}: {}",
                                               m.from, m.source, ec.message())));
          }
        } else if (!m.source.empty()) {
          return Fail(ins, Error(ErrorCode::kInvalidArgument,
                                 "RUN --mount=type=cache: source= needs from="));
        }
        STRATA_RETURN_IF_ERROR(MakeDirs(fresh));
        mode_t mode = 0755;
        if (!m.mode.empty()) {
          auto md = ApplyChmod(m.mode, 0755, true);
          if (!md) return Fail(ins, md.error());
          mode = *md;
        }
        {
          auto fd = OpenFile(fresh, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
          if (!fd) return Fail(ins, fd.error());
          if (auto owned = ChownFd(fd->get(), static_cast<uid_t>(m.uid.value_or(0)),
                                   static_cast<gid_t>(m.gid.value_or(0)), "cache mount " + target);
              !owned) {
            return Fail(ins, owned.error());
          }
          if (::fchmod(fd->get(), mode) != 0) {
            return Fail(ins, ErrnoError(errno, "chmod cache mount " + target).error());
          }
        }
        // A cache, not an image: no fsync. Another build may have made it
        // meanwhile (EEXIST/ENOTEMPTY): then that one is used.
        if (!own_dir && ::rename(fresh.c_str(), dir.c_str()) != 0 && errno != EEXIST &&
            errno != ENOTEMPTY) {
          return Fail(ins, ErrnoError(errno, "create cache mount " + dir.string()).error());
        }
      }
      spec.binds.push_back({dir, target, m.readonly});
    } else if (m.type == "tmpfs") {
      spec.tmpfs.push_back({target, static_cast<uint64_t>(m.size.value_or(0)), 01777});
    } else if (m.type == "bind") {
      fs::path root = context_;
      if (!m.from.empty()) {
        auto r = from_root(m.from);
        if (!r) return Fail(ins, r.error());
        root = *r;
      }
      auto source = ResolveInRoot(root, m.source.empty() ? "." : m.source, true);
      if (!source) return Fail(ins, source.error());
      struct stat sst;
      if (::lstat(source->c_str(), &sst) != 0) {
        return Fail(ins,
                    Error(ErrorCode::kNotFound,
                          fmt::format("RUN --mount=type=bind: source {} not found", m.source)));
      }
      fs::path bind_source = *source;
      if (m.from.empty()) {
        // The bound context files, after .dockerignore; their content is part
        // of the key, so a change invalidates the step.
        std::string ctx_rel = source->lexically_relative(context_).generic_string();
        if (ctx_rel == ".") ctx_rel.clear();
        if (!ctx_rel.empty() && ignore_.Matches(ctx_rel)) {
          return Fail(ins, Error(ErrorCode::kNotFound,
                                 fmt::format("RUN --mount=type=bind: source {} is excluded by {}",
                                             m.source, ignore_.source().filename().string())));
        }
        std::vector<BindFile> files;
        bool excluded = false;
        if (S_ISDIR(sst.st_mode)) {
          ListBindSource(ignore_, *source, ctx_rel, "", files, excluded);
        } else {
          files.push_back({"", *source, sst});
        }
        for (const auto& f : files) {
          key.Add(f.rel).Add(std::to_string(f.st.st_mode));
          if (S_ISREG(f.st.st_mode)) {
            auto d = hasher_->Digest(f.path, f.st);
            if (!d) return Fail(ins, d.error());
            key.Add(*d);
          } else if (S_ISLNK(f.st.st_mode)) {
            std::error_code ec;
            key.Add(fs::read_symlink(f.path, ec).string());
          }
        }
        if (excluded) {
          // Bind a filtered tree instead of the context itself.
          auto filtered = oci::MakeSnapshotScratchDir(store_, ".bindctx-");
          if (!filtered) return Fail(ins, filtered.error());
          bind_source = filtered->path() / "data";
          STRATA_RETURN_IF_ERROR(MakeDirs(bind_source));
          auto froot = RootDir::Open(bind_source);
          if (!froot) return Fail(ins, froot.error());
          if (auto made = MakeFilteredTree(*froot, files); !made) {
            return Fail(ins, made.error().Wrap("RUN --mount=type=bind: filter the context"));
          }
          rw_copies.push_back(std::move(*filtered));
        }
      }
      if (m.readonly) {
        spec.binds.push_back({bind_source, target, true});
      } else {
        // rw: writes land in a throwaway copy, never in the context or the
        // stage, and are discarded after the step (BuildKit's semantics).
        auto scratch = oci::MakeSnapshotScratchDir(store_, ".bindrw-");
        if (!scratch) return Fail(ins, scratch.error());
        fs::path copy_path = scratch->path() / "data";
        std::error_code ec;
        fs::copy(bind_source, copy_path,
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
        if (ec) {
          return Fail(
              ins, Error(ErrorCode::kInternal, fmt::format("RUN --mount=type=bind,rw: copy {}: {}",
                                                           m.source, ec.message())));
        }
        spec.binds.push_back({copy_path, target, false});
        rw_copies.push_back(std::move(*scratch));
      }
    } else if (m.type == "secret") {
      std::string id = m.id.empty() ? fs::path(m.source).filename().string() : m.id;
      auto it = opts_.secrets.find(id);
      if (it == opts_.secrets.end()) {
        if (m.required) {
          return Fail(ins, Error(ErrorCode::kNotFound,
                                 fmt::format("secret {} not found (pass --secret id={},src=FILE)",
                                             id, id)));
        }
        continue;
      }
      const BuildOptions::Secret& secret = it->second;
      if (!m.env.empty()) {
        auto value = secret.value ? Result<std::string>(*secret.value) : ReadFile(secret.file);
        if (!value) return Fail(ins, value.error().Wrap(fmt::format("secret {}", id)));
        std::erase_if(spec.env, [&](const std::string& e) { return e.starts_with(m.env + "="); });
        spec.env.push_back(m.env + "=" + *value);
      }
      if (target.empty()) continue;
      if (secret.value || !m.mode.empty() || m.uid || m.gid) {
        // An environment secret mounted as a file: a 0400 file in a private
        // dir, removed after the step.
        auto dir = oci::MakeSnapshotScratchDir(store_, ".secret-");
        if (!dir) return Fail(ins, dir.error());
        ::chmod(dir->path().c_str(), 0700);
        fs::path file = dir->path() / "value";
        // The secret as its own file: 0400 root by default, as BuildKit, or
        // the mount's mode=/uid=/gid=.
        auto content = secret.value ? Result<std::string>(*secret.value) : ReadFile(secret.file);
        if (!content) return Fail(ins, content.error().Wrap(fmt::format("secret {}", id)));
        mode_t mode = 0400;
        if (!m.mode.empty()) {
          auto md = ApplyChmod(m.mode, 0400, false);
          if (!md) return Fail(ins, md.error());
          mode = *md;
        }
        STRATA_RETURN_IF_ERROR(WriteScratchFile(file, *content, mode));
        auto fd = OpenFile(file, O_RDONLY | O_NOFOLLOW);
        if (!fd) return Fail(ins, fd.error());
        if (auto owned = ChownFd(fd->get(), static_cast<uid_t>(m.uid.value_or(0)),
                                 static_cast<gid_t>(m.gid.value_or(0)), "secret " + id);
            !owned) {
          return Fail(ins, owned.error());
        }
        ::chmod(file.c_str(), mode);
        ::chmod(dir->path().c_str(), 0711);
        spec.binds.push_back({file, target, true});
        rw_copies.push_back(std::move(*dir));
      } else {
        spec.binds.push_back({Absolute(secret.file), target, true});
      }
    } else if (m.type == "ssh") {
      // The agent of --ssh ID, relayed to a socket of this RUN's own (owned
      // uid:gid, mode 0600 by default) bound read-only at the target, and
      // SSH_AUTH_SOCK in the RUN's environment only.
      const std::string id = m.id.empty() ? "default" : m.id;
      key.Add(id)
          .Add(m.mode)
          .Add(std::to_string(m.uid.value_or(0)))
          .Add(std::to_string(m.gid.value_or(0)));
      auto it = opts_.ssh.find(id);
      if (it == opts_.ssh.end()) {
        if (m.required) {
          return Fail(ins, Error(ErrorCode::kNotFound,
                                 fmt::format("RUN --mount=type=ssh,id={},required=true: no SSH "
                                             "agent or key forwarded with that id (pass --ssh "
                                             "{}[=SOCKET|KEY[,KEY...]])",
                                             id, id)));
        }
        continue;  // optional, as in BuildKit: the mount is skipped
      }
      mode_t mode = 0600;
      if (!m.mode.empty()) {
        auto md = ApplyChmod(m.mode, 0600, false);
        if (!md) return Fail(ins, md.error());
        mode = *md;
      }
      // A short private directory (a unix socket path is at most 107 bytes).
      auto dir = ScopedTempDir::Create(fs::temp_directory_path(), "strata-ssh-");
      if (!dir) return Fail(ins, dir.error());
      fs::path sock = dir->path() / "agent";
      auto relay = SshRelay::Start(sock, it->second, static_cast<uid_t>(m.uid.value_or(0)),
                                   static_cast<gid_t>(m.gid.value_or(0)), mode);
      if (!relay)
        return Fail(ins, relay.error().Wrap(fmt::format("RUN --mount=type=ssh,id={}", id)));
      spec.binds.push_back({sock, target, true});
      std::erase_if(spec.env, [](const std::string& e) { return e.starts_with("SSH_AUTH_SOCK="); });
      spec.env.push_back("SSH_AUTH_SOCK=" + target);
      rw_copies.push_back(std::move(*dir));
      held.relays.push_back(std::move(*relay));
    } else {
      return Fail(ins, Error(ErrorCode::kUnimplemented,
                             fmt::format("RUN --mount=type={} is not supported yet", m.type)));
    }
  }
  return OkStatus();
}

}  // namespace strata::builder
