// Staging: building a layer's directory tree for COPY, ADD and WORKDIR. Every
// write goes through a RootDir (oci/util/in_root.h): parents resolve inside
// the staging root and entries are created without following links.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "oci/util/in_root.h"

namespace strata::builder {

// One file-system entry a COPY will create.
struct CopyEntry {
  std::string dest;           // absolute path in the image
  std::filesystem::path src;  // absolute host path ("" for heredoc content / made dirs)
  struct stat st {};
  std::string content;  // heredoc body
  bool is_heredoc = false;
  std::string digest;  // content digest when already known (downloads)
};

// A directory and the mtime it gets once nothing more is added below it.
struct DirTime {
  std::string dest;
  struct timespec mtime;
};

// Non-throwing file-system predicates: an image may hold symlink loops or
// unreadable paths, and std::filesystem's plain overloads throw on those.
bool Exists(const std::filesystem::path& p);
bool IsDir(const std::filesystem::path& p);
bool IsEmptyDir(const std::filesystem::path& p);
// `p` made absolute (as is when that fails).
std::filesystem::path Absolute(const std::filesystem::path& p);

// Copies `size` bytes from `in` to `out` (copy_file_range, else read/write).
Status CopyContents(int in, int out, off_t size, const std::filesystem::path& src);

// The names in `dir`, sorted (empty when it cannot be read).
std::vector<std::string> SortedNames(const std::filesystem::path& dir);

// Sets the owner of `fd` (`name` for messages). As root, any id. Without
// root (hermetic tests, rootless builds without an id mapping) root's ids
// map to the caller's, as in a single-id user namespace, and any other id
// is refused with a message that says so: never silently dropped.
Status ChownFd(int fd, uid_t uid, gid_t gid, std::string_view name);
// The same for a name in `dir_fd`, not following a final link.
Status ChownAt(int dir_fd, const char* base, uid_t uid, gid_t gid, std::string_view name);

// Directory mtimes, deepest last-created first, once nothing is added below.
void FinishDirTimes(const RootDir& root, const std::vector<DirTime>& dir_times);

// Makes the directories of `dir` (an image path, links already resolved) in
// the staging root as the image has them: a directory that exists in the
// image (below `image_root`; "" = none) keeps its mode, owner and mtime in
// the layer (a layer that re-creates /home/u as root:root 0755 would take the
// user's home away); a missing one is made 0755 and owned by `uid`:`gid`
// (COPY --chown, WORKDIR under USER), as BuildKit does.
Status MakeDirsLikeImage(const RootDir& root, const std::filesystem::path& image_root,
                         std::string_view dir, uid_t uid, gid_t gid,
                         std::vector<DirTime>& dir_times);

// Copies one entry into the staging tree. Every operation is confined to
// `root`: parent directories resolve inside it, and the entry itself is never
// followed — a link that an earlier source of the same COPY planted at this
// name is replaced, never written, chmod'ed or chown'ed through. A
// directory's mtime is set by FinishDirTimes after its children are in place
// (adding them would move it).
Status Materialize(const RootDir& root, const CopyEntry& e, std::optional<uint32_t> uid,
                   std::optional<uint32_t> gid, std::optional<mode_t> mode_override,
                   std::vector<DirTime>& dir_times);

}  // namespace strata::builder
