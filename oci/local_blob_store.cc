#include "oci/local_blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "oci/util/file_util.h"

namespace strata::oci {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- BlobWriter

BlobWriter::BlobWriter(fs::path blobs_dir, fs::path tmp, UniqueFd fd)
    : blobs_dir_(std::move(blobs_dir)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : blobs_dir_(std::move(o.blobs_dir_)),
      tmp_(std::move(o.tmp_)),
      fd_(std::move(o.fd_)),
      hasher_(std::move(o.hasher_)),
      done_(o.done_),
      synced_(o.synced_) {
  o.done_ = true;
}

BlobWriter::~BlobWriter() {
  if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

Status BlobWriter::Write(const void* data, size_t size) {
  if (done_) return MakeError(ErrorCode::kFailedPrecondition, "write after commit");
  hasher_.Update(data, size);
  auto s = WriteAll(fd_.get(), data, size);
  if (!s) return Unexpected(s.error().Wrap(fmt::format("ingest {}", tmp_.string())));
  // Start writeback of every full window as soon as it is written, so the
  // disk works while we hash the next bytes and Commit's fsync only waits
  // for the tail (durable ingest ~ max(hash, disk) instead of their sum).
  uint64_t written = hasher_.bytes();
  if (written - synced_ >= kWritebackWindow) {
    uint64_t end = written - written % kWritebackWindow;
    ::sync_file_range(fd_.get(), static_cast<off64_t>(synced_), static_cast<off64_t>(end - synced_),
                      SYNC_FILE_RANGE_WRITE);
    synced_ = end;
  }
  return OkStatus();
}

Result<Descriptor> BlobWriter::Commit(std::string media_type, std::optional<Digest> expected,
                                      int64_t expected_size) {
  if (done_) return MakeError(ErrorCode::kFailedPrecondition, "blob already committed");
  done_ = true;
  auto fail = [&](Error e) -> Result<Descriptor> {
    ::unlink(tmp_.c_str());
    return Unexpected(std::move(e));
  };
  int64_t size = static_cast<int64_t>(hasher_.bytes());
  Digest actual = hasher_.Finish();
  if (expected_size >= 0 && size != expected_size) {
    return fail(Error(
        ErrorCode::kFailedPrecondition,
        fmt::format("blob {}: size mismatch: expected {} bytes, got {}",
                    expected ? expected->ToString() : actual.ToString(), expected_size, size)));
  }
  if (expected && *expected != actual) {
    return fail(Error(ErrorCode::kFailedPrecondition,
                      fmt::format("digest mismatch: expected {}, got {}", expected->ToString(),
                                  actual.ToString())));
  }
  Descriptor d;
  d.media_type = std::move(media_type);
  d.digest = actual;
  d.size = size;
  fs::path final_path = blobs_dir_ / std::string(actual.algorithm_name()) / actual.hex();
  struct stat st;
  if (::stat(final_path.c_str(), &st) == 0) {
    ::unlink(tmp_.c_str());
    return d;  // content-addressed: already present is success
  }
  if (::fchmod(fd_.get(), 0444) != 0 || ::fsync(fd_.get()) != 0) {
    return fail(ErrnoError(errno, fmt::format("fsync {}", tmp_.string())).error());
  }
  fd_.Reset();
  if (auto s = MakeDirs(final_path.parent_path()); !s) return fail(s.error());
  // link() never replaces an existing file: a blob is never rewritten, even
  // when two processes commit the same content at once.
  if (::link(tmp_.c_str(), final_path.c_str()) != 0 && errno != EEXIST) {
    int err = errno;
    return fail(ErrnoError(err, fmt::format("commit {}", actual.ToString())).error());
  }
  ::unlink(tmp_.c_str());
  if (auto s = FsyncDir(final_path.parent_path()); !s) return Unexpected(s.error());
  return d;
}

// ---------------------------------------------------------------- BlobReader

Result<size_t> BlobReader::Read(void* buf, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read blob {}", digest_.ToString()));
    }
    if (n > 0) {
      hasher_.Update(buf, static_cast<size_t>(n));
      if (static_cast<int64_t>(hasher_.bytes()) > size_) {
        return MakeError(ErrorCode::kDataLoss, "blob {} is corrupt: longer than {} bytes",
                         digest_.ToString(), size_);
      }
      return static_cast<size_t>(n);
    }
    if (size == 0) return 0;
    if (!verified_) {
      Digest actual = hasher_.Finish();
      if (actual != digest_) {
        return MakeError(ErrorCode::kDataLoss, "blob {} is corrupt: content hashes to {}",
                         digest_.ToString(), actual.ToString());
      }
      verified_ = true;
    }
    return 0;
  }
}

// ---------------------------------------------------------------- LocalBlobStore

Result<std::unique_ptr<LocalBlobStore>> LocalBlobStore::Open(const fs::path& root) {
  auto store = std::unique_ptr<LocalBlobStore>(new LocalBlobStore(root));
  STRATA_RETURN_IF_ERROR(MakeDirs(store->blobs_ / "sha256"));
  STRATA_RETURN_IF_ERROR(MakeDirs(store->ingest_));
  return store;
}

fs::path LocalBlobStore::BlobPath(const Digest& d) const {
  return blobs_ / std::string(d.algorithm_name()) / d.hex();
}

Result<BlobWriter> LocalBlobStore::Ingest() {
  fs::path tmp = ingest_ / RandomSuffix(16);
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  return BlobWriter(blobs_, tmp, std::move(fd));
}

Result<BlobReader> LocalBlobStore::Open(const Digest& d) const {
  auto path = BlobPath(d);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
    return ErrnoError(errno, fmt::format("open blob {}", d.ToString()));
  }
  UniqueFd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, fmt::format("stat blob {}", d.ToString()));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return BlobReader(d, std::move(owner), st.st_size);
}

