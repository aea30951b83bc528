// build --check-reproducible: the build runs a second time in a fresh
// temporary store (under ROOT/ingest/, removed afterwards) holding only the
// same inputs — every base image the first build resolved, copied by digest
// from this store — without the build cache, and the two results are
// compared: equal manifest digests pass; otherwise the first layer that
// differs is unpacked from both builds (overlay form, so whiteouts show) and
// the first differing file named with how it differs (content, mode, owner,
// mtime, xattr, type, link target, present in one build only); equal layers
// with different configs name the config field.
//
// ScanTree / FirstDifference are the comparison, pure over two directories:
// the walk opens every entry relative to its parent with O_NOFOLLOW and never
// follows a symlink of the tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "builder/engine/executor.h"
#include "builder/runtime/command_runner.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "tools/strata/cli.h"

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

struct ReproducibleReport {
  bool reproducible = false;
  oci::Digest second;      // the second build's manifest digest
  std::string difference;  // "" when reproducible
};

// Runs the second build (see above) and compares. `options` are the first
// build's (its resolver, fetchers and tags are not used: the temporary store
// holds the inputs).
Result<ReproducibleReport> CheckReproducible(const Context& ctx, oci::Store& store,
                                             builder::CommandRunner& runner,
                                             const builder::BuildOptions& options,
                                             const builder::BuildResult& first);

}  // namespace strata::cli
