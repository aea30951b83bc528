#include "oci/layer_reader.h"

#include <archive.h>
#include <archive_entry.h>
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

#include "oci/util/file_util.h"
#include "oci/util/in_root.h"
#include "oci/whiteout.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadChunk = 128 * 1024;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Hashes the uncompressed stream (diffID) and stops it at the size limit.
class DiffIdSource : public ByteSource {
 public:
  DiffIdSource(ByteSource* in, uint64_t limit) : in_(in), limit_(limit) {}
  Result<size_t> Read(void* buf, size_t size) override {
    STRATA_ASSIGN_OR_RETURN(size_t n, in_->Read(buf, size));
    if (hasher_.bytes() + n > limit_) {
      limit_exceeded_ = true;
      return MakeError(ErrorCode::kInvalidArgument,
                       "uncompressed layer exceeds the limit of {} bytes ({}); raise it with "
                       "--max-layer-size or STRATA_MAX_LAYER_SIZE",
                       limit_, FormatByteSize(limit_));
    }
    hasher_.Update(buf, n);
    return n;
  }
  uint64_t bytes() const { return hasher_.bytes(); }
  bool limit_exceeded() const { return limit_exceeded_; }
  Digest Finish() { return hasher_.Finish(); }

 private:
  ByteSource* in_;
  uint64_t limit_;
  bool limit_exceeded_ = false;
  Digester hasher_;
};

// Cleans a tar entry name into a relative path without "." components.
// Absolute paths and ".." are refused: a layer names paths inside its root.
Result<std::string> CleanPath(std::string_view raw) {
  if (raw.starts_with('/')) {
    return MakeError(ErrorCode::kInvalidArgument, "absolute path is not allowed");
  }
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view comp = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      return MakeError(ErrorCode::kInvalidArgument, "\"..\" in a path is not allowed");
    }
    if (!out.empty()) out += '/';
    out += comp;
  }
  return out;
}

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

class Applier {
 public:
  Applier(int root_fd, const ApplyOptions& opts) : root_fd_(root_fd), opts_(opts) {}

  // Decides how a failure is undone: an empty target is emptied again,
  // otherwise the paths this layer creates are recorded and removed.
  Status Start() {
    STRATA_ASSIGN_OR_RETURN(auto names, ListDirFd(root_fd_));
    fresh_ = names.empty();
    return OkStatus();
  }

