// The tar entry applier behind ApplyTar (oci/layer_applier.h): resolves every
// path inside the root, applies entries and whiteouts, journals for rollback.
#include "oci/layer_applier.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "oci/util/archive_handle.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"
#include "oci/util/path.h"
#include "oci/util/userns.h"
#include "oci/whiteout.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

std::pair<std::string, std::string> SplitParent(const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

std::string Join(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

// Appends the components of `path` (empty ones included; callers skip them).
void SplitInto(std::string_view path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    parts.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  if (front) {
    out.insert(out.begin(), parts.begin(), parts.end());
  } else {
    out.insert(out.end(), parts.begin(), parts.end());
  }
}

Result<std::vector<std::string>> ListDirFd(int dir_fd) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoError(errno, "dup");
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    ::close(dup_fd);
    return ErrnoError(errno, "fdopendir");
  }
  std::unique_ptr<DIR, int (*)(DIR*)> owner(d, &::closedir);
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) return ErrnoError(errno, "readdir");
  return names;
}

// The target of the symlink dir_fd/name; EINVAL if it is not a symlink.
Result<std::string> ReadLinkAt(int dir_fd, const std::string& name) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
    if (n < 0) return ErrnoError(errno, "readlink " + name);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

std::string ProcPath(int dir_fd, const std::string& base) {
  return fmt::format("/proc/self/fd/{}/{}", dir_fd, base);
}

// Symlinks followed while resolving one path, as the kernel's MAXSYMLINKS.
constexpr int kMaxSymlinks = 40;

// A directory inside the root: an fd opened O_NOFOLLOW and its physical
// path relative to the root (no symlink, no "..", "" for the root).
struct Dir {
  UniqueFd fd;
  std::string path;
};

class Applier final : public TarEntryApplier {
 public:
  Applier(int root_fd, const ApplyOptions& opts) : root_fd_(root_fd), opts_(opts) {}

  // Decides how a failure is undone: an empty target is emptied again,
  // otherwise the paths this layer creates are recorded and removed.
  Status Start() override {
    STRATA_ASSIGN_OR_RETURN(auto names, ListDirFd(root_fd_));
    fresh_ = names.empty();
    return OkStatus();
  }

