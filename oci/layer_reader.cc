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
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "oci/util/file_util.h"
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
      return MakeError(ErrorCode::kInvalidArgument,
                       "uncompressed layer exceeds the limit of {} bytes", limit_);
    }
    hasher_.Update(buf, n);
    return n;
  }
  uint64_t bytes() const { return hasher_.bytes(); }
  Digest Finish() { return hasher_.Finish(); }

 private:
  ByteSource* in_;
  uint64_t limit_;
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

// openat2 confined to the root: symlinks resolve as if `root_fd` were "/",
// ".." cannot climb above it, /proc magic links are refused.
int OpenInRoot(int root_fd, const std::string& rel, uint64_t flags) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* p = rel.empty() ? "." : rel.c_str();
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, p, &how, sizeof(how));
    // EAGAIN: a concurrent rename raced the resolution; it is safe to retry.
    if (fd < 0 && errno == EAGAIN && attempt < 16) continue;
    return static_cast<int>(fd);
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

// rm -rf of dir_fd/name that never follows a symlink. OK if absent.
Status RemoveTreeAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoError(errno, "stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "open " + name);
    UniqueFd child(fd);
    if ((st.st_mode & 0700) != 0700) ::fchmod(child.get(), st.st_mode | 0700);
    STRATA_ASSIGN_OR_RETURN(auto names, ListDirFd(child.get()));
    for (const auto& n : names) STRATA_RETURN_IF_ERROR(RemoveTreeAt(child.get(), n));
    if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "rmdir " + name);
    }
    return OkStatus();
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "unlink " + name);
  }
  return OkStatus();
}

std::string ProcPath(int dir_fd, const std::string& base) {
  return fmt::format("/proc/self/fd/{}/{}", dir_fd, base);
}

class Applier {
 public:
  Applier(int root_fd, const ApplyOptions& opts) : root_fd_(root_fd), opts_(opts) {}

  Status Apply(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return MakeError(ErrorCode::kInvalidArgument, "entry without a name");
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
    return ApplyEntry(a, e, rel, parent, base);
  }

  // Sets directory modes and times now that their contents are in place.
  Status Finish() {
    for (const auto& d : dirs_) {
      int fd = OpenInRoot(root_fd_, d.rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (fd < 0) continue;  // replaced by a later entry of another type
      UniqueFd owner(fd);
      if (::fchmod(fd, d.mode) != 0) return ErrnoError(errno, "chmod " + d.rel);
      struct timespec ts[2] = {{d.mtime, 0}, {d.mtime, 0}};
      if (::futimens(fd, ts) != 0) return ErrnoError(errno, "set times " + d.rel);
    }
    return OkStatus();
  }

 private:
  struct DirMeta {
    std::string rel;
    mode_t mode;
    time_t mtime;
  };

  // Opens (creating if asked, mode 0755) a directory inside the root.
  Result<UniqueFd> OpenDir(const std::string& rel, bool create) {
    int fd = OpenInRoot(root_fd_, rel, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != ENOENT || !create) {
      return ErrnoError(errno, fmt::format("open directory \"{}\"", rel));
    }
    UniqueFd cur(OpenInRoot(root_fd_, "", O_RDONLY | O_DIRECTORY));
    if (!cur) return ErrnoError(errno, "open root");
    std::string prefix;
    size_t pos = 0;
    while (pos < rel.size()) {
      size_t slash = rel.find('/', pos);
      if (slash == std::string::npos) slash = rel.size();
      std::string comp = rel.substr(pos, slash - pos);
      pos = slash + 1;
      prefix = Join(prefix, comp);
      int next = OpenInRoot(root_fd_, prefix, O_RDONLY | O_DIRECTORY);
      if (next < 0 && errno == ENOENT) {
        if (::mkdirat(cur.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError(errno, fmt::format("mkdir \"{}\"", prefix));
        }
        written_.emplace(prefix, true);
        next = OpenInRoot(root_fd_, prefix, O_RDONLY | O_DIRECTORY);
      }
      if (next < 0) return ErrnoError(errno, fmt::format("open directory \"{}\"", prefix));
      cur.Reset(next);
    }
    return cur;
  }

  Status ApplyWhiteout(const std::string& parent, const std::string& name) {
    const std::string victim = Join(parent, name);
    // A whiteout hides lower layers only; what this layer wrote stays.
    if (written_.contains(victim)) return OkStatus();
    if (opts_.form == ApplyForm::kOverlay) {
      STRATA_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(parent, /*create=*/true));
      STRATA_RETURN_IF_ERROR(RemoveTreeAt(dir.get(), name));
      if (::mknodat(dir.get(), name.c_str(), S_IFCHR | 0, ::makedev(0, 0)) != 0) {
        return ErrnoError(errno, "create overlay whiteout");
      }
      return OkStatus();
    }
    int fd = OpenInRoot(root_fd_, parent, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return OkStatus();  // nothing to hide
      return ErrnoError(errno, fmt::format("open directory \"{}\"", parent));
    }
    UniqueFd dir(fd);
    return RemoveTreeAt(dir.get(), name);
  }

  Status ApplyOpaque(const std::string& parent) {
    if (opts_.form == ApplyForm::kOverlay) {
      STRATA_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(parent, /*create=*/true));
      if (::fsetxattr(dir.get(), std::string(kOverlayOpaqueXattr).c_str(), "y", 1, 0) != 0) {
        return ErrnoError(errno, "set trusted.overlay.opaque");
      }
      return OkStatus();
    }
    int fd = OpenInRoot(root_fd_, parent, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return OkStatus();
      return ErrnoError(errno, fmt::format("open directory \"{}\"", parent));
    }
    UniqueFd dir(fd);
    return RemoveLower(dir.get(), parent);
  }

