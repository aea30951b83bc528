// strata prune: remove every blob no tag or build-cache record reaches, and
// unused or incomplete snapshots. Refuses (deleting nothing) when a tagged
// image cannot be read.
#include <fmt/format.h>

#include "builder/engine/build_cache.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb PruneVerb() {
  return {"prune", "Remove unreferenced blobs, partial ingests and unused snapshots",
          [](CLI::App& app) -> Action {
            auto all = std::make_shared<bool>(false);
            app.add_flag("-a,--all", *all, "Also drop the build cache");
            return [all](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              const oci::Store& st = **store;
              int64_t cache_records_removed = 0;
              // The build cache's records are GC roots unless --all drops
              // them; either way under prune's exclusive lock.
              auto r = (*store)->Prune({.extra_roots = [&]() -> Result<std::vector<oci::Digest>> {
                if (!*all) return builder::CacheRecordRoots(st);
                STRATA_ASSIGN_OR_RETURN(cache_records_removed, builder::DropCacheRecords(st));
                return std::vector<oci::Digest>{};
              }});
              if (!r) return Fail(r.error());
              fmt::print(
                  "Removed {} blobs, {} partial ingests, {} snapshots, {} leftover temporary "
                  "directories, {} cache records\n",
                  r->blobs_removed, r->ingest_removed, r->snapshots_removed,
                  r->snapshot_leftovers_removed, cache_records_removed);
              fmt::print("Total reclaimed space: {} ({} bytes)\n", HumanSize(r->bytes_freed),
                         r->bytes_freed);
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
