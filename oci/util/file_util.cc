#include "oci/util/file_util.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <random>
#include <system_error>

namespace strata {
namespace fs = std::filesystem;

std::string RandomSuffix(size_t length) {
  std::random_device rd;
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(length, 'x');
  for (auto& c : s) c = kChars[rd() % (sizeof(kChars) - 1)];
  return s;
}

Status WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return OkStatus();
}

Status FsyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", dir.string()));
  UniqueFd owner(fd);
  if (::fsync(fd) != 0) return ErrnoError(errno, fmt::format("fsync {}", dir.string()));
  return OkStatus();
}

Status RenameDurable(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(errno, fmt::format("rename {} -> {}", from.string(), to.string()));
  }
  fs::path dir = to.parent_path();
  return FsyncDir(dir.empty() ? fs::path(".") : dir);
}

Result<AtomicFile> AtomicFile::Create(const fs::path& path, mode_t mode) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  fs::path tmp = dir / fmt::format(".{}.tmp-{}", path.filename().string(), RandomSuffix());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError(errno, fmt::format("create {}", tmp.string()));
  return AtomicFile(path, std::move(tmp), UniqueFd(fd), mode);
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept
    : path_(std::move(o.path_)),
      tmp_(std::move(o.tmp_)),
      fd_(std::move(o.fd_)),
      mode_(o.mode_),
      done_(o.done_) {
  o.done_ = true;
}

AtomicFile::~AtomicFile() {
  if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

Status AtomicFile::Write(const void* data, size_t size) {
  if (auto s = WriteAll(fd_.get(), data, size); !s)
    return Unexpected(s.error().Wrap(tmp_.string()));
  return OkStatus();
}

Status AtomicFile::Commit() {
  if (done_)
    return MakeError(ErrorCode::kFailedPrecondition, "{}: already committed", path_.string());
  done_ = true;
  auto fail = [&](Error e) -> Status {
    ::unlink(tmp_.c_str());
    return Unexpected(std::move(e));
  };
  // fchmod: the mode is exact, whatever the umask.
  if (::fchmod(fd_.get(), mode_) != 0 || ::fsync(fd_.get()) != 0) {
    return fail(ErrnoError(errno, fmt::format("fsync {}", tmp_.string())).error());
  }
  fd_.Reset();
  if (auto s = RenameDurable(tmp_, path_); !s) return fail(s.error());
  return OkStatus();
}

Status WriteFileAtomic(const fs::path& path, std::string_view data, mode_t mode) {
  STRATA_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, mode));
  STRATA_RETURN_IF_ERROR(file.Write(data.data(), data.size()));
  return file.Commit();
}

Status WriteScratchFile(const fs::path& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, fmt::format("create {}", path.string()));
  UniqueFd owner(fd);
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("write {}", path.string()));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) return ErrnoError(errno, fmt::format("chmod {}", path.string()));
  return OkStatus();
}

Result<std::string> ReadFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path.string()));
  UniqueFd owner(fd);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {}", path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status MakeDirs(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return OkStatus();
  fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) STRATA_RETURN_IF_ERROR(MakeDirs(parent, mode));
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoError(errno, fmt::format("mkdir {}", dir.string()));
  }
  return OkStatus();
}

namespace {

// rm -rf that stays on one file system: a directory on another device is a
// mount point (e.g. an overlay a killed build left behind); it is detached,
// never descended into, so nothing below it is deleted through the mount.
Status RemoveAllOnDevice(const fs::path& path, std::optional<dev_t> parent_dev) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoError(errno, fmt::format("stat {}", path.string()));
  }
  if (S_ISDIR(st.st_mode)) {
    if (parent_dev && st.st_dev != *parent_dev) {
      if (::umount2(path.c_str(), MNT_DETACH) != 0) {
        return ErrnoError(errno, fmt::format("{} is a mount point; unmount", path.string()));
      }
      if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoError(errno, fmt::format("rmdir {}", path.string()));
      }
      return OkStatus();
    }
    if ((st.st_mode & 0700) != 0700) ::chmod(path.c_str(), st.st_mode | 0700);
    std::error_code ec;
    std::vector<fs::path> children;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      children.push_back(it->path());
    }
    if (ec) return MakeError(ErrorCode::kInternal, "list {}: {}", path.string(), ec.message());
    for (const auto& c : children) STRATA_RETURN_IF_ERROR(RemoveAllOnDevice(c, st.st_dev));
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, fmt::format("rmdir {}", path.string()));
    }
    return OkStatus();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("unlink {}", path.string()));
  }
  return OkStatus();
}

}  // namespace

int64_t TreeBytes(const fs::path& p) {
  int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec))
      total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

Status RemoveAll(const fs::path& path) {
  struct stat parent;
  fs::path p = path.parent_path();
  if (p.empty()) p = ".";
  std::optional<dev_t> dev;
  if (::lstat(p.c_str(), &parent) == 0) dev = parent.st_dev;
  return RemoveAllOnDevice(path, dev);
}

Result<UniqueFd> OpenFile(const fs::path& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path.string()));
  return UniqueFd(fd);
}

Result<ScopedTempDir> ScopedTempDir::Create(const fs::path& parent, std::string_view prefix) {
  fs::path base = parent;
  if (base.empty()) {
    const char* t = std::getenv("TMPDIR");
    base = t && *t ? t : "/tmp";
  }
  std::string templ = (base / fmt::format("{}XXXXXX", prefix)).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return ErrnoError(errno, fmt::format("mkdtemp in {}", base.string()));
  }
  return ScopedTempDir(fs::path(templ));
}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) (void)RemoveAll(path_);
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

ScopedTempDir::~ScopedTempDir() {
  if (!path_.empty()) (void)RemoveAll(path_);
}

fs::path ScopedTempDir::Release() {
  fs::path p = std::move(path_);
  path_.clear();
  return p;
}

}  // namespace strata
