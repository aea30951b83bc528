#include "tools/strata/tree_diff.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "oci/digest.h"
#include "oci/util/unique_fd.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

class Scanner {
 public:
  Scanner(size_t max, std::map<std::string, TreeEntry>& out) : max_(max), out_(out) {}

  Status Walk(int dir_fd, const std::string& prefix, int depth) {
    if (depth > 256) return MakeError(ErrorCode::kInvalidArgument, "{}: too deep", prefix);
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return ErrnoError(errno, "dup");
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      ::close(dup);
      return ErrnoError(errno, fmt::format("list {}", prefix));
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.emplace_back(e->d_name);
      }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (out_.size() >= max_) {
        return MakeError(ErrorCode::kInvalidArgument, "more than {} entries", max_);
      }
      const std::string rel = prefix.empty() ? name : prefix + "/" + name;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError(errno, fmt::format("stat {}", rel));
      }
      TreeEntry e;
      e.mode = st.st_mode & 07777;
      e.uid = st.st_uid;
      e.gid = st.st_gid;
      e.mtime_sec = st.st_mtim.tv_sec;
      e.mtime_nsec = st.st_mtim.tv_nsec;
      UniqueFd fd;
      if (S_ISLNK(st.st_mode)) {
        e.type = 'l';
        std::string buf(4096, '\0');
        ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
        if (n < 0) return ErrnoError(errno, fmt::format("readlink {}", rel));
        e.link = buf.substr(0, static_cast<size_t>(n));
      } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        e.type = S_ISREG(st.st_mode) ? 'f' : 'd';
        int f = ::openat(dir_fd, name.c_str(),
                         O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                             (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
        if (f < 0) return ErrnoError(errno, fmt::format("open {}", rel));
        fd = UniqueFd(f);
        STRATA_RETURN_IF_ERROR(Xattrs(fd.get(), rel, e.xattrs));
        if (e.type == 'f') {
          oci::Digester h;
          std::vector<char> buf(1 << 16);
          for (;;) {
            ssize_t n = ::read(fd.get(), buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return ErrnoError(errno, fmt::format("read {}", rel));
            if (n == 0) break;
            h.Update(buf.data(), static_cast<size_t>(n));
          }
          e.content = h.Finish().ToString();
        }
      } else {
        e.type = S_ISCHR(st.st_mode)    ? 'c'
                 : S_ISBLK(st.st_mode)  ? 'b'
                 : S_ISFIFO(st.st_mode) ? 'p'
                                        : 's';
        e.rdev = st.st_rdev;
      }
      out_[rel] = e;
      if (e.type == 'd') STRATA_RETURN_IF_ERROR(Walk(fd.get(), rel, depth + 1));
    }
    return OkStatus();
  }

 private:
  static Status Xattrs(int fd, const std::string& rel, std::map<std::string, std::string>& out) {
    std::string names(65536, '\0');
    ssize_t n = ::flistxattr(fd, names.data(), names.size());
    if (n < 0) {
      if (errno == ENOTSUP) return OkStatus();
      return ErrnoError(errno, fmt::format("list xattrs of {}", rel));
    }
    for (size_t i = 0; i < static_cast<size_t>(n);) {
      std::string name(names.c_str() + i);
      i += name.size() + 1;
      std::string value(65536, '\0');
      ssize_t v = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
      if (v < 0) continue;  // gone or not readable: compared as absent
      out[name] = value.substr(0, static_cast<size_t>(v));
    }
    return OkStatus();
  }

  size_t max_;
  std::map<std::string, TreeEntry>& out_;
};

}  // namespace

Result<std::map<std::string, TreeEntry>> ScanTree(const fs::path& dir, size_t max_entries) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", dir.string()));
  UniqueFd owner(fd);
  std::map<std::string, TreeEntry> out;
  Scanner s(max_entries, out);
  STRATA_RETURN_IF_ERROR(s.Walk(fd, "", 0));
  return out;
}

std::optional<std::string> FirstDifference(const std::map<std::string, TreeEntry>& a,
                                           const std::map<std::string, TreeEntry>& b) {
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      return fmt::format("/{}: only in the first build", ia->first);
    }
    if (ia == a.end() || ib->first < ia->first) {
      return fmt::format("/{}: only in the second build", ib->first);
    }
    const TreeEntry& x = ia->second;
    const TreeEntry& y = ib->second;
    const std::string p = "/" + ia->first;
    if (x.type != y.type) return fmt::format("{}: type {} vs {}", p, x.type, y.type);
    if (x.content != y.content) return fmt::format("{}: content differs", p);
    if (x.link != y.link) return fmt::format("{}: link target {} vs {}", p, x.link, y.link);
    if (x.rdev != y.rdev) return fmt::format("{}: device differs", p);
    if (x.mode != y.mode) return fmt::format("{}: mode {:04o} vs {:04o}", p, x.mode, y.mode);
    if (x.uid != y.uid || x.gid != y.gid) {
      return fmt::format("{}: owner {}:{} vs {}:{}", p, x.uid, x.gid, y.uid, y.gid);
    }
    if (x.mtime_sec != y.mtime_sec || x.mtime_nsec != y.mtime_nsec) {
      return fmt::format("{}: mtime {}.{:09d} vs {}.{:09d}", p, x.mtime_sec, x.mtime_nsec,
                         y.mtime_sec, y.mtime_nsec);
    }
    if (x.xattrs != y.xattrs) {
      for (const auto& [k, v] : x.xattrs) {
        auto it = y.xattrs.find(k);
        if (it == y.xattrs.end() || it->second != v)
          return fmt::format("{}: xattr {} differs", p, k);
      }
      for (const auto& [k, v] : y.xattrs) {
        if (!x.xattrs.count(k)) return fmt::format("{}: xattr {} differs", p, k);
      }
    }
    ++ia;
    ++ib;
  }
  return std::nullopt;
}

}  // namespace strata::cli
