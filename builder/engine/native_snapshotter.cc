#include "builder/engine/native_snapshotter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "oci/whiteout.h"

namespace strata::builder {
namespace fs = std::filesystem;
namespace {

constexpr int kMaxDepth = 4096;
constexpr std::string_view kUserOpaqueXattr = "user.overlay.opaque";
constexpr std::string_view kUserOverlayPrefix = "user.overlay.";

std::string Join(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : rel + "/" + name;
}

// "/a/b" for messages.
std::string Show(const std::string& rel) { return "/" + rel; }

std::unexpected<Error> EntryError(int err, std::string_view what, const std::string& rel) {
  return ErrnoError(err, fmt::format("{} {}", what, Show(rel)));
}

UniqueFd OpenDirAt(int dir_fd, const std::string& name) {
  return UniqueFd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// The names in a directory (without "." and ".."), sorted.
Result<std::vector<std::string>> ListNames(int dir_fd, const std::string& rel) {
  int fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return EntryError(errno, "dup", rel);
  // fdopendir takes the fd; closedir closes it.
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), &::closedir);
  if (!d) {
    int err = errno;
    ::close(fd);
    return EntryError(err, "list", rel);
  }
  ::rewinddir(d.get());
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) return EntryError(errno, "list", rel);
  std::sort(names.begin(), names.end());
  return names;
}

bool XattrIs(int fd, std::string_view name, std::string_view value) {
  char buf[8];
  ssize_t n = ::fgetxattr(fd, std::string(name).c_str(), buf, sizeof(buf));
  return n >= 0 && std::string_view(buf, static_cast<size_t>(n)) == value;
}

bool IsOpaque(int dir_fd) {
  return XattrIs(dir_fd, oci::kOverlayOpaqueXattr, "y") || XattrIs(dir_fd, kUserOpaqueXattr, "y");
}

// Overlay bookkeeping xattrs: never copied, never compared.
bool IsOverlayXattr(std::string_view name) {
  return name.starts_with(oci::kOverlayXattrPrefix) || name.starts_with(kUserOverlayPrefix);
}

// The xattrs of an open file or directory (overlay ones left out), by name.
Result<std::map<std::string, std::string>> ReadXattrs(int fd, const std::string& rel) {
  std::map<std::string, std::string> out;
  std::string names;
  for (int attempt = 0;; ++attempt) {
    ssize_t n = ::flistxattr(fd, nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return out;
      return EntryError(errno, "list xattrs of", rel);
    }
    if (n == 0) return out;
    names.resize(static_cast<size_t>(n));
    n = ::flistxattr(fd, names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE || attempt > 8) return EntryError(errno, "list xattrs of", rel);
  }
  for (size_t i = 0; i < names.size();) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.empty() || IsOverlayXattr(name)) continue;
    std::string value;
    for (int attempt = 0;; ++attempt) {
      ssize_t n = ::fgetxattr(fd, name.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;
        return EntryError(errno, fmt::format("read xattr {} of", name), rel);
      }
      value.resize(static_cast<size_t>(n));
      n = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        out.emplace(name, std::move(value));
        break;
      }
      if (errno != ERANGE || attempt > 8) {
        return EntryError(errno, fmt::format("read xattr {} of", name), rel);
      }
    }
  }
  return out;
}

struct Opts {
  bool preserve_owners = false;
  bool link_files = false;
};

Status WriteXattrs(int fd, const std::map<std::string, std::string>& xattrs, const Opts& o,
                   const std::string& rel) {
  for (const auto& [k, v] : xattrs) {
    if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) == 0) continue;
    // Unprivileged: trusted.* and security.* cannot be set; skipped as the
    // layer applier does without preserve_owners.
    if (!o.preserve_owners && (errno == EPERM || errno == ENOTSUP)) continue;
    return EntryError(errno, fmt::format("set xattr {} on", k), rel);
  }
  return OkStatus();
}

Status CopyXattrs(int from, int to, const Opts& o, const std::string& rel) {
  STRATA_ASSIGN_OR_RETURN(auto x, ReadXattrs(from, rel));
  return WriteXattrs(to, x, o, rel);
}

// Owner, mode and times of an open file or directory, in that order (chown
// clears set-id bits that chmod then sets; times last).
Status SetMetadata(int fd, const struct stat& st, const Opts& o, const std::string& rel) {
  if (o.preserve_owners && ::fchown(fd, st.st_uid, st.st_gid) != 0) {
    return EntryError(errno, "chown", rel);
  }
  if (::fchmod(fd, st.st_mode & 07777) != 0) return EntryError(errno, "chmod", rel);
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (::futimens(fd, times) != 0) return EntryError(errno, "set times of", rel);
  return OkStatus();
}

