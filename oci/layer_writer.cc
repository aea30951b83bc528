#include "oci/layer_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "oci/async_sink.h"
#include "oci/chunk_cache.h"
#include "oci/util/archive_handle.h"
#include "oci/util/file_util.h"
#include "oci/whiteout.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

constexpr size_t kFileChunk = 256 * 1024;

struct XattrList {
  std::vector<std::pair<std::string, std::string>> items;  // sorted by name
};

// Reads a path's xattrs without following a final symlink, sorted by name.
Result<XattrList> ReadXattrs(const std::string& path) {
  XattrList out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return ErrnoError(errno, "listxattr " + path);
  }
  if (len == 0) return out;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) return ErrnoError(errno, "listxattr " + path);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) continue;
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return ErrnoError(errno, "getxattr " + name + " " + path);
    }
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) return ErrnoError(errno, "getxattr " + name + " " + path);
    value.resize(static_cast<size_t>(vlen));
    out.items.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.items.begin(), out.items.end());
  return out;
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return ErrnoError(errno, "opendir " + path);
  std::unique_ptr<DIR, int (*)(DIR*)> owner(d, &::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  if (errno != 0) return ErrnoError(errno, "readdir " + path);
  // Byte order (std::string compares as unsigned char): independent of
  // locale and of the order the file system returns.
  std::sort(names.begin(), names.end());
  return names;
}

class TarWalker {
 public:
  TarWalker(const TarOptions& opts, ByteSink* out, TarEntryListener* entries)
      : opts_(opts), out_(out), entries_(entries) {}