Result<BlobInfo> LocalBlobStore::Stat(const Digest& d) const {
  struct stat st;
  if (::stat(BlobPath(d).c_str(), &st) != 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
    return ErrnoError(errno, fmt::format("stat blob {}", d.ToString()));
  }
  return BlobInfo{d, static_cast<int64_t>(st.st_size)};
}

Result<std::unique_ptr<BlobReadStream>> LocalBlobStore::OpenBlob(const Digest& d) const {
  STRATA_ASSIGN_OR_RETURN(auto r, Open(d));
  return std::unique_ptr<BlobReadStream>(new BlobReader(std::move(r)));
}

Result<std::unique_ptr<BlobIngestWriter>> LocalBlobStore::NewWriter() {
  STRATA_ASSIGN_OR_RETURN(auto w, Ingest());
  return std::unique_ptr<BlobIngestWriter>(new BlobWriter(std::move(w)));
}

Status LocalBlobStore::Delete(const Digest& d) {
  if (::unlink(BlobPath(d).c_str()) != 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
    return ErrnoError(errno, fmt::format("delete blob {}", d.ToString()));
  }
  return OkStatus();
}

Status LocalBlobStore::Walk(const std::function<Status(const BlobInfo&)>& fn) const {
  for (const char* alg : {"sha256", "sha512"}) {
    const fs::path dir = blobs_ / alg;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    // Collect first: `fn` may delete what it is given.
    std::vector<BlobInfo> found;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      auto d = Digest::Parse(fmt::format("{}:{}", alg, it->path().filename().string()));
      if (!d) continue;  // not a blob (a stray file another tool left)
      struct stat st;
      if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      found.push_back({*d, static_cast<int64_t>(st.st_size)});
    }
    if (ec) return MakeError(ErrorCode::kInternal, "list {}: {}", dir.string(), ec.message());
    for (const auto& info : found) STRATA_RETURN_IF_ERROR(fn(info));
  }
  return OkStatus();
}

}  // namespace strata::oci