Status CopyBytes(int in, int out, const std::string& rel) {
  for (;;) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
    if (n > 0) continue;
    if (n == 0) return OkStatus();
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
    return EntryError(errno, "copy", rel);
  }
  // Plain read/write from wherever copy_file_range stopped.
  std::array<char, 1 << 16> buf;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return EntryError(errno, "read", rel);
    if (n == 0) return OkStatus();
    auto s = WriteAll(out, buf.data(), static_cast<size_t>(n));
    if (!s) return Unexpected(s.error().Wrap(fmt::format("copy {}", Show(rel))));
  }
}

// Whether two open regular files hold the same bytes (sizes already equal).
Result<bool> SameBytes(int a, int b, const std::string& rel) {
  std::array<char, 1 << 16> ba, bb;
  off_t off = 0;
  for (;;) {
    ssize_t na = ::pread(a, ba.data(), ba.size(), off);
    if (na < 0 && errno == EINTR) continue;
    if (na < 0) return EntryError(errno, "read", rel);
    size_t got = 0;
    while (got < static_cast<size_t>(na)) {
      ssize_t nb =
          ::pread(b, bb.data() + got, static_cast<size_t>(na) - got, off + static_cast<off_t>(got));
      if (nb < 0 && errno == EINTR) continue;
      if (nb < 0) return EntryError(errno, "read", rel);
      if (nb == 0) return false;
      got += static_cast<size_t>(nb);
    }
    if (na == 0) {
      // a at its end: b must be too.
      ssize_t nb = ::pread(b, bb.data(), 1, off);
      return nb == 0;
    }
    if (std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) return false;
    off += na;
  }
}