  Status Run(const fs::path& dir) {
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, "stat " + dir.string());
    if (!S_ISDIR(st.st_mode)) {
      return MakeError(ErrorCode::kInvalidArgument, "{} is not a directory", dir.string());
    }
    a_.reset(archive_write_new());
    if (!a_) return MakeError(ErrorCode::kInternal, "archive_write_new failed");
    // PAX restricted: ustar headers, PAX extensions only where ustar cannot
    // say it. No GNU extensions, nothing that depends on the writer's host.
    // No blocking (bytes_per_block 0): libarchive hands every byte to WriteCb
    // at once, so pos_ is the exact offset of each header; with
    // bytes_in_last_block 1 the stream is the same bytes as with 10240-byte
    // blocks (nothing pads the last block).
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a_.get(), 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a_.get(), 1) != ARCHIVE_OK) {
      return ArchiveError("configure tar writer");
    }
    if (archive_write_open(a_.get(), this, nullptr, &TarWalker::WriteCb, nullptr) != ARCHIVE_OK) {
      return ArchiveError("open tar writer");
    }
    STRATA_RETURN_IF_ERROR(WalkDir(dir.string(), ""));
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return ArchiveError("finish tar");
    return OkStatus();
  }

 private:
  static la_ssize_t WriteCb(archive*, void* ctx, const void* buf, size_t len) {
    auto* self = static_cast<TarWalker*>(ctx);
    auto s = self->out_->Write(buf, len);
    if (!s) {
      self->sink_error_ = s.error();
      return -1;
    }
    self->pos_ += len;
    return static_cast<la_ssize_t>(len);
  }

  Error ArchiveErrorValue(std::string_view what) {
    if (sink_error_) return *sink_error_;
    const char* msg = a_ ? archive_error_string(a_.get()) : nullptr;
    return Error(ErrorCode::kInternal,
                 fmt::format("{}: {}", what, msg != nullptr ? msg : "libarchive error"));
  }
  std::unexpected<Error> ArchiveError(std::string_view what) {
    return Unexpected(ArchiveErrorValue(what));
  }

  int64_t ClampTime(int64_t t) const {
    if (opts_.source_date_epoch && t > *opts_.source_date_epoch) return *opts_.source_date_epoch;
    return t;
  }

  Status WalkDir(const std::string& abs, const std::string& rel) {
    STRATA_ASSIGN_OR_RETURN(auto names, ListDir(abs));
    for (const auto& name : names) {
      std::string child_abs = abs + "/" + name;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(child_abs.c_str(), &st) != 0) return ErrnoError(errno, "stat " + child_abs);
      if (S_ISSOCK(st.st_mode)) continue;  // tar has no socket type; docker skips them too
      STRATA_RETURN_IF_ERROR(WriteEntry(child_abs, rel, name, child_rel, st));
      if (S_ISDIR(st.st_mode)) STRATA_RETURN_IF_ERROR(WalkDir(child_abs, child_rel));
    }
    return OkStatus();
  }

  // An empty regular file entry (whiteout markers).
  Status WriteMarker(const std::string& rel, int64_t mtime) {
    ArchiveEntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), 0);
    archive_entry_set_mtime(e.get(), ClampTime(mtime), 0);
    return WriteHeader(e.get(), rel, 0);
  }

  // Writes an entry's header, telling entries_ where it and its data start.
  // The previous entry is finished first (its padding written), so pos_ is
  // the header's offset.
  Status WriteHeader(archive_entry* e, const std::string& rel, int64_t data_size) {
    if (archive_write_finish_entry(a_.get()) < ARCHIVE_WARN) {
      return ArchiveError("finish entry before " + rel);
    }
    if (entries_ != nullptr) STRATA_RETURN_IF_ERROR(entries_->OnEntryHeader(pos_, rel, data_size));
    if (archive_write_header(a_.get(), e) < ARCHIVE_WARN) {
      return ArchiveError("write header " + rel);
    }
    if (entries_ != nullptr) STRATA_RETURN_IF_ERROR(entries_->OnEntryData(pos_));
    return OkStatus();
  }

  Status WriteEntry(const std::string& abs, const std::string& parent_rel, const std::string& name,
                    const std::string& rel, const struct stat& st) {
    if (opts_.overlay_upper && IsOverlayWhiteout(st)) {
      std::string wh = WhiteoutName(name);
      return WriteMarker(parent_rel.empty() ? wh : parent_rel + "/" + wh, st.st_mtime);
    }
    STRATA_ASSIGN_OR_RETURN(XattrList xattrs, ReadXattrs(abs));
    bool opaque = false;
    ArchiveEntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_uid(e.get(), opts_.root_uid && st.st_uid == *opts_.root_uid ? 0 : st.st_uid);
    archive_entry_set_gid(e.get(), opts_.root_gid && st.st_gid == *opts_.root_gid ? 0 : st.st_gid);
    archive_entry_set_mtime(e.get(), ClampTime(st.st_mtime), 0);
    for (const auto& [k, v] : xattrs.items) {
      if (IsOverlayXattr(k)) {
        if (!opts_.overlay_upper) continue;
        if (IsOverlayOpaqueXattr(k)) {
          opaque = v == "y";
          continue;
        }
        // redirect/metacopy/origin describe data that lives in a lower layer;
        // such an upper dir cannot be turned into a self-contained layer.
        if (k.ends_with(".overlay.redirect") || k.ends_with(".overlay.metacopy")) {
          return MakeError(ErrorCode::kUnimplemented,
                           "{}: overlay {} is not supported (mount with redirect_dir=off, "
                           "metacopy=off)",
                           rel, k);
        }
        continue;
      }
      archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
    }

    bool has_data = false;
    if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      if (st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        auto it = links_.find(key);
        if (it != links_.end()) {
          archive_entry_set_hardlink(e.get(), it->second.c_str());
          archive_entry_set_size(e.get(), 0);
        } else {
          links_.emplace(key, rel);
          archive_entry_set_size(e.get(), st.st_size);
          has_data = true;
        }
      } else {
        archive_entry_set_size(e.get(), st.st_size);
        has_data = true;
      }
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      archive_entry_set_size(e.get(), 0);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(abs.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoError(errno, "readlink " + abs);
      target.resize(static_cast<size_t>(n));
      archive_entry_set_symlink(e.get(), target.c_str());
      archive_entry_set_size(e.get(), 0);
    } else if (S_ISFIFO(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFIFO);
      archive_entry_set_size(e.get(), 0);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdev(e.get(), st.st_rdev);
      archive_entry_set_size(e.get(), 0);
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "{}: unsupported file type", abs);
    }

    UniqueFd fd;
    if (has_data) {
      // Open before writing the header so that an unreadable file fails
      // cleanly instead of leaving a header without its data.
      STRATA_ASSIGN_OR_RETURN(fd, OpenFile(abs, O_RDONLY | O_NOFOLLOW));
    }
    STRATA_RETURN_IF_ERROR(WriteHeader(e.get(), rel, has_data ? st.st_size : 0));
    if (has_data) STRATA_RETURN_IF_ERROR(CopyData(fd.get(), abs, st.st_size));
    if (opaque) {
      STRATA_RETURN_IF_ERROR(WriteMarker(rel + "/" + std::string(kOpaqueWhiteout), st.st_mtime));
    }
    return OkStatus();
  }

  Status CopyData(int fd, const std::string& abs, int64_t size) {
    buf_.resize(kFileChunk);
    int64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd, buf_.data(), static_cast<size_t>(std::min<int64_t>(left, kFileChunk)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "read " + abs);
      }
      if (n == 0) {
        // The header already promised `size` bytes; a file that shrank while
        // we read it would make a corrupt tar.
        return MakeError(ErrorCode::kFailedPrecondition, "{} shrank while being archived", abs);
      }
      if (archive_write_data(a_.get(), buf_.data(), static_cast<size_t>(n)) < 0) {
        return ArchiveError("write data " + abs);
      }
      left -= n;
    }
    return OkStatus();
  }

  const TarOptions& opts_;
  ByteSink* out_;
  TarEntryListener* entries_;
  uint64_t pos_ = 0;  // bytes handed to out_
  ArchiveWritePtr a_;
  std::optional<Error> sink_error_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  std::vector<char> buf_;
};

}  // namespace

