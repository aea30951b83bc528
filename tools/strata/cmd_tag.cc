// strata tag SRC DEST: point DEST at the image SRC names.
#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb TagVerb() {
  return {"tag", "Create a tag DEST that refers to SRC", [](CLI::App& app) -> Action {
            auto src = std::make_shared<std::string>();
            auto dst = std::make_shared<std::string>();
            app.add_option("SRC", *src, "Existing image")->required();
            app.add_option("DEST", *dst, "New reference")->required();
            return [src, dst](Context& ctx) -> int {
              auto ref = oci::Reference::Parse(*dst);
              if (!ref) return Fail(ref.error());
              if (ref->digest()) {
                return Fail(Error(ErrorCode::kInvalidArgument,
                                  fmt::format("cannot tag with a digest reference {}", *dst)));
              }
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto desc = (*store)->Resolve(*src);
              if (!desc) return Fail(desc.error());
              if (auto s = (*store)->Tag(*ref, *desc); !s) return Fail(s.error());
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
