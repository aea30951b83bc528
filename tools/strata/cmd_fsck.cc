// strata fsck: verify every blob and every reference; exit 1 with a list of
// what is wrong.
#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb FsckVerb() {
  return {"fsck", "Verify every blob and every image reference in the store",
          [](CLI::App&) -> Action {
            return [](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
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
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