Status WriteTar(const fs::path& dir, const TarOptions& opts, ByteSink* out,
                TarEntryListener* entries) {
  TarWalker walker(opts, out, entries);
  return walker.Run(dir);
}

namespace {

// Runs `produce` into tar -> diffID hash -> compressor -> a new blob.
// `produce` gets the tar sink and the compressor as the TarEntryListener;
// with `tar_entries`, gzip members end where it says. gzip commits reuse
// members from the store's chunk cache and record the new blob's table.
template <typename Produce>
Result<LayerInfo> CommitPipeline(Store& store, const CompressOptions& copts, bool tar_entries,
                                 Produce&& produce) {
  const bool gzip = copts.compression == Compression::kGzip;
  std::unique_ptr<ChunkCache> cache;
  if (gzip) cache = ChunkCache::Load(store, GzipMemberParams(copts.level));
  STRATA_ASSIGN_OR_RETURN(BlobWriter blob, store.Ingest());
  FunctionSink blob_sink([&blob](const void* d, size_t n) { return blob.Write(d, n); });
  // The blob's SHA-256 and its write run on their own thread, beside the tar
  // walk and the diffID hash on this one: the two hashes are the largest CPU
  // cost of a commit and cannot be split within one stream. (The compressor
  // stays on this thread: its entry boundaries are offsets of what it is
  // written here.)
  AsyncSink blob_writer(&blob_sink);
  STRATA_ASSIGN_OR_RETURN(
      auto compressor,
      NewLayerCompressor(copts,
                         {.tar_entries = tar_entries, .cache = cache.get(), .record_members = gzip},
                         &blob_writer));
  DigestingSink tar_sink(compressor.get());
  STRATA_RETURN_IF_ERROR(produce(&tar_sink, compressor.get()));
  STRATA_RETURN_IF_ERROR(tar_sink.Close());
  LayerInfo info;
  info.uncompressed_size = static_cast<int64_t>(tar_sink.bytes());
  info.diff_id = tar_sink.Finish();
  info.chunks = compressor->stats();
  STRATA_ASSIGN_OR_RETURN(info.descriptor,
                          blob.Commit(std::string(LayerMediaType(copts.compression))));
  if (gzip) {
    // Best effort: without its table the blob is only not reusable.
    (void)WriteChunkTable(store, info.descriptor.digest, GzipMemberParams(copts.level),
                          compressor->members());
  }
  return info;
}

}  // namespace

Result<LayerInfo> CommitLayer(Store& store, const fs::path& dir, const LayerWriterOptions& opts) {
  auto r = CommitPipeline(store, opts.compress, /*tar_entries=*/true,
                          [&](ByteSink* sink, TarEntryListener* entries) {
                            return WriteTar(dir, opts.tar, sink, entries);
                          });
  if (!r) return Unexpected(r.error().Wrap("commit layer from " + dir.string()));
  return r;
}

Result<LayerInfo> CommitTarStream(Store& store, ByteSource* tar, const CompressOptions& opts) {
  return CommitPipeline(store, opts, /*tar_entries=*/false,
                        [&](ByteSink* sink, TarEntryListener*) -> Status {
                          std::vector<char> buf(kFileChunk);
                          for (;;) {
                            STRATA_ASSIGN_OR_RETURN(size_t n, tar->Read(buf.data(), buf.size()));
                            if (n == 0) return OkStatus();
                            STRATA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
                          }
                        });
}

}  // namespace strata::oci
