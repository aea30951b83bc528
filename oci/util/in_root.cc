#include "oci/util/in_root.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

namespace strata {
namespace fs = std::filesystem;
namespace {

// Components of `rel` without "" and "." (".." is kept: the kernel clamps it
// at the root).
std::vector<std::string> Components(std::string_view rel) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    std::string_view c = rel.substr(i, j - i);
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

// A tree deeper than this is refused rather than recursed into.
constexpr int kMaxDepth = 4096;

Status RemoveTreeAtDepth(int dir_fd, const std::string& name, dev_t dev, int depth) {
  if (depth > kMaxDepth) {
    return MakeError(ErrorCode::kInvalidArgument, "remove {}: tree deeper than {} levels", name,
                     kMaxDepth);
  }
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoError(errno, "stat " + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "unlink " + name);
    }
    return OkStatus();
  }
  if (st.st_dev != dev) {
    return MakeError(ErrorCode::kFailedPrecondition, "remove {}: a mount point; not crossing it",
                     name);
  }
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + name);
  if ((st.st_mode & 0700) != 0700) ::fchmod(fd, st.st_mode | 0700);
  // fdopendir takes the fd; the DIR closes it.
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), &::closedir);
  if (!d) {
    int err = errno;
    ::close(fd);
    return ErrnoError(err, "open " + name);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) return ErrnoError(errno, "readdir " + name);
  for (const auto& n : names) {
    STRATA_RETURN_IF_ERROR(RemoveTreeAtDepth(::dirfd(d.get()), n, dev, depth + 1));
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "rmdir " + name);
  }
  return OkStatus();
}

}  // namespace

int OpenAt2(int dir_fd, std::string_view rel, int flags, uint64_t resolve, mode_t mode) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  if (flags & O_CREAT) how.mode = mode;
  how.resolve = resolve;
  std::string p = rel.empty() ? std::string(".") : std::string(rel);
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir_fd, p.c_str(), &how, sizeof(how));
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 16) continue;
    return static_cast<int>(fd);
  }
}

int OpenInRoot(int root_fd, std::string_view rel, int flags, uint64_t extra_resolve, mode_t mode) {
  return OpenAt2(root_fd, rel, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
                 mode);
}

Status RemoveTreeAt(int dir_fd, const std::string& name) {
  struct stat parent;
  if (::fstat(dir_fd, &parent) != 0) return ErrnoError(errno, "stat parent of " + name);
  return RemoveTreeAtDepth(dir_fd, name, parent.st_dev, 0);
}

Result<RootDir> RootDir::Open(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", dir.string()));
  return RootDir(UniqueFd(fd), dir);
}

Result<UniqueFd> RootDir::OpenAt(std::string_view rel, int flags, mode_t mode) const {
  int fd = OpenInRoot(fd_.get(), rel, flags, 0, mode);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {} in {}", rel, path_.string()));
  return UniqueFd(fd);
}

Result<UniqueFd> RootDir::MakeDirs(std::string_view rel, mode_t mode) const {
  return MakeDirsHops(rel, mode, 0);
}

Result<UniqueFd> RootDir::MakeDirsHops(std::string_view rel, mode_t mode, int hops) const {
  std::vector<std::string> parts = Components(rel);
  int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(errno, "dup");
  UniqueFd cur(fd);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string prefix = Join(parts, i + 1);
    int next = OpenInRoot(fd_.get(), prefix, O_RDONLY | O_DIRECTORY);
    if (next >= 0) {
      cur.Reset(next);
      continue;
    }
    if (errno == ENOTDIR || errno == ELOOP) {
      return MakeError(ErrorCode::kFailedPrecondition, "/{} exists and is not a directory", prefix);
    }
    if (errno != ENOENT) return ErrnoError(errno, fmt::format("open /{}", prefix));
    if (parts[i] == "..") {
      return MakeError(ErrorCode::kInvalidArgument, "mkdir /{}: '..' below a missing directory",
                       prefix);
    }
    // `cur` is the in-root resolution of the parent: create the name there,
    // never following it.
    if (::mkdirat(cur.get(), parts[i].c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError(errno, fmt::format("mkdir /{}", prefix));
    }
    next = ::openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat lst;
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR) &&
        ::fstatat(cur.get(), parts[i].c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(lst.st_mode)) {
      // A link whose in-root target is missing: create the target, inside
      // the root, as containerd's RootPath + MkdirAll do, then go on there.
      char buf[4096];
      ssize_t n = ::readlinkat(cur.get(), parts[i].c_str(), buf, sizeof(buf) - 1);
      if (n < 0) return ErrnoError(errno, fmt::format("readlink /{}", prefix));
      if (++hops > 40) {
        return MakeError(ErrorCode::kInvalidArgument, "mkdir {}: too many levels of symlinks", rel);
      }
      std::string target(buf, static_cast<size_t>(n));
      std::string redirected = target.starts_with("/") ? target : Join(parts, i) + "/" + target;
      for (size_t j = i + 1; j < parts.size(); ++j) redirected += "/" + parts[j];
      return MakeDirsHops(redirected, mode, hops);
    }
    if (next < 0) {
      if (errno == ENOTDIR) {
        return MakeError(ErrorCode::kFailedPrecondition, "/{} exists and is not a directory",
                         prefix);
      }
      return ErrnoError(errno, fmt::format("open /{}", prefix));
    }
    cur.Reset(next);
  }
  return cur;
}

Result<ParentAndName> RootDir::Parent(std::string_view rel, bool create_parents,
                                      mode_t mode) const {
  std::vector<std::string> parts = Components(rel);
  if (parts.empty() || parts.back() == "..") {
    return MakeError(ErrorCode::kInvalidArgument, "{}: not a name below the root", rel);
  }
  std::string name = parts.back();
  std::string parent = Join(parts, parts.size() - 1);
  ParentAndName out;
  out.name = std::move(name);
  if (create_parents) {
    STRATA_ASSIGN_OR_RETURN(out.dir, MakeDirs(parent, mode));
  } else {
    int fd = OpenInRoot(fd_.get(), parent, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
      if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "/{} does not exist", parent);
      return ErrnoError(errno, fmt::format("open /{}", parent));
    }
    out.dir.Reset(fd);
  }
  return out;
}

}  // namespace strata
