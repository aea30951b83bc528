// Confined file-system operations below a directory that stands for an image
// root (a COPY staging dir, a snapshot, an unpack target, a mount source).
//
// Such trees hold hostile content: symlinks to "/", "../../.." chains, links
// planted by an earlier source of the same COPY or by a base image. Nothing
// here ever follows a path string. A `RootDir` holds an fd of the root; every
// relative path handed to it is resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS), so symlinks in parent components are followed as
// if the root were "/" and can never leave it. The final component of an
// entry is never followed: operations on it are *at() calls on the resolved
// parent fd with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW, or f*() calls on an fd
// opened with O_NOFOLLOW.
//
// Thread-safety: a RootDir is immutable after Open; its methods may be called
// from several threads. Concurrent *modification* of the tree by another
// process cannot make an operation escape the root (the kernel enforces the
// confinement per lookup); it can only make it fail.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata {

// openat2(dir_fd, rel, flags | O_CLOEXEC) with the given RESOLVE_* flags; "" is
// dir_fd itself. Returns the fd or -1 with errno set (EINTR, and EAGAIN from a
// concurrent rename, are retried a bounded number of times). The one place
// strata calls openat2.
int OpenAt2(int dir_fd, std::string_view rel, int flags, uint64_t resolve, mode_t mode = 0);

// OpenAt2 confined to root_fd: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, plus
// `extra_resolve` (e.g. RESOLVE_NO_SYMLINKS for paths known to be physical).
int OpenInRoot(int root_fd, std::string_view rel, int flags, uint64_t extra_resolve = 0,
               mode_t mode = 0);

// rm -rf of dir_fd/name that never follows a symlink and never descends into
// another file system. OK if absent.
Status RemoveTreeAt(int dir_fd, const std::string& name);

// The parent directory of an entry (an open O_DIRECTORY fd) and the entry's
// final name, never "", "." or "..".
struct ParentAndName {
  UniqueFd dir;
  std::string name;
};

class RootDir {
 public:
  // Opens `dir` (which must exist and be a directory; the path itself is
  // trusted: it is ours, not the tree's).
  static Result<RootDir> Open(const std::filesystem::path& dir);

  RootDir() = default;
  RootDir(RootDir&&) noexcept = default;
  RootDir& operator=(RootDir&&) noexcept = default;

  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }

  // mkdir -p of `rel` inside the root: each missing component is created with
  // `mode` in the in-root resolution of its parent; a link whose in-root
  // target is missing gets that target created (as containerd's RootPath +
  // MkdirAll). Returns an O_DIRECTORY fd of the result. FailedPrecondition
  // naming the component when one exists and is not a directory;
  // InvalidArgument after 40 links.
  Result<UniqueFd> MakeDirs(std::string_view rel, mode_t mode = 0755) const;

  // Resolves the parent of `rel` inside the root (creating missing parents
  // when `create_parents`) and returns it with the final name.
  // InvalidArgument when `rel` names the root itself; NotFound when a parent
  // is missing and !create_parents.
  Result<ParentAndName> Parent(std::string_view rel, bool create_parents, mode_t mode = 0755) const;

  // Opens `rel` resolved inside the root. The final component is followed
  // (in-root) unless `flags` has O_NOFOLLOW.
  Result<UniqueFd> OpenAt(std::string_view rel, int flags, mode_t mode = 0) const;

 private:
  RootDir(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<UniqueFd> MakeDirsHops(std::string_view rel, mode_t mode, int hops) const;
  UniqueFd fd_;
  std::filesystem::path path_;
};

}  // namespace strata
