// Tree diff: the first difference between two directory trees, for
// build --check-reproducible (tools/strata/reproducible_check.h). The walk
// opens every entry relative to its parent with O_NOFOLLOW and never follows
// a symlink of the tree. No other I/O. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "oci/util/error.h"

namespace strata::cli {

struct TreeEntry {
  char type = '?';  // f file, d dir, l symlink, c char dev, b block dev, p fifo, s socket
  mode_t mode = 0;  // permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  std::string link;     // symlink target
  std::string content;  // sha256 of a file's content
  uint64_t rdev = 0;
  std::map<std::string, std::string> xattrs;
};

// Every entry under `dir`, by relative path ("a/b"). Bounded: at most
// `max_entries` (InvalidArgument beyond).
Result<std::map<std::string, TreeEntry>> ScanTree(const std::filesystem::path& dir,
                                                  size_t max_entries = 2'000'000);

// The first path (in sorted order) whose entries differ, with how:
// "/etc/x: content differs", "/a: mode 0644 vs 0755", "/a: owner 0:0 vs 1:1",
// "/a: mtime 1700000000.0 vs 1700000001.0", "/a: xattr user.k differs",
// "/a: only in the first build". nullopt if the trees are equal.
std::optional<std::string> FirstDifference(const std::map<std::string, TreeEntry>& a,
                                           const std::map<std::string, TreeEntry>& b);

}  // namespace strata::cli
