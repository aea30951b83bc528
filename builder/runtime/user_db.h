// User database lookups inside a container rootfs: turns a Dockerfile USER
// spec (`name`, `uid`, `name:group`, `uid:gid`, `name:gid`, `uid:group`) into
// the numeric identity a RUN step executes as.
//
// The rootfs is untrusted: an image may make /etc/passwd a symlink to an
// absolute host path, or a chain of `..` links. Every file is opened with
// openat2(RESOLVE_IN_ROOT) relative to the rootfs, so symlinks resolve as they
// would inside the container and can never reach the host. Only regular files
// are read (a FIFO cannot block the build), and at most kMaxUserDbFileSize
// bytes of them.
//
// Semantics follow runc/BuildKit: a numeric uid need not exist in passwd (it
// then gets gid 0 and home "/"); a named user or group must exist; the primary
// gid is the passwd entry's unless a group is given; supplementary groups are
// the groups of /etc/group that list the user's name (plus nothing else).
// Pure functions over the file system; thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

inline constexpr size_t kMaxUserDbFileSize = 16 << 20;

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Groups listing the user by name in /etc/group, ascending, without `gid`.
  std::vector<uint32_t> supplementary_gids;
  // Home directory from passwd; "/" when the user has no passwd entry.
  std::string home = "/";
  bool operator==(const ResolvedUser&) const = default;
};

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// Parses passwd(5) / group(5) text. Malformed lines (wrong field count,
// non-numeric ids) are skipped, as libc does; comments and blanks too.
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
std::vector<GroupEntry> ParseGroup(std::string_view text);

// Resolves `spec` against already-read file contents; nullopt means the file
// does not exist (numeric ids still resolve). Errors, with docker's wording:
//   InvalidArgument "invalid user spec ..." / "uids and gids must be in range 0-2147483647"
//   NotFound "unable to find user foo: no matching entries in passwd file"
//   NotFound "unable to find group bar: no matching entries in group file"
Result<ResolvedUser> ResolveUserFromDb(std::string_view spec,
                                       const std::optional<std::string>& passwd,
                                       const std::optional<std::string>& group);

// Reads `path` (absolute, as seen inside the container) from `rootfs` with
// RESOLVE_IN_ROOT. NotFound if it does not exist; FailedPrecondition if it is
// not a regular file or is larger than kMaxUserDbFileSize.
Result<std::string> ReadFileInRoot(const std::filesystem::path& rootfs, std::string_view path);

// Resolves `spec` against `rootfs`/etc/passwd and /etc/group read safely. An
// empty spec means root. A missing passwd/group file is not an error by itself.
Result<ResolvedUser> ResolveUser(const std::filesystem::path& rootfs, std::string_view spec);

}  // namespace strata::builder
