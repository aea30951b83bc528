// strata prune: remove every blob no tag or build-cache record reaches, and
// unused or incomplete snapshots. Refuses (deleting nothing) when a tagged
// image cannot be read.
//
// The build cache (ROOT/cache/ records and the RUN cache mounts under
// ROOT/cache-mounts/) is kept by a plain `prune`; as `docker buildx prune`
// clears the build cache, cache mounts included:
//   --all                     drops all of it;
//   --filter until=DURATION   drops what was last used before now-DURATION;
//   --keep-storage SIZE       drops the least recently used entries until it
//                             uses at most SIZE (with --filter: only among
//                             the entries the filter selects).
// "Last used" is a record's mtime (a cache hit touches it) and a cache
// mount's lock file mtime (each RUN using the mount touches it). A cache
// mount is removed only while its <id>.lock is held exclusively, taken
// without waiting: one a running build uses is skipped and reported. The
// lock files stay (a waiting build may hold one open). The git cache
// (ROOT/git/<hash>.git, one bare repository per remote, guarded by
// <hash>.lock) is build cache too and goes the same way.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "builder/engine/build_cache.h"
#include "oci/util/file_util.h"
#include "tools/strata/prune_options.h"
#include "tools/strata/store_usage.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

int64_t MtimeOf(const fs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return 0;
  return st.st_mtim.tv_sec;
}

struct CacheOutcome {
  int64_t records_removed = 0;
  int64_t mounts_removed = 0;
  int64_t git_removed = 0;
  int64_t mount_bytes_freed = 0;
  std::vector<std::string> busy_mounts;
};

// Builds the entries (records and cache mounts) with their sizes and last
// use, then removes what `selection` selects. Runs under prune's exclusive
// store lock.
Status PruneBuildCache(const oci::Store& st, const CacheSelection& selection, CacheOutcome& out) {
  std::error_code ec;
  std::unordered_map<std::string, int64_t> blob_size;
  STRATA_ASSIGN_OR_RETURN(auto blobs, st.ListBlobs());
  for (const auto& d : blobs) {
    auto sz = st.Size(d);
    blob_size[d.ToString()] = sz ? *sz : 0;
  }
  STRATA_ASSIGN_OR_RETURN(auto tags, st.ListImages());
  std::unordered_set<std::string> tagged;
  std::vector<oci::Digest> configs;
  for (const auto& t : tags) {
    Mark(st, t.descriptor, tagged, configs, [](std::string) {});
  }
  std::vector<CacheEntry> entries;
  std::unordered_map<std::string, fs::path> paths;
  std::unordered_map<std::string, fs::path> locks;  // of the entries that are directories
  for (fs::directory_iterator it(st.CacheDir(), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    CacheEntry e;
    e.name = "record " + it->path().stem().string();
    e.last_used = MtimeOf(it->path());
    for (auto& b : RecordBlobs(it->path())) {
      if (!tagged.count(b)) e.blobs.push_back(std::move(b));
    }
    paths[e.name] = it->path();
    entries.push_back(std::move(e));
  }
  fs::path mounts = st.root() / "cache-mounts";
  for (fs::directory_iterator it(mounts, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || it->path().filename().string().starts_with(".")) continue;
    std::string id = it->path().filename().string();
    CacheEntry e;
    e.name = "cache mount " + id;
    e.is_mount = true;
    e.last_used = std::max(MtimeOf(it->path()), MtimeOf(mounts / (id + ".lock")));
    e.size = TreeBytes(it->path());
    paths[e.name] = it->path();
    locks[e.name] = mounts / (id + ".lock");
    entries.push_back(std::move(e));
  }
  fs::path git = st.root() / "git";
  for (fs::directory_iterator it(git, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || it->path().extension() != ".git") continue;
    std::string id = it->path().stem().string();
    CacheEntry e;
    e.name = "git cache " + id;
    e.is_mount = true;
    e.last_used = std::max(MtimeOf(it->path()), MtimeOf(git / (id + ".lock")));
    e.size = TreeBytes(it->path());
    paths[e.name] = it->path();
    locks[e.name] = git / (id + ".lock");
    entries.push_back(std::move(e));
  }
  Status failed = OkStatus();
  SelectCacheForRemoval(entries, blob_size, selection, [&](const CacheEntry& e) {
    if (!failed) return false;
    const fs::path& p = paths[e.name];
    if (!e.is_mount) {
      if (auto r = RemoveAll(p); !r) {
        failed = r;
        return false;
      }
      ++out.records_removed;
      return true;
    }
    auto lock = OpenFile(locks[e.name], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (!lock) {
      failed = std::unexpected(lock.error());
      return false;
    }
    if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
      out.busy_mounts.push_back(e.name);
      return false;
    }
    if (auto r = RemoveAll(p); !r) {
      failed = r;
      return false;
    }
    ++(e.name.starts_with("git cache ") ? out.git_removed : out.mounts_removed);
    out.mount_bytes_freed += e.size;
    return true;
  });
  return failed;
}

// A bad option value: the message, and the usage exit code.
int UsageError(const Error& e) {
  Fail(e);
  return kExitUsage;
}

}  // namespace