  Status Apply(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) {
      stream_error_ = true;
      return MakeError(ErrorCode::kInvalidArgument, "entry without a name");
    }
    STRATA_ASSIGN_OR_RETURN(std::string rel, CleanPath(raw));
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
  Status Finish() {
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
  Status Rollback() {
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
          ::fremovexattr(root_fd_, std::string(kOverlayOpaqueXattr).c_str()) != 0 &&
          errno != ENODATA) {
        note(ErrnoError(errno, "remove trusted.overlay.opaque"));
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
  bool stream_error() const { return stream_error_; }

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
      if (::fsetxattr(dir->fd.get(), std::string(kOverlayOpaqueXattr).c_str(), "y", 1, 0) != 0) {
        return ErrnoError(errno, "set trusted.overlay.opaque");
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
    auto cleaned = CleanPath(raw);
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
      if (rc != 0) return ErrnoError(errno, "chown");
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
      if (n.starts_with(kOverlayXattrPrefix)) continue;
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

struct ReadContext {
  ByteSource* src;
  std::vector<char> buf = std::vector<char>(kReadChunk);
  std::optional<Error> error = std::nullopt;
};

la_ssize_t ReadCallback(archive*, void* ctx, const void** out) {
  auto* c = static_cast<ReadContext*>(ctx);
  auto n = c->src->Read(c->buf.data(), c->buf.size());
  if (!n) {
    c->error = n.error();
    return -1;
  }
  *out = c->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// ApplyTar with the diffID check inside, so that a mismatch is rolled back
// too.
Result<ApplyResult> ApplyTarImpl(ByteSource* compressed, Compression compression,
                                 const fs::path& target, const ApplyOptions& opts,
                                 std::string_view layer_name, const Digest& expected_diff_id) {
  auto fail = [&](const Error& e, std::string_view entry = {}) {
    if (entry.empty()) return Unexpected(e.Wrap(fmt::format("layer {}", layer_name)));
    return Unexpected(e.Wrap(fmt::format("layer {}: entry \"{}\"", layer_name, entry)));
  };
  // `where`: "" or " (in entry \"x\")" / " (after entry \"x\")".
  auto broken = [&](const Error& e, std::string_view where = {}) {
    return Unexpected(
        Error(e.code(), fmt::format("layer {} is corrupt: {}{}", layer_name, e.message(), where)));
  };
  auto after = [](std::string_view entry) {
    return entry.empty() ? std::string() : fmt::format(" (after entry \"{}\")", entry);
  };
  auto in = [](std::string_view entry) { return fmt::format(" (in entry \"{}\")", entry); };
  // An error from the byte chain (blob -> decompressor -> size limit).
  auto source_failed = [&](const Error& e, const DiffIdSource& tar, std::string_view where = {}) {
    if (tar.limit_exceeded() || e.code() != ErrorCode::kDataLoss) return fail(e);
    return broken(e, where);
  };
  if (compression == Compression::kUnknown) {
    return fail(Error(ErrorCode::kInvalidArgument, "unknown layer compression"));
  }
  // Check the magic bytes against what the media type declares.
  auto head_or = ReadUpTo(compressed, 4);
  if (!head_or) return fail(head_or.error());
  std::string head = std::move(*head_or);
  const size_t got = head.size();
  Compression actual = DetectCompression(head);
  if (actual != compression) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("declared {} but the data is {}", CompressionName(compression),
                                  got == 0 ? "empty" : CompressionName(actual))));
  }
  PrefixSource prefixed(std::move(head), compressed);
  auto decompressor = NewDecompressor(compression, &prefixed);
  if (!decompressor) return fail(decompressor.error());
  DiffIdSource tar(decompressor->get(), opts.max_uncompressed_bytes);

  int root = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return fail(ErrnoError(errno, "open target " + target.string()).error());
  UniqueFd root_fd(root);

  std::unique_ptr<archive, ArchiveReadDeleter> a(archive_read_new());
  if (!a) return fail(Error(ErrorCode::kInternal, "archive_read_new failed"));
  // Tar formats only (ustar, pax, gnu); no filters: we decompressed already.
  archive_read_support_format_tar(a.get());
  ReadContext ctx{&tar};
  if (archive_read_open(a.get(), &ctx, nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
    if (ctx.error) return source_failed(*ctx.error, tar);
    return broken(Error(ErrorCode::kInvalidArgument,
                        fmt::format("not a tar stream: {}", archive_error_string(a.get()))));
  }
  Applier applier(root_fd.get(), opts);
  if (auto s = applier.Start(); !s) return fail(s.error());

  auto run = [&]() -> Result<ApplyResult> {
    ApplyResult result;
    std::string last;
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      // ARCHIVE_RETRY (a damaged header) leaves no usable entry either.
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        if (ctx.error) return source_failed(*ctx.error, tar, after(last));
        return broken(Error(ErrorCode::kInvalidArgument,
                            fmt::format("malformed tar: {}", archive_error_string(a.get()))),
                      after(last));
      }
      const char* p = archive_entry_pathname(e);
      last = p != nullptr ? p : "";
      auto s = applier.Apply(a.get(), e);
      if (!s) {
        if (ctx.error) return source_failed(*ctx.error, tar, in(last));
        if (applier.stream_error()) return broken(s.error(), in(last));
        return fail(s.error(), last);
      }
      ++result.entries;
    }
    if (auto s = applier.Finish(); !s) return fail(s.error());
    // Drain what follows the end-of-archive blocks: it belongs to the diffID,
    // and the compressed source verifies its digest only at its end.
    std::vector<char> buf(kReadChunk);
    for (;;) {
      auto n = tar.Read(buf.data(), buf.size());
      if (!n) return source_failed(n.error(), tar);
      if (*n == 0) break;
    }
    result.uncompressed_size = tar.bytes();
    result.diff_id = tar.Finish();
    if (expected_diff_id.valid() && result.diff_id != expected_diff_id) {
      return MakeError(ErrorCode::kDataLoss, "layer {}: diffID is {}, the config says {}",
                       layer_name, result.diff_id, expected_diff_id);
    }
    return result;
  };
  auto result = run();
  if (!result) {
    if (auto s = applier.Rollback(); !s) {
      return Unexpected(Error(result.error().code(),
                              fmt::format("{} (removing the partial layer also failed: {})",
                                          result.error().message(), s.error().message())));
    }
  }
  return result;
}

// Hashes a stored blob through the store's reader; the actual digest even
// when it does not match the name (the reader's complaint at the end is
// expected then).
Result<Digest> HashStoredBlob(const Store& store, const Digest& d) {
  STRATA_ASSIGN_OR_RETURN(BlobReader reader, store.Open(d));
  Digester h;
  std::vector<char> buf(kReadChunk);
  for (;;) {
    auto n = reader.Read(buf.data(), buf.size());
    if (!n) {
      if (static_cast<int64_t>(h.bytes()) == reader.size()) break;  // mismatch at the end
      return Unexpected(n.error());
    }
    if (*n == 0) break;
    h.Update(buf.data(), *n);
  }
  return h.Finish();
}

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view text) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid size \"{}\": want a number of bytes with an optional suffix "
                     "k, m, g or t (powers of 1024; e.g. 64G, 512MiB)",
                     text);
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 20) return bad();
  uint64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - d) / 10) return bad();
    value = value * 10 + d;
  }
  std::string suffix;
  for (char c : text.substr(digits)) suffix += static_cast<char>(std::tolower(c));
  int shift = 0;
  if (!suffix.empty() && suffix != "b") {
    switch (suffix[0]) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        return bad();
    }
    std::string_view rest = std::string_view(suffix).substr(1);
    if (rest != "" && rest != "b" && rest != "i" && rest != "ib") return bad();
  }
  if (value == 0 || value > (UINT64_MAX >> shift)) return bad();
  return value << shift;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr std::pair<int, const char*> kUnits[] = {
      {40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  for (const auto& [shift, unit] : kUnits) {
    const uint64_t one = uint64_t{1} << shift;
    if (bytes >= one && bytes % one == 0) return fmt::format("{} {}", bytes >> shift, unit);
  }
  return fmt::format("{} bytes", bytes);
}

Result<ApplyResult> ApplyTar(ByteSource* compressed, Compression compression,
                             const fs::path& target, const ApplyOptions& opts,
                             std::string_view layer_name) {
  return ApplyTarImpl(compressed, compression, target, opts, layer_name, Digest());
}

Result<ApplyResult> ApplyLayer(const Store& store, const Descriptor& layer,
                               const Digest& expected_diff_id, const fs::path& target,
                               const ApplyOptions& opts) {
  Compression c = media_type::LayerCompression(layer.media_type);
  if (c == Compression::kUnknown) {
    return MakeError(ErrorCode::kUnimplemented, "layer {}: unsupported media type {}", layer.digest,
                     layer.media_type);
  }
  auto reader = store.Open(layer.digest);
  if (!reader) return Unexpected(reader.error().Wrap(fmt::format("layer {}", layer.digest)));
  BlobSource src(&*reader);
  auto r = ApplyTarImpl(&src, c, target, opts, layer.digest.ToString(), expected_diff_id);
  // Tell a blob whose bytes changed from a well-formed blob holding a bad
  // layer: the stream mostly stops before the reader checks the digest at its
  // end. A changed blob is the cause whatever the symptom was; only a full
  // disk (Unavailable) is not worth reading the blob again.
  if (!r && r.error().code() != ErrorCode::kUnavailable) {
    auto actual = HashStoredBlob(store, layer.digest);
    if (actual && *actual != layer.digest) {
      return MakeError(ErrorCode::kDataLoss,
                       "layer {} is corrupt: digest mismatch: expected {}, got {}", layer.digest,
                       layer.digest, *actual);
    }
  }
  return r;
}

}  // namespace strata::oci
