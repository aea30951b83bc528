// File-system helpers shared by every layer: atomic writes, whole-file reads,
// recursive mkdir/remove, scoped temporary directories.
//
// WriteFileAtomic is the only place in strata that renames a file into its
// final name: temp file in the same directory, fsync, rename, fsync the dir.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata {

// Writes `data` to `path` so that readers see either the old or the new
// content, never a mix; durable once it returns OK.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
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
