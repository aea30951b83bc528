// File-system helpers shared by every layer: atomic writes, whole-file reads,
// recursive mkdir/remove, scoped temporary directories.
//
// A file reaches its final name through AtomicFile (and WriteFileAtomic,
// built on it: temp file in the same directory, fsync, rename, fsync the dir)
// or RenameDurable (rename, fsync the dir). The other renames are not
// publications: moving a corrupt blob to quarantine (Store::QuarantineBlob)
// and a RUN cache mount's first directory (a cache, never fsynced).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata {

// A file written in a stream that appears at `path` only when Commit()
// succeeds: a hidden temp file next to it (".<name>.tmp-XXXX"), fsynced, given
// `mode` exactly, then renamed over `path` (RenameDurable). Destroying it
// uncommitted removes the temp file. Move-only; one thread at a time.
class AtomicFile {
 public:
  static Result<AtomicFile> Create(const std::filesystem::path& path, mode_t mode = 0644);
  AtomicFile(AtomicFile&& o) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  // The temp file, for writers that take an fd (libarchive).
  int fd() const { return fd_.get(); }
  Status Write(const void* data, size_t size);
  // Readers of `path` see the old content or all of the new, never a mix;
  // durable once it returns OK. At most once.
  Status Commit();

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path tmp, UniqueFd fd, mode_t mode)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)), mode_(mode) {}
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  UniqueFd fd_;
  mode_t mode_;
  bool done_ = false;
};

// Writes `data` to `path` so that readers see either the old or the new
// content, never a mix; durable once it returns OK.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       mode_t mode = 0644);

// Writes `data` to a new file `path` with `mode` exactly, not durably: for
// files that live only as long as one step (a RUN's bundle, heredoc scripts,
// secret files), where an fsync would only add latency to every RUN. Fails if
// `path` exists (O_EXCL, never follows a symlink).
Status WriteScratchFile(const std::filesystem::path& path, std::string_view data,
                        mode_t mode = 0644);

// Renames `from` to `to` (same file system) and fsyncs the target directory.
// REQUIRES: `from` is fully written and fsynced.
Status RenameDurable(const std::filesystem::path& from, const std::filesystem::path& to);

// Reads a whole (small) file. NotFound if it does not exist.
Result<std::string> ReadFile(const std::filesystem::path& path);

// Writes all of `data` to fd, retrying on EINTR and short writes.
Status WriteAll(int fd, const void* data, size_t size);

// fsync of a directory (makes a rename or create in it durable).
Status FsyncDir(const std::filesystem::path& dir);

// mkdir -p; OK if it exists as a directory.
Status MakeDirs(const std::filesystem::path& dir, mode_t mode = 0755);

// rm -rf that never follows symlinks and never crosses into another file
// system (a mount point below `path` is detached, not emptied); OK if the
// path does not exist. Makes read-only directories writable as needed.
Status RemoveAll(const std::filesystem::path& path);

// Bytes of the regular files below `path` (links not followed, unreadable
// parts skipped): what removing the tree frees, roughly.
int64_t TreeBytes(const std::filesystem::path& path);

// A random [a-z0-9] name component for temp, ingest and quarantine files.
std::string RandomSuffix(size_t length = 12);

// Opens with O_CLOEXEC; errors name the path.
Result<UniqueFd> OpenFile(const std::filesystem::path& path, int flags, mode_t mode = 0);

// A fresh directory under `parent` (or $TMPDIR) that is removed, recursively,
// when the object is destroyed. Move-only.
class ScopedTempDir {
 public:
  static Result<ScopedTempDir> Create(const std::filesystem::path& parent = {},
                                      std::string_view prefix = "strata-");
  ScopedTempDir() = default;
  ScopedTempDir(ScopedTempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ScopedTempDir& operator=(ScopedTempDir&& o) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();

  const std::filesystem::path& path() const { return path_; }
  // Stops owning the directory: it is not removed on destruction.
  std::filesystem::path Release();

 private:
  explicit ScopedTempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace strata
