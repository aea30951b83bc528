// Ownership and reaping of what RUN steps leave in a store: runtime
// containers (ROOT/runtime/<id>), bundle dirs (ROOT/bundles/run-*), the
// snapshot work dirs of steps (ROOT/snapshots/.run-*, .view-*, .bindrw-*)
// and mounts under the store.
//
// A strata process that runs containers holds a RunOwner: an exclusive
// flock(2) on ROOT/run-owners/<token> for its whole life. Its container ids
// are `strata-<token>-<n>` and its bundles `run-<token>-XXXXXX`, so whether
// their owner is alive is one non-blocking flock away (the kernel drops the
// lock when the owner dies, even by SIGKILL; no pid reuse can fool it).
//
// ReapDeadRuns, run before any strata command uses the store:
//   - for every owner file whose lock it can take (its owner is dead):
//     deletes the owner's containers (`RUNTIME delete -f`), bundles and the
//     owner file;
//   - when it can take ROOT/lock exclusively (no strata process has the
//     store open, so nothing in it is live): also every `strata-*`
//     container, every bundle and step work dir, and detaches every mount
//     under ROOT left in this mount namespace (by versions of strata that
//     mounted in the host namespace). Otherwise the work dirs, whose names
//     carry no owner, wait for a moment when the store is idle.
// Never touches anything of a live strata process.
// Thread-compatible; one call at a time per store.
#pragma once

#include <filesystem>
#include <string>

#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {

class RunOwner {
 public:
  // Creates ROOT/run-owners/<random token> and locks it exclusively.
  static Result<RunOwner> Acquire(const std::filesystem::path& store_root);

  RunOwner() = default;
  RunOwner(RunOwner&&) noexcept = default;
  RunOwner& operator=(RunOwner&& o) noexcept;
  RunOwner(const RunOwner&) = delete;
  RunOwner& operator=(const RunOwner&) = delete;
  // Removes the owner file, then drops the lock.
  ~RunOwner();

  // 16 lowercase hex digits; names this owner's containers and bundles.
  const std::string& token() const { return token_; }

 private:
  void Release();
  std::filesystem::path file_;
  std::string token_;
  UniqueFd fd_;
};

// Container id and bundle-dir prefix of `token`'s n-th step.
std::string OwnedContainerId(std::string_view token, uint64_t n);
std::string OwnedBundlePrefix(std::string_view token);

struct ReapOptions {
  std::filesystem::path store_root;
  // runc/crun, for `delete -f`; empty = remove the state dirs directly.
  std::filesystem::path runtime;
};

struct ReapReport {
  int owners = 0;          // dead owners whose leftovers were reaped
  int containers = 0;      // runtime containers deleted
  int bundles = 0;         // bundle dirs removed
  int work_dirs = 0;       // snapshots/.run-* etc. removed
  int mounts = 0;          // mounts under the store detached
  bool exclusive = false;  // the store was idle: everything dead was reaped
};

// See the file comment. A store root without a `lock` file is left alone
// (nothing has used it yet). Errors: the first failure to remove something,
// after trying everything else.
Result<ReapReport> ReapDeadRuns(const ReapOptions& options);

}  // namespace strata::builder