Result<std::string> ReadLink(int dir_fd, const std::string& name, const std::string& rel) {
  std::string buf(4096, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
    if (n < 0) return EntryError(errno, "readlink", rel);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

// What a name in a directory of the merged lowers is, found as overlayfs's
// lookup finds it (see the header).
struct Lookup {
  enum Kind { kAbsent, kNonDir, kDir } kind = kAbsent;
  struct stat st {};            // the top-most entry
  int holder = -1;              // kNonDir: the lower directory fd holding it (borrowed)
  std::vector<UniqueFd> stack;  // kDir: the directories that merge, top-most first
};

Result<Lookup> LookupName(const std::vector<UniqueFd>& stack, const std::string& name,
                          const std::string& rel) {
  Lookup out;
  for (const UniqueFd& dir : stack) {
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return EntryError(errno, "stat lower", rel);
    }
    if (oci::IsOverlayWhiteout(st)) break;  // hides this name in every lower below
    if (!S_ISDIR(st.st_mode)) {
      // A non-directory hides everything below; below a directory it is
      // where the merge stops.
      if (out.kind == Lookup::kAbsent) {
        out.kind = Lookup::kNonDir;
        out.st = st;
        out.holder = dir.get();
      }
      break;
    }
    UniqueFd child = OpenDirAt(dir.get(), name);
    if (!child) return EntryError(errno, "open lower", rel);
    bool opaque = IsOpaque(child.get());
    if (out.kind == Lookup::kAbsent) {
      out.kind = Lookup::kDir;
      out.st = st;
    }
    out.stack.push_back(std::move(child));
    if (opaque) break;
  }
  return out;
}

// The sorted union of the names in `stack`'s directories.
Result<std::vector<std::string>> UnionNames(const std::vector<UniqueFd>& stack,
                                            const std::string& rel) {
  std::vector<std::string> all;
  for (const UniqueFd& dir : stack) {
    STRATA_ASSIGN_OR_RETURN(auto names, ListNames(dir.get(), rel));
    all.insert(all.end(), names.begin(), names.end());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

// ctimes of the regular files a Prepare made, by inode.
using CtimeMap = std::unordered_map<ino_t, struct timespec>;

// Creates `name` in `out_dir` as a copy of the non-directory `name` in
// `src_dir` (stat `st`). Returns the new file's fd for regular files (so a
// caller can record it), else an invalid fd.
Result<UniqueFd> CopyNonDir(int src_dir, const std::string& name, const struct stat& st,
                            int out_dir, const Opts& o, const std::string& rel) {
  const char* n = name.c_str();
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (S_ISREG(st.st_mode)) {
    if (o.link_files) {
      if (::linkat(src_dir, n, out_dir, n, 0) == 0) return UniqueFd();
      if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EACCES) {
        return EntryError(errno, "link", rel);
      }
    }
    UniqueFd in(::openat(src_dir, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) return EntryError(errno, "open", rel);
    UniqueFd out(::openat(out_dir, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return EntryError(errno, "create", rel);
    STRATA_RETURN_IF_ERROR(CopyBytes(in.get(), out.get(), rel));
    STRATA_RETURN_IF_ERROR(CopyXattrs(in.get(), out.get(), o, rel));
    STRATA_RETURN_IF_ERROR(SetMetadata(out.get(), st, o, rel));
    return out;
  }
  if (S_ISLNK(st.st_mode)) {
    STRATA_ASSIGN_OR_RETURN(std::string target, ReadLink(src_dir, name, rel));
    if (::symlinkat(target.c_str(), out_dir, n) != 0) return EntryError(errno, "symlink", rel);
    if (o.preserve_owners && ::fchownat(out_dir, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)) {
      return EntryError(errno, "chown", rel);
    }
    if (::utimensat(out_dir, n, times, AT_SYMLINK_NOFOLLOW) != 0) {
      return EntryError(errno, "set times of", rel);
    }
    return UniqueFd();
  }
  if (S_ISSOCK(st.st_mode))
    return UniqueFd();  // not part of an image (the layer writer skips them)
  if (S_ISFIFO(st.st_mode)) {
    if (::mkfifoat(out_dir, n, 0600) != 0) return EntryError(errno, "mkfifo", rel);
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    if (::mknodat(out_dir, n, (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
      if (errno == EPERM) {
        return MakeError(ErrorCode::kPermissionDenied, "{}: creating device {}:{} needs root",
                         Show(rel), major(st.st_rdev), minor(st.st_rdev));
      }
      return EntryError(errno, "mknod", rel);
    }
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "{}: unsupported file type {:o}", Show(rel),
                     st.st_mode & S_IFMT);
  }
  // A fifo or device just made here (not a link: nothing else writes this
  // directory).
  if (o.preserve_owners && ::fchownat(out_dir, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)) {
    return EntryError(errno, "chown", rel);
  }
  if (::fchmodat(out_dir, n, st.st_mode & 07777, 0) != 0) return EntryError(errno, "chmod", rel);
  if (::utimensat(out_dir, n, times, AT_SYMLINK_NOFOLLOW) != 0) {
    return EntryError(errno, "set times of", rel);
  }
  return UniqueFd();
}

// Merges the directories of `stack` into `out` (an empty directory).
Status Merge(const std::vector<UniqueFd>& stack, int out, const std::string& rel, int depth,
             const Opts& o, CtimeMap* ctimes) {
  if (depth > kMaxDepth) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: deeper than {} levels", Show(rel),
                     kMaxDepth);
  }
  STRATA_ASSIGN_OR_RETURN(auto names, UnionNames(stack, rel));
  for (const std::string& name : names) {
    std::string child_rel = Join(rel, name);
    STRATA_ASSIGN_OR_RETURN(Lookup l, LookupName(stack, name, child_rel));
    if (l.kind == Lookup::kAbsent) continue;
    if (l.kind == Lookup::kNonDir) {
      STRATA_ASSIGN_OR_RETURN(UniqueFd f, CopyNonDir(l.holder, name, l.st, out, o, child_rel));
      if (ctimes != nullptr && f) {
        struct stat now;
        if (::fstat(f.get(), &now) != 0) return EntryError(errno, "stat", child_rel);
        (*ctimes)[now.st_ino] = now.st_ctim;
      }
      continue;
    }
    // Made private first so that read-only modes do not stop the copy below.
    if (::mkdirat(out, name.c_str(), 0700) != 0) return EntryError(errno, "mkdir", child_rel);
    UniqueFd dir = OpenDirAt(out, name);
    if (!dir) return EntryError(errno, "open", child_rel);
    STRATA_RETURN_IF_ERROR(Merge(l.stack, dir.get(), child_rel, depth + 1, o, ctimes));
    STRATA_RETURN_IF_ERROR(CopyXattrs(l.stack.front().get(), dir.get(), o, child_rel));
    STRATA_RETURN_IF_ERROR(SetMetadata(dir.get(), l.st, o, child_rel));
  }
  return OkStatus();
}

// Opens the lowers (top-most first) as the root stack.
Result<std::vector<UniqueFd>> OpenLowers(const std::vector<fs::path>& lowers) {
  std::vector<UniqueFd> stack;
  for (const fs::path& l : lowers) {
    UniqueFd fd(::open(l.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoError(errno, fmt::format("open lower {}", l.string()));
    bool opaque = IsOpaque(fd.get());
    stack.push_back(std::move(fd));
    if (opaque) break;
  }
  return stack;
}

// Makes `parent`/.X-XXXXXX/merged holding the merged lowers.
Result<std::pair<ScopedTempDir, fs::path>> MakeMerged(const std::vector<fs::path>& lowers,
                                                      const fs::path& parent,
                                                      std::string_view prefix, const Opts& o,
                                                      CtimeMap* ctimes) {
  STRATA_ASSIGN_OR_RETURN(auto stack, OpenLowers(lowers));
  STRATA_ASSIGN_OR_RETURN(ScopedTempDir dir, ScopedTempDir::Create(parent, prefix));
  fs::path merged = dir.path() / "merged";
  if (::mkdir(merged.c_str(), 0755) != 0) {
    return ErrnoError(errno, fmt::format("mkdir {}", merged.string()));
  }
  // mkdir's mode is masked by the umask; the root of an image is 0755.
  if (::chmod(merged.c_str(), 0755) != 0) {
    return ErrnoError(errno, fmt::format("chmod {}", merged.string()));
  }
  UniqueFd out(::open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!out) return ErrnoError(errno, fmt::format("open {}", merged.string()));
  STRATA_RETURN_IF_ERROR(Merge(stack, out.get(), "", 0, o, ctimes));
  return std::make_pair(std::move(dir), std::move(merged));
}

// A directory of the upper dir, made only when something below it (or its
// own metadata) changed.
struct UpperDir {
  UpperDir* parent = nullptr;
  std::string name;
  std::string rel;
  int merged_fd = -1;  // the merged directory it stands for
  struct stat st {};   // its metadata in merged
  UniqueFd fd;         // once made

  Status Ensure() {
    if (fd) return OkStatus();
    STRATA_RETURN_IF_ERROR(parent->Ensure());
    if (::mkdirat(parent->fd.get(), name.c_str(), 0700) != 0) {
      return EntryError(errno, "mkdir upper", rel);
    }
    fd = OpenDirAt(parent->fd.get(), name);
    if (!fd) return EntryError(errno, "open upper", rel);
    return OkStatus();
  }
};

struct DiffState {
  Opts opts;
  const CtimeMap* ctimes = nullptr;
  struct timespec trusted_before {};  // ctimes strictly older than this are trusted
  int upper_root = -1;
  // merged inode -> path in upper of its first copy (hard links made by the step)
  std::unordered_map<ino_t, std::string> links;
};

bool Before(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}
bool SameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool SameStat(const struct stat& a, const struct stat& b, const Opts& o) {
  if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) return false;
  if ((a.st_mode & 07777) != (b.st_mode & 07777)) return false;
  if (o.preserve_owners && (a.st_uid != b.st_uid || a.st_gid != b.st_gid)) return false;
  if (!SameTime(a.st_mtim, b.st_mtim)) return false;
  if (S_ISREG(a.st_mode) && a.st_size != b.st_size) return false;
  if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) return false;
  return true;
}

// Whether the merged non-directory `name` (stat `m`) is what the lowers hold
// there (`l`, kNonDir).
Result<bool> SameNonDir(const Lookup& l, int merged_dir, const std::string& name,
                        const struct stat& m, const DiffState& ds, const std::string& rel) {
  if (!SameStat(l.st, m, ds.opts)) return false;
  if (S_ISLNK(m.st_mode)) {
    STRATA_ASSIGN_OR_RETURN(std::string a, ReadLink(l.holder, name, rel));
    STRATA_ASSIGN_OR_RETURN(std::string b, ReadLink(merged_dir, name, rel));
    return a == b;
  }
  if (!S_ISREG(m.st_mode)) return true;
  UniqueFd mf(::openat(merged_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!mf) return EntryError(errno, "open", rel);
  UniqueFd lf(::openat(l.holder, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!lf) return EntryError(errno, "open lower", rel);
  STRATA_ASSIGN_OR_RETURN(auto mx, ReadXattrs(mf.get(), rel));
  STRATA_ASSIGN_OR_RETURN(auto lx, ReadXattrs(lf.get(), rel));
  if (mx != lx) return false;
  if (ds.ctimes != nullptr) {
    auto it = ds.ctimes->find(m.st_ino);
    if (it != ds.ctimes->end() && SameTime(it->second, m.st_ctim) &&
        Before(m.st_ctim, ds.trusted_before)) {
      return true;  // untouched since Prepare copied it
    }
  }
  return SameBytes(mf.get(), lf.get(), rel);
}

// Copies the merged non-directory `name` into `up`.
Status EmitNonDir(int merged_dir, const std::string& name, const struct stat& m, UpperDir& up,
                  DiffState& ds, const std::string& rel) {
  STRATA_RETURN_IF_ERROR(up.Ensure());
  if (S_ISREG(m.st_mode) && m.st_nlink > 1) {
    auto it = ds.links.find(m.st_ino);
    if (it != ds.links.end()) {
      if (::linkat(ds.upper_root, it->second.c_str(), up.fd.get(), name.c_str(), 0) != 0) {
        return EntryError(errno, "link upper", rel);
      }
      return OkStatus();
    }
    ds.links.emplace(m.st_ino, rel);
  }
  Opts copy = ds.opts;
  copy.link_files = false;
  auto made = CopyNonDir(merged_dir, name, m, up.fd.get(), copy, rel);
  if (!made) return Unexpected(made.error());
  return OkStatus();
}

// Makes `up` (ensured) and everything below merged directory `dir` in it.
Status Diff(const std::vector<UniqueFd>& stack, UpperDir& up, const std::string& rel, int depth,
            DiffState& ds);

Status DiffChildDir(int merged_dir, const std::string& name, const struct stat& m, const Lookup& l,
                    UpperDir& up, DiffState& ds, const std::string& rel, int depth) {
  UniqueFd dir = OpenDirAt(merged_dir, name);
  if (!dir) return EntryError(errno, "open", rel);
  UpperDir child;
  child.parent = &up;
  child.name = name;
  child.rel = rel;
  child.merged_fd = dir.get();
  child.st = m;
  if (l.kind == Lookup::kDir) {
    bool same = SameStat(l.st, m, ds.opts);
    if (same) {
      STRATA_ASSIGN_OR_RETURN(auto mx, ReadXattrs(dir.get(), rel));
      STRATA_ASSIGN_OR_RETURN(auto lx, ReadXattrs(l.stack.front().get(), rel));
      same = mx == lx;
    }
    if (!same) STRATA_RETURN_IF_ERROR(child.Ensure());
    STRATA_RETURN_IF_ERROR(Diff(l.stack, child, rel, depth + 1, ds));
  } else {
    // New, or in place of a non-directory (which hides everything below it,
    // so no opaque marker is needed): all of it.
    STRATA_RETURN_IF_ERROR(child.Ensure());
    STRATA_RETURN_IF_ERROR(Diff({}, child, rel, depth + 1, ds));
  }
  if (!child.fd) return OkStatus();
  STRATA_RETURN_IF_ERROR(CopyXattrs(dir.get(), child.fd.get(), ds.opts, rel));
  return SetMetadata(child.fd.get(), m, ds.opts, rel);
}

Status Diff(const std::vector<UniqueFd>& stack, UpperDir& up, const std::string& rel, int depth,
            DiffState& ds) {
  if (depth > kMaxDepth) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: deeper than {} levels", Show(rel),
                     kMaxDepth);
  }
  STRATA_ASSIGN_OR_RETURN(auto merged_names, ListNames(up.merged_fd, rel));
  STRATA_ASSIGN_OR_RETURN(auto lower_names, UnionNames(stack, rel));
  std::vector<std::string> names;
  std::set_union(merged_names.begin(), merged_names.end(), lower_names.begin(), lower_names.end(),
                 std::back_inserter(names));
  for (const std::string& name : names) {
    std::string child_rel = Join(rel, name);
    STRATA_ASSIGN_OR_RETURN(Lookup l, LookupName(stack, name, child_rel));
    struct stat m;
    if (::fstatat(up.merged_fd, name.c_str(), &m, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return EntryError(errno, "stat", child_rel);
      if (l.kind == Lookup::kAbsent) continue;
      // Deleted: an overlay whiteout (allowed unprivileged since Linux 5.8).
      STRATA_RETURN_IF_ERROR(up.Ensure());
      if (::mknodat(up.fd.get(), name.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0) {
        return EntryError(errno, "create whiteout", child_rel);
      }
      continue;
    }
    if (S_ISDIR(m.st_mode)) {
      STRATA_RETURN_IF_ERROR(DiffChildDir(up.merged_fd, name, m, l, up, ds, child_rel, depth));
      continue;
    }
    if (S_ISSOCK(m.st_mode)) continue;
    if (l.kind == Lookup::kNonDir) {
      STRATA_ASSIGN_OR_RETURN(bool same, SameNonDir(l, up.merged_fd, name, m, ds, child_rel));
      if (same) continue;
    }
    STRATA_RETURN_IF_ERROR(EmitNonDir(up.merged_fd, name, m, up, ds, child_rel));
  }
  return OkStatus();
}

class NativeView : public Mounted {
 public:
  NativeView(ScopedTempDir dir, fs::path root) : dir_(std::move(dir)), root_(std::move(root)) {}
  const fs::path& root() const override { return root_; }

 private:
  ScopedTempDir dir_;
  fs::path root_;
};

class NativeActive : public ActiveSnapshot {
 public:
  NativeActive(ScopedTempDir dir, fs::path root, std::vector<fs::path> lowers, Opts opts,
               CtimeMap ctimes, struct timespec trusted_before)
      : dir_(std::move(dir)),
        root_(std::move(root)),
        lowers_(std::move(lowers)),
        opts_(opts),
        ctimes_(std::move(ctimes)),
        trusted_before_(trusted_before) {}
  const fs::path& root() const override { return root_; }

  Result<fs::path> Finish() override {
    if (finished_) return MakeError(ErrorCode::kFailedPrecondition, "snapshot already finished");
    finished_ = true;
    fs::path upper = dir_.path() / "upper";
    auto s = Compute(upper);
    if (!s) return Unexpected(s.error().Wrap("diff " + root_.string()));
    // The merged copy is no longer needed; its space is freed now.
    (void)RemoveAll(root_);
    return upper;
  }

 private:
  Status Compute(const fs::path& upper) {
    STRATA_ASSIGN_OR_RETURN(auto stack, OpenLowers(lowers_));
    if (::mkdir(upper.c_str(), 0755) != 0) {
      return ErrnoError(errno, fmt::format("mkdir {}", upper.string()));
    }
    if (::chmod(upper.c_str(), 0755) != 0) {
      return ErrnoError(errno, fmt::format("chmod {}", upper.string()));
    }
    UniqueFd merged(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!merged) return ErrnoError(errno, fmt::format("open {}", root_.string()));
    UpperDir top;
    top.merged_fd = merged.get();
    top.fd.Reset(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!top.fd) return ErrnoError(errno, fmt::format("open {}", upper.string()));
    DiffState ds;
    ds.opts = opts_;
    ds.ctimes = &ctimes_;
    ds.trusted_before = trusted_before_;
    ds.upper_root = top.fd.get();
    return Diff(stack, top, "", 0, ds);
  }

  ScopedTempDir dir_;
  fs::path root_;
  std::vector<fs::path> lowers_;
  Opts opts_;
  CtimeMap ctimes_;
  struct timespec trusted_before_;
  bool finished_ = false;
};

}  // namespace

NativeSnapshotterOptions::NativeSnapshotterOptions() : preserve_owners(::geteuid() == 0) {}

Result<std::unique_ptr<Mounted>> NativeSnapshotter::View(const std::vector<fs::path>& lowers,
                                                         const fs::path& scratch_parent) {
  Opts o;
  o.preserve_owners = opts_.preserve_owners;
  o.link_files = opts_.link_views;
  STRATA_ASSIGN_OR_RETURN(auto made, MakeMerged(lowers, scratch_parent, ".view-", o, nullptr));
  return std::make_unique<NativeView>(std::move(made.first), std::move(made.second));
}

Result<std::unique_ptr<ActiveSnapshot>> NativeSnapshotter::Prepare(
    const std::vector<fs::path>& lowers, const fs::path& scratch_parent) {
  Opts o;
  o.preserve_owners = opts_.preserve_owners;
  CtimeMap ctimes;
  STRATA_ASSIGN_OR_RETURN(auto made, MakeMerged(lowers, scratch_parent, ".run-", o, &ctimes));
  // A change after this point gets a ctime no older than the coarse clock
  // now, so a file whose ctime is still what Prepare saw, and older than
  // this, was not touched (see the header).
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return std::make_unique<NativeActive>(std::move(made.first), std::move(made.second), lowers, o,
                                        std::move(ctimes), now);
}

}  // namespace strata::builder