  Status Apply(archive* a, archive_entry* e) override {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) {
      stream_error_ = true;
      return MakeError(ErrorCode::kInvalidArgument, "entry without a name");
    }
    STRATA_ASSIGN_OR_RETURN(std::string rel, CleanEntryPath(raw));
    if (rel.empty()) return OkStatus();  // the root itself: the target keeps its metadata
    auto [parent, base] = SplitParent(rel);
    Whiteout wh = ClassifyWhiteout(base);
    switch (wh.kind) {
      case WhiteoutKind::kInvalid:
        return MakeError(ErrorCode::kInvalidArgument, "invalid whiteout name");
      case WhiteoutKind::kMeta:
        return OkStatus();
      case WhiteoutKind::kOpaque:
        return ApplyOpaque(parent);
      case WhiteoutKind::kFile:
        return ApplyWhiteout(parent, wh.target);
      case WhiteoutKind::kNone:
        break;
    }
    return ApplyEntry(a, e, parent, base);
  }

  // Sets directory modes and times now that their contents are in place.
  // The recorded paths are physical: a directory replaced since (by a
  // symlink or another type) is skipped rather than resolved elsewhere.
  Status Finish() override {
    for (const auto& d : dirs_) {
      int fd =
          OpenInRoot(root_fd_, d.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
      if (fd < 0) continue;
      UniqueFd owner(fd);
      if (::fchmod(fd, d.mode) != 0) return ErrnoError(errno, "chmod " + d.path);
      struct timespec ts[2] = {{d.mtime, 0}, {d.mtime, 0}};
      if (::futimens(fd, ts) != 0) return ErrnoError(errno, "set times " + d.path);
    }
    return OkStatus();
  }

  // Undoes what the layer wrote (see layer_reader.h). Best effort: returns
  // the first error but keeps going.
  Status Rollback() override {
    cache_valid_ = false;
    Status first = OkStatus();
    auto note = [&](Status s) {
      if (!s && first) first = std::move(s);
    };
    if (fresh_) {
      auto names = ListDirFd(root_fd_);
      if (!names) return Unexpected(names.error());
      for (const auto& n : *names) note(RemoveTreeAt(root_fd_, n));
      if (root_opaque_set_ &&
          ::fremovexattr(root_fd_, std::string(opts_.opaque_xattr).c_str()) != 0 &&
          errno != ENODATA) {
        note(ErrnoError(errno, fmt::format("remove {}", opts_.opaque_xattr)));
      }
      return first;
    }
    for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
      auto [parent, base] = SplitParent(*it);
      int fd =
          OpenInRoot(root_fd_, parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
      if (fd < 0) continue;  // its parent is gone already
      UniqueFd owner(fd);
      note(RemoveTreeAt(fd, base));
    }
    return first;
  }

  // A read error of the tar stream itself (not of the file system): the
  // layer is corrupt.
  bool stream_error() const override { return stream_error_; }

 private:
  struct DirMeta {
    std::string path;  // physical
    mode_t mode;
    time_t mtime;
  };

  // Records a path about to be created or replaced, for Rollback.
  void Journal(const std::string& path) {
    if (!fresh_) journal_.push_back(path);
  }

  // Removes dir_fd/name (never following it); resolutions cached so far may
  // have gone through it.
  Status Remove(int dir_fd, const std::string& name) {
    cache_valid_ = false;
    return RemoveTreeAt(dir_fd, name);
  }

  // Resolves `rel` to a directory inside the root. Symlinks on the way are
  // followed as if the root were "/" (absolute targets restart at the root,
  // ".." stops at it); with `create`, missing directories are made (0755)
  // wherever the resolution leads, so `a -> /b/c` then `a/f` makes b/c.
  // NotFound (ENOENT/ENOTDIR) when a component is missing without `create`
  // or is not a directory.
  Result<Dir> Resolve(const std::string& rel, bool create) {
    // Fast path: the whole path exists and holds no symlink.
    int fast = OpenInRoot(root_fd_, rel, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (fast >= 0) return Dir{UniqueFd(fast), rel};
    if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR) {
      return ErrnoError(errno, fmt::format("open directory \"{}\"", rel));
    }
    std::vector<UniqueFd> fds;  // fds[i]: the directory named by names[0..i)
    std::vector<std::string> names;
    int root = ::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0);
    if (root < 0) return ErrnoError(errno, "dup");
    fds.emplace_back(root);
    auto physical = [&names] {
      std::string p;
      for (const auto& n : names) p = Join(p, n);
      return p;
    };
    std::deque<std::string> todo;
    SplitInto(rel, todo, /*front=*/false);
    int links = 0;
    while (!todo.empty()) {
      std::string comp = std::move(todo.front());
      todo.pop_front();
      if (comp.empty() || comp == ".") continue;
      if (comp == "..") {
        if (!names.empty()) {
          names.pop_back();
          fds.pop_back();
        }
        continue;
      }
      const int cur = fds.back().get();
      int fd = ::openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      // A missing directory is made, unless ".." follows: the kernel fails
      // such a path (ENOENT) and so do we, rather than make a directory
      // only to leave it.
      if (fd < 0 && errno == ENOENT && create &&
          std::find(todo.begin(), todo.end(), "..") == todo.end()) {
        if (::mkdirat(cur, comp.c_str(), 0755) == 0) {
          const std::string made = Join(physical(), comp);
          Journal(made);
          written_[made] = true;
        } else if (errno != EEXIST) {
          return ErrnoError(errno, fmt::format("mkdir \"{}\"", Join(physical(), comp)));
        }
        fd = ::openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        // O_NOFOLLOW stops at a symlink: splice its target into the walk.
        if (auto target = ReadLinkAt(cur, comp); target) {
          if (++links > kMaxSymlinks) {
            return MakeError(ErrorCode::kInvalidArgument,
                             "too many levels of symbolic links resolving \"{}\"", rel);
          }
          if (target->starts_with('/')) {
            names.clear();
            fds.resize(1);
          }
          SplitInto(*target, todo, /*front=*/true);
          continue;
        }
        errno = ENOTDIR;
      }
      if (fd < 0)
        return ErrnoError(errno, fmt::format("open directory \"{}\"", Join(physical(), comp)));
      fds.emplace_back(fd);
      names.push_back(std::move(comp));
    }
    return Dir{std::move(fds.back()), physical()};
  }

  // Resolve() with a one-entry cache: consecutive entries of a layer mostly
  // share their parent. Valid until the next call; Remove() invalidates it.
  Result<const Dir*> Parent(const std::string& rel, bool create) {
    if (cache_valid_ && cache_rel_ == rel) return &cache_;
    cache_valid_ = false;
    STRATA_ASSIGN_OR_RETURN(cache_, Resolve(rel, create));
    cache_rel_ = rel;
    cache_valid_ = true;
    return &cache_;
  }

  Status ApplyWhiteout(const std::string& parent, const std::string& name) {
    if (opts_.form == ApplyForm::kOverlay) {
      STRATA_ASSIGN_OR_RETURN(const Dir* dir, Parent(parent, /*create=*/true));
      const std::string victim = Join(dir->path, name);
      // A whiteout hides lower layers only; what this layer wrote stays.
      if (written_.contains(victim)) return OkStatus();
      Journal(victim);
      STRATA_RETURN_IF_ERROR(Remove(dir->fd.get(), name));
      if (::mknodat(dir->fd.get(), name.c_str(), S_IFCHR | 0, ::makedev(0, 0)) != 0) {
        return ErrnoError(errno, "create overlay whiteout");
      }
      return OkStatus();
    }
    auto dir = Parent(parent, /*create=*/false);
    if (!dir) {
      if (dir.error().code() == ErrorCode::kNotFound) return OkStatus();  // nothing to hide
      return Unexpected(dir.error());
    }
    if (written_.contains(Join((*dir)->path, name))) return OkStatus();
    return Remove((*dir)->fd.get(), name);
  }

  Status ApplyOpaque(const std::string& parent) {
    if (opts_.form == ApplyForm::kOverlay) {
      STRATA_ASSIGN_OR_RETURN(const Dir* dir, Parent(parent, /*create=*/true));
      if (::fsetxattr(dir->fd.get(), std::string(opts_.opaque_xattr).c_str(), "y", 1, 0) != 0) {
        return ErrnoError(errno, fmt::format("set {}", opts_.opaque_xattr));
      }
      if (dir->path.empty()) root_opaque_set_ = true;
      return OkStatus();
    }
    auto dir = Parent(parent, /*create=*/false);
    if (!dir) {
      if (dir.error().code() == ErrorCode::kNotFound) return OkStatus();
      return Unexpected(dir.error());
    }
    cache_valid_ = false;
    return RemoveLower((*dir)->fd.get(), (*dir)->path);
  }

  // Removes what `path` held before this layer, keeping this layer's entries.
  Status RemoveLower(int dir_fd, const std::string& path) {
    STRATA_ASSIGN_OR_RETURN(auto names, ListDirFd(dir_fd));
    for (const auto& name : names) {
      auto it = written_.find(Join(path, name));
      if (it == written_.end()) {
        STRATA_RETURN_IF_ERROR(RemoveTreeAt(dir_fd, name));
      } else if (it->second) {
        int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return ErrnoError(errno, "open " + it->first);
        UniqueFd child(fd);
        STRATA_RETURN_IF_ERROR(RemoveLower(child.get(), it->first));
      }
    }
    return OkStatus();
  }

  // A hardlink's target inside the root: "/x" and "x" name the same path,
  // ".." is refused, symlinks in its parent resolve inside the root, the
  // final component is not followed. It must exist and not be a directory.
  Result<std::pair<Dir, std::string>> HardlinkTarget(const char* link_raw) {
    std::string_view raw(link_raw);
    while (raw.starts_with('/')) raw.remove_prefix(1);
    auto cleaned = CleanEntryPath(raw);
    if (!cleaned) return Unexpected(cleaned.error().Wrap("hardlink target"));
    if (cleaned->empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "hardlink to the root directory");
    }
    auto missing = [&] {
      return MakeError(ErrorCode::kInvalidArgument, "hardlink target \"{}\" does not exist",
                       link_raw);
    };
    auto [tparent, tbase] = SplitParent(*cleaned);
    auto dir = Resolve(tparent, /*create=*/false);
    if (!dir) {
      if (dir.error().code() == ErrorCode::kNotFound) return missing();
      return Unexpected(dir.error().Wrap("hardlink target"));
    }
    struct stat st;
    if (::fstatat(dir->fd.get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return missing();
      return ErrnoError(errno, fmt::format("hardlink target \"{}\"", link_raw));
    }
    if (S_ISDIR(st.st_mode)) {
      return MakeError(ErrorCode::kInvalidArgument, "hardlink target \"{}\" is a directory",
                       link_raw);
    }
    // A link is a new name for a device: the same rules as creating one.
    if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && !opts_.allow_devices) {
      return MakeError(ErrorCode::kPermissionDenied, "hardlink to device node \"{}\"", link_raw);
    }
    if (opts_.form == ApplyForm::kOverlay && IsOverlayWhiteout(st)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "hardlink to \"{}\", a char device 0/0, would act as an overlay whiteout",
                       link_raw);
    }
    return std::make_pair(std::move(*dir), tbase);
  }

  Status ApplyEntry(archive* a, archive_entry* e, const std::string& parent,
                    const std::string& base) {
    const mode_t type = archive_entry_filetype(e);
    const char* link_raw = archive_entry_hardlink(e);
    if (type == AE_IFCHR || type == AE_IFBLK) {
      if (opts_.skip_devices && link_raw == nullptr) return OkStatus();
      if (!opts_.allow_devices) {
        return MakeError(ErrorCode::kPermissionDenied, "device nodes are not allowed here");
      }
      if (opts_.form == ApplyForm::kOverlay && type == AE_IFCHR && archive_entry_rdev(e) == 0) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "a char device 0/0 would act as an overlay whiteout");
      }
    }
    std::optional<std::pair<Dir, std::string>> link;
    if (link_raw != nullptr) {
      STRATA_ASSIGN_OR_RETURN(link, HardlinkTarget(link_raw));
    }

    STRATA_ASSIGN_OR_RETURN(const Dir* dir, Parent(parent, /*create=*/true));
    const int dfd = dir->fd.get();
    const std::string path = Join(dir->path, base);
    const char* name = base.c_str();
    struct stat existing;
    bool exists = ::fstatat(dfd, name, &existing, AT_SYMLINK_NOFOLLOW) == 0;
    bool keep_dir = exists && link_raw == nullptr && type == AE_IFDIR && S_ISDIR(existing.st_mode);
    if (!keep_dir) Journal(path);
    if (exists && !keep_dir) STRATA_RETURN_IF_ERROR(Remove(dfd, base));

    if (link) {
      // flags 0: a symlink target is linked itself, never followed.
      if (::linkat(link->first.fd.get(), link->second.c_str(), dfd, name, 0) != 0) {
        return ErrnoError(errno, fmt::format("hardlink to \"{}\"", link_raw));
      }
      written_[path] = false;
      return OkStatus();  // shares the target's inode and metadata
    }

    const mode_t perm = archive_entry_perm(e) & 07777;
    UniqueFd fd;  // regular files and directories: opened O_NOFOLLOW
    switch (type) {
      case AE_IFREG: {
        int f = ::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f < 0) return ErrnoError(errno, "create file");
        fd.Reset(f);
        written_[path] = false;
        STRATA_RETURN_IF_ERROR(WriteData(a, e, fd.get()));
        break;
      }
      case AE_IFDIR:
        if (!keep_dir && ::mkdirat(dfd, name, 0755) != 0) return ErrnoError(errno, "mkdir");
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr)
          return MakeError(ErrorCode::kInvalidArgument, "symlink without target");
        // The target is stored as it is: it is only ever followed by
        // resolution confined to a root (here, overlayfs or a container).
        if (::symlinkat(target, dfd, name) != 0) return ErrnoError(errno, "symlink");
        break;
      }
      case AE_IFIFO:
        if (::mknodat(dfd, name, S_IFIFO | 0600, 0) != 0) return ErrnoError(errno, "mkfifo");
        break;
      case AE_IFCHR:
      case AE_IFBLK:
        if (::mknodat(dfd, name, (type == AE_IFCHR ? S_IFCHR : S_IFBLK) | 0600,
                      archive_entry_rdev(e)) != 0) {
          return ErrnoError(errno, "mknod");
        }
        break;
      default:
        return MakeError(ErrorCode::kInvalidArgument, "unsupported entry type {:o}", type);
    }
    written_[path] = type == AE_IFDIR;
    if (type == AE_IFDIR) {
      int f = ::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (f < 0) return ErrnoError(errno, "open directory");
      fd.Reset(f);
    }

    // Owner first: chown clears setuid/setgid bits and security.capability.
    if (opts_.preserve_owners) {
      const uid_t uid = archive_entry_uid(e);
      const gid_t gid = archive_entry_gid(e);
      int rc =
          fd ? ::fchown(fd.get(), uid, gid) : ::fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
      if (rc != 0) return ChownError(errno, archive_entry_pathname(e), uid, gid);
    }
    if (type != AE_IFLNK && type != AE_IFDIR) {
      // Fifos and devices have no fd (opening one may block or reach a
      // driver); AT_SYMLINK_NOFOLLOW keeps chmod on the entry itself.
      int rc = fd ? ::fchmod(fd.get(), perm) : ::fchmodat(dfd, name, perm, AT_SYMLINK_NOFOLLOW);
      if (rc != 0) return ErrnoError(errno, "chmod");
    }
    STRATA_RETURN_IF_ERROR(SetXattrs(e, fd.get(), dfd, base));
    const time_t mtime = archive_entry_mtime(e);
    if (type == AE_IFDIR) {
      dirs_.push_back({path, perm, mtime});
      return OkStatus();
    }
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    int rc = fd ? ::futimens(fd.get(), ts) : ::utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return ErrnoError(errno, "set times");
    return OkStatus();
  }

  Status WriteData(archive* a, archive_entry* e, int fd) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    int64_t end = 0;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        stream_error_ = true;
        const char* why = archive_error_string(a);
        return MakeError(ErrorCode::kDataLoss, "reading the file's data: {}",
                         why != nullptr ? why : "unknown libarchive error");
      }
      const char* p = static_cast<const char*>(buf);
      size_t left = size;
      off_t at = offset;
      while (left > 0) {
        ssize_t n = ::pwrite(fd, p, left, at);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoError(errno, "write");
        }
        p += n;
        left -= static_cast<size_t>(n);
        at += n;
      }
      end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
    }
    // A sparse file may end in a hole.
    if (archive_entry_size(e) > end && ::ftruncate(fd, archive_entry_size(e)) != 0) {
      return ErrnoError(errno, "truncate");
    }
    return OkStatus();
  }

  Status SetXattrs(archive_entry* e, int fd, int dfd, const std::string& base) {
    if (archive_entry_xattr_reset(e) == 0) return OkStatus();
    const char* xname;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      std::string_view n(xname);
      // Never let a layer speak for the overlay mount (opacity, redirects).
      if (IsOverlayXattr(n)) continue;
      // Without an fd (symlinks, fifos, devices): the entry by name in its
      // parent's fd, the final component not followed (lsetxattr).
      int rc = fd >= 0 ? ::fsetxattr(fd, xname, value, size, 0)
                       : ::lsetxattr(ProcPath(dfd, base).c_str(), xname, value, size, 0);
      if (rc != 0) {
        if (!opts_.preserve_owners && (errno == EPERM || errno == ENOTSUP)) continue;
        return ErrnoError(errno, fmt::format("set xattr {}", n));
      }
    }
    return OkStatus();
  }

  const int root_fd_;
  const ApplyOptions& opts_;
  // Paths this layer wrote, physical (value: is a directory). Whiteouts and
  // opaque markers never hide these.
  std::unordered_map<std::string, bool> written_;
  std::vector<DirMeta> dirs_;
  // Rollback: an empty target is emptied; otherwise the journal lists every
  // path created or replaced, in order.
  bool fresh_ = false;
  bool root_opaque_set_ = false;
  std::vector<std::string> journal_;
  bool stream_error_ = false;
  // Parent() cache.
  bool cache_valid_ = false;
  std::string cache_rel_;
  Dir cache_;
};

}  // namespace

std::unique_ptr<TarEntryApplier> TarEntryApplier::New(int root_fd, const ApplyOptions& opts) {
  return std::make_unique<Applier>(root_fd, opts);
}

}  // namespace strata::oci
