// ContextHasher: content digests of build-context files for cache keys.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "oci/util/error.h"

namespace strata::builder {

// Content digests of context files, memoized by (dev, ino, size, mtime ns,
// ctime ns) in ROOT/cache/context-<hash of the context path>.memo. A stat
// match only skips re-hashing that same path; keys are content digests.
// Thread-safe (stages hash on several threads).
class ContextHasher {
 public:
  ContextHasher(const std::filesystem::path& cache_dir, const std::filesystem::path& context);
  // The memo file for `context` (removed with a throwaway context: stdin).
  static std::filesystem::path MemoPath(const std::filesystem::path& cache_dir,
                                        const std::filesystem::path& context);
  // The digest ("sha256:...") of `file`, whose lstat is `st`.
  Result<std::string> Digest(const std::filesystem::path& file, const struct stat& st);
  // Writes the memo back if it changed (best effort: a lost memo only costs
  // a re-hash).
  void Save();

 private:
  std::filesystem::path path_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> memo_;
  bool dirty_ = false;
};

}  // namespace strata::builder
