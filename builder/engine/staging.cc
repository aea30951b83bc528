#include "builder/engine/staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "builder/engine/image_path.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "oci/util/userns.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

// The ids a chown to (uid, gid) really uses without root, or an error.
Result<std::pair<uid_t, gid_t>> EffectiveOwner(uid_t uid, gid_t gid, std::string_view name) {
  if (::geteuid() == 0) return std::make_pair(uid, gid);
  uid_t me = ::geteuid();
  gid_t my_group = ::getegid();
  if ((uid == 0 || uid == me) && (gid == 0 || gid == my_group)) {
    return std::make_pair(me, my_group);
  }
  return MakeError(ErrorCode::kPermissionDenied,
                   "chown {} to {}:{}: only root's ids can be used without root privileges "
                   "(no id mapping: add ranges to /etc/subuid and /etc/subgid)",
                   name, uid, gid);
}

}  // namespace

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}
bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool IsEmptyDir(const fs::path& p) {
  std::error_code ec;
  bool empty = fs::is_empty(p, ec);
  return !ec && empty;
}
fs::path Absolute(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return ec ? p : a;
}

Status ChownFd(int fd, uid_t uid, gid_t gid, std::string_view name) {
  STRATA_ASSIGN_OR_RETURN(auto ids, EffectiveOwner(uid, gid, name));
  if (::fchown(fd, ids.first, ids.second) != 0) return ChownError(errno, name, uid, gid);
  return OkStatus();
}

Status ChownAt(int dir_fd, const char* base, uid_t uid, gid_t gid, std::string_view name) {
  STRATA_ASSIGN_OR_RETURN(auto ids, EffectiveOwner(uid, gid, name));
  if (::fchownat(dir_fd, base, ids.first, ids.second, AT_SYMLINK_NOFOLLOW) != 0) {
    return ChownError(errno, name, uid, gid);
  }
  return OkStatus();
}

// Copies `size` bytes from `in` to `out` (copy_file_range, else read/write).
Status CopyContents(int in, int out, off_t size, const fs::path& src) {
  off_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Fall back to read/write (cross-device on old kernels, special fs).
      char buf[1 << 16];
      ssize_t r = ::read(in, buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError(errno, fmt::format("read {}", src.string()));
      if (r == 0) break;
      STRATA_RETURN_IF_ERROR(WriteAll(out, buf, static_cast<size_t>(r)));
      left -= r;
      continue;
    }
    left -= n;
  }
  return OkStatus();
}

// The names in `dir`, sorted (empty when it cannot be read).
std::vector<std::string> SortedNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void FinishDirTimes(const RootDir& root, const std::vector<DirTime>& dir_times) {
  for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it) {
    int fd = OpenInRoot(root.fd(), it->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) continue;  // replaced by a later entry: its own times apply
    UniqueFd owner(fd);
    struct timespec times[2] = {it->mtime, it->mtime};
    ::futimens(fd, times);
  }
}