Verb PruneVerb() {
  return {"prune", "Remove unreferenced blobs, partial ingests and unused snapshots",
          [](CLI::App& app) -> Action {
            auto all = std::make_shared<bool>(false);
            auto filters = std::make_shared<std::vector<std::string>>();
            auto keep_storage = std::make_shared<std::string>();
            app.add_flag("-a,--all", *all,
                         "Also drop the build cache: cache records and RUN cache mounts");
            app.add_option("--filter", *filters,
                           "Drop build cache last used before now-DURATION (until=DURATION)");
            app.add_option("--keep-storage", *keep_storage,
                           "Drop least recently used build cache until it uses at most SIZE");
            return [all, filters, keep_storage](Context& ctx) -> int {
              // Every option is checked before the store is touched.
              auto parsed = ParsePruneFilters(*filters);
              if (!parsed) return UsageError(parsed.error());
              CacheSelection selection;
              if (parsed->until) {
                auto now = std::chrono::system_clock::now();
                selection.older_than = std::chrono::duration_cast<std::chrono::seconds>(
                                           (now - *parsed->until).time_since_epoch())
                                           .count();
              }
              if (!keep_storage->empty()) {
                auto size = ParseBuildxSize(*keep_storage);
                if (!size) return UsageError(size.error().Wrap("--keep-storage"));
                selection.keep_storage = *size;
              }
              const bool prune_cache =
                  *all || selection.older_than.has_value() || selection.keep_storage.has_value();

              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              const oci::Store& st = **store;
              CacheOutcome cache;
              // The build cache's records are GC roots; the ones dropped
              // here are not. Under prune's exclusive lock.
              auto r = (*store)->Prune({.extra_roots = [&]() -> Result<std::vector<oci::Digest>> {
                if (prune_cache) STRATA_RETURN_IF_ERROR(PruneBuildCache(st, selection, cache));
                return builder::CacheRecordRoots(st);
              }});
              if (!r) return Fail(r.error());
              fmt::print(
                  "Removed {} blobs, {} partial ingests, {} snapshots, {} leftover temporary "
                  "directories, {} cache records, {} cache mounts, {} git caches\n",
                  r->blobs_removed, r->ingest_removed, r->snapshots_removed,
                  r->snapshot_leftovers_removed, cache.records_removed, cache.mounts_removed,
                  cache.git_removed);
              for (const auto& id : cache.busy_mounts) {
                fmt::print("Skipped {}: in use by a running build\n", id);
              }
              int64_t freed = r->bytes_freed + cache.mount_bytes_freed;
              fmt::print("Total reclaimed space: {} ({} bytes)\n", HumanSize(freed), freed);
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
