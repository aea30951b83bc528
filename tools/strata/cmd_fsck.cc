// strata fsck [--repair]: verify every blob, every reference and every
// snapshot; exit 1 with a list of what is wrong. --repair first removes
// incomplete snapshots and leftover snapshot temp/trash dirs (never blobs or
// tags), which needs the store to itself.
#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb FsckVerb() {
  return {"fsck", "Verify every blob, image reference and snapshot in the store",
          [](CLI::App& app) -> Action {
            auto repair = std::make_shared<bool>(false);
            app.add_flag("--repair", *repair,
                         "Remove incomplete snapshots and leftover temporary directories first");
            return [repair](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              if (*repair) {
                auto r = (*store)->RepairSnapshots();
                if (!r) return Fail(r.error());
                if (!ctx.global.quiet) {
                  fmt::print("repaired: removed {} incomplete snapshots, {} leftover directories\n",
                             r->snapshots_removed, r->leftovers_removed);
                }
              }
              auto report = (*store)->Fsck();
              for (const auto& p : report.problems) fmt::print("{}\n", p);
              if (!report.ok()) {
                fmt::print(stderr, "strata: fsck found {} problem(s) in {}\n",
                           report.problems.size(), (*store)->root().string());
                return kExitFailure;
              }
              if (!ctx.global.quiet) {
                fmt::print("ok: {} blobs, {} images verified\n", report.blobs_checked,
                           report.images_checked);
                if (report.remote_manifests + report.absent_manifests > 0) {
                  fmt::print(
                      "note: {} platform manifests of tagged indexes are not in the store ({} "
                      "recorded at a registry, {} not recorded)\n",
                      report.remote_manifests + report.absent_manifests, report.remote_manifests,
                      report.absent_manifests);
                }
                if (!report.leftovers.empty()) {
                  fmt::print(
                      "note: {} temporary directories under snapshots/ (of a running or a "
                      "killed strata; prune removes those of killed ones)\n",
                      report.leftovers.size());
                }
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