Status MakeDirsLikeImage(const RootDir& root, const fs::path& image_root, std::string_view dir,
                         uid_t uid, gid_t gid, std::vector<DirTime>& dir_times) {
  std::string prefix;
  for (const auto& part : fs::path(CleanAbs(dir)).relative_path()) {
    prefix.push_back('/');
    prefix.append(part.native());
    struct stat ist;
    bool in_image = !image_root.empty() && ::lstat(Under(image_root, prefix).c_str(), &ist) == 0 &&
                    S_ISDIR(ist.st_mode);
    STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(prefix, /*create_parents=*/false));
    struct stat cur;
    if (::fstatat(at.dir.get(), at.name.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (::mkdirat(at.dir.get(), at.name.c_str(), 0700) != 0) {
      return ErrnoError(errno, fmt::format("mkdir {}", prefix));
    }
    int fd =
        ::openat(at.dir.get(), at.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, fmt::format("open {}", prefix));
    UniqueFd d(fd);
    uid_t u = in_image ? ist.st_uid : uid;
    gid_t g = in_image ? ist.st_gid : gid;
    STRATA_RETURN_IF_ERROR(ChownFd(fd, u, g, prefix));
    if (::fchmod(fd, in_image ? (ist.st_mode & 07777) : 0755) != 0) {
      return ErrnoError(errno, "chmod " + prefix);
    }
    if (in_image) dir_times.push_back({prefix, ist.st_mtim});
  }
  return OkStatus();
}

Status Materialize(const RootDir& root, const CopyEntry& e, std::optional<uint32_t> uid,
                   std::optional<uint32_t> gid, std::optional<mode_t> mode_override,
                   std::vector<DirTime>& dir_times) {
  uid_t u = uid ? *uid : 0;
  gid_t g = gid ? *gid : 0;
  if (e.dest == "/" && !e.is_heredoc && S_ISDIR(e.st.st_mode)) {
    // A directory copied onto "/": its metadata goes to the root itself.
    STRATA_RETURN_IF_ERROR(ChownFd(root.fd(), u, g, "/"));
    if (::fchmod(root.fd(), mode_override ? *mode_override : (e.st.st_mode & 07777)) != 0) {
      return ErrnoError(errno, "chmod /");
    }
    dir_times.push_back({e.dest, e.st.st_mtim});
    return OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(auto at, root.Parent(e.dest, /*create_parents=*/true));
  const int dfd = at.dir.get();
  const char* name = at.name.c_str();
  struct stat cur;
  bool exists = ::fstatat(dfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0;
  bool exists_as_dir = exists && S_ISDIR(cur.st_mode);
  // Whatever an earlier entry left at this name goes, unless both are dirs.
  auto clear = [&](bool keep_dir) -> Status {
    if (!exists || (keep_dir && exists_as_dir)) return OkStatus();
    return RemoveTreeAt(dfd, at.name);
  };
  auto create_file = [&]() -> Result<UniqueFd> {
    int fd = ::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError(errno, fmt::format("create {}", e.dest));
    return UniqueFd(fd);
  };
  if (e.is_heredoc) {
    STRATA_RETURN_IF_ERROR(clear(false));
    STRATA_ASSIGN_OR_RETURN(auto out, create_file());
    STRATA_RETURN_IF_ERROR(WriteAll(out.get(), e.content.data(), e.content.size()));
    STRATA_RETURN_IF_ERROR(ChownFd(out.get(), u, g, e.dest));
    if (::fchmod(out.get(), mode_override ? *mode_override : 0644) != 0) {
      return ErrnoError(errno, "chmod " + e.dest);
    }
    return OkStatus();
  }
  const struct stat& st = e.st;
  mode_t mode = mode_override ? *mode_override : (st.st_mode & 07777);
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(e.src.c_str(), buf, sizeof(buf) - 1);
    if (n < 0) return ErrnoError(errno, fmt::format("readlink {}", e.src.string()));
    STRATA_RETURN_IF_ERROR(clear(false));
    if (::symlinkat(std::string(buf, static_cast<size_t>(n)).c_str(), dfd, name) != 0) {
      return ErrnoError(errno, fmt::format("symlink {}", e.dest));
    }
    STRATA_RETURN_IF_ERROR(ChownAt(dfd, name, u, g, e.dest));
    ::utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW);
    return OkStatus();
  }
  UniqueFd out;
  if (S_ISDIR(st.st_mode)) {
    STRATA_RETURN_IF_ERROR(clear(true));
    if (!exists_as_dir && ::mkdirat(dfd, name, 0700) != 0) {
      return ErrnoError(errno, fmt::format("mkdir {}", e.dest));
    }
    int fd = ::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, fmt::format("open {}", e.dest));
    out.Reset(fd);
    dir_times.push_back({e.dest, st.st_mtim});
  } else if (S_ISREG(st.st_mode)) {
    // The source is never followed either: a context file swapped for a
    // link after it was listed is refused, not read through.
    STRATA_ASSIGN_OR_RETURN(auto in, OpenFile(e.src, O_RDONLY | O_NOFOLLOW));
    STRATA_RETURN_IF_ERROR(clear(false));
    STRATA_ASSIGN_OR_RETURN(out, create_file());
    STRATA_RETURN_IF_ERROR(CopyContents(in.get(), out.get(), st.st_size, e.src));
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "cannot copy {}: not a file, directory or symlink", e.src.string());
  }
  // chown first: it clears set-id bits that chmod then sets.
  STRATA_RETURN_IF_ERROR(ChownFd(out.get(), u, g, e.dest));
  if (::fchmod(out.get(), mode) != 0) return ErrnoError(errno, "chmod " + e.dest);
  if (!S_ISDIR(st.st_mode)) ::futimens(out.get(), times);
  return OkStatus();
}

}  // namespace strata::builder
