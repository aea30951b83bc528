// strata rmi REF...: remove tags. Blobs stay until `strata prune`.
#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb RmiVerb() {
  return {"rmi", "Remove image tags (blobs are freed by prune)", [](CLI::App& app) -> Action {
            auto refs = std::make_shared<std::vector<std::string>>();
            app.add_option("REF", *refs, "Image references")->required();
            return [refs](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              int rc = kExitOk;
              for (const auto& r : *refs) {
                auto ref = oci::Reference::Parse(r);
                if (!ref) {
                  rc = Fail(ref.error());
                  continue;
                }
                if (auto s = (*store)->Untag(*ref); !s) {
                  rc = Fail(s.error());
                  continue;
                }
                fmt::print("Untagged: {}\n", ref->Familiar());
              }
              return rc;
            };
          }};
}

}  // namespace strata::cli