  // Removes what `rel` held before this layer, keeping this layer's entries.
  Status RemoveLower(int dir_fd, const std::string& rel) {
    STRATA_ASSIGN_OR_RETURN(auto names, ListDirFd(dir_fd));
    for (const auto& name : names) {
      auto it = written_.find(Join(rel, name));
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

  Status ApplyEntry(archive* a, archive_entry* e, const std::string& rel, const std::string& parent,
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
    std::string link_target;
    if (link_raw != nullptr) {
      auto cleaned = CleanPath(link_raw);
      if (!cleaned) return Unexpected(cleaned.error().Wrap("hardlink target"));
      link_target = *cleaned;
      auto it = written_.find(link_target);
      if (link_target.empty() || it == written_.end() || it->second) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "hardlink to \"{}\", which is not a file written earlier in this layer",
                         link_raw);
      }
    }

    STRATA_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(parent, /*create=*/true));
    const int dfd = dir.get();
    const char* name = base.c_str();
    struct stat existing;
    bool exists = ::fstatat(dfd, name, &existing, AT_SYMLINK_NOFOLLOW) == 0;
    bool keep_dir = exists && link_raw == nullptr && type == AE_IFDIR && S_ISDIR(existing.st_mode);
    if (exists && !keep_dir) STRATA_RETURN_IF_ERROR(RemoveTreeAt(dfd, base));

    if (link_raw != nullptr) {
      auto [tparent, tbase] = SplitParent(link_target);
      int tfd = OpenInRoot(root_fd_, tparent, O_RDONLY | O_DIRECTORY);
      if (tfd < 0) return ErrnoError(errno, "open hardlink target directory");
      UniqueFd tdir(tfd);
      if (::linkat(tdir.get(), tbase.c_str(), dfd, name, 0) != 0) {
        return ErrnoError(errno, fmt::format("hardlink to \"{}\"", link_target));
      }
      written_.emplace(rel, false);
      return OkStatus();  // shares the target's inode and metadata
    }

    const mode_t perm = archive_entry_perm(e) & 07777;
    UniqueFd fd;
    switch (type) {
      case AE_IFREG: {
        int f = ::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f < 0) return ErrnoError(errno, "create file");
        fd.Reset(f);
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
    written_.emplace(rel, type == AE_IFDIR);

    // Owner first: chown clears setuid/setgid bits and security.capability.
    if (opts_.preserve_owners) {
      if (::fchownat(dfd, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) !=
          0) {
        return ErrnoError(errno, "chown");
      }
    }
    if (type == AE_IFDIR) {
      int f = ::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (f < 0) return ErrnoError(errno, "open directory");
      fd.Reset(f);
    }
    if (type != AE_IFLNK && type != AE_IFDIR) {
      int rc = fd ? ::fchmod(fd.get(), perm) : ::fchmodat(dfd, name, perm, 0);
      if (rc != 0) return ErrnoError(errno, "chmod");
    }
    STRATA_RETURN_IF_ERROR(SetXattrs(e, fd.get(), dfd, base));
    const time_t mtime = archive_entry_mtime(e);
    if (type == AE_IFDIR) {
      dirs_.push_back({rel, perm, mtime});
      return OkStatus();
    }
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    if (::utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "set times");
    }
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
      if (r < ARCHIVE_WARN) return MakeError(ErrorCode::kDataLoss, "read data");
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
  // Paths this layer wrote (value: is a directory). Whiteouts and opaque
  // markers never hide these; hardlinks may only point at these.
  std::unordered_map<std::string, bool> written_;
  std::vector<DirMeta> dirs_;
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

}  // namespace

Result<ApplyResult> ApplyTar(ByteSource* compressed, Compression compression,
                             const fs::path& target, const ApplyOptions& opts,
                             std::string_view layer_name) {
  auto fail = [&](const Error& e, std::string_view entry = {}) {
    if (entry.empty()) return Unexpected(e.Wrap(fmt::format("layer {}", layer_name)));
    return Unexpected(e.Wrap(fmt::format("layer {}: entry \"{}\"", layer_name, entry)));
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
    if (ctx.error) return fail(*ctx.error);
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("not a tar stream: {}", archive_error_string(a.get()))));
  }
  Applier applier(root_fd.get(), opts);
  ApplyResult result;
  std::string last;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      Error err = ctx.error
                      ? *ctx.error
                      : Error(ErrorCode::kInvalidArgument,
                              fmt::format("malformed tar: {}", archive_error_string(a.get())));
      return fail(last.empty() ? err : err.Wrap("after entry \"" + last + "\""));
    }
    const char* p = archive_entry_pathname(e);
    last = p != nullptr ? p : "";
    auto s = applier.Apply(a.get(), e);
    if (!s) return fail(ctx.error ? *ctx.error : s.error(), last);
    ++result.entries;
  }
  if (auto s = applier.Finish(); !s) return fail(s.error());
  // Drain what follows the end-of-archive blocks: it belongs to the diffID,
  // and the compressed source verifies its digest only at its end.
  std::vector<char> buf(kReadChunk);
  for (;;) {
    auto n = tar.Read(buf.data(), buf.size());
    if (!n) return fail(n.error());
    if (*n == 0) break;
  }
  result.uncompressed_size = tar.bytes();
  result.diff_id = tar.Finish();
  return result;
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
  STRATA_ASSIGN_OR_RETURN(ApplyResult r, ApplyTar(&src, c, target, opts, layer.digest.ToString()));
  if (expected_diff_id.valid() && r.diff_id != expected_diff_id) {
    return MakeError(ErrorCode::kDataLoss, "layer {}: diffID is {}, the config says {}",
                     layer.digest, r.diff_id, expected_diff_id);
  }
  return r;
}

}  // namespace strata::oci
