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
                // A tag removes that tag; an image ID or digest (as `docker rmi`
                // takes) removes every tag pointing at that image.
                auto ref = oci::Reference::Parse(r);
                bool by_id = r.starts_with("sha256:") || !ref || ref->digest().has_value();
                if (ref && !by_id) {
                  if (auto s = (*store)->Untag(*ref); !s) {
                    // Not a tag: maybe a short image ID that also parses as a name.
                    auto d = (*store)->Resolve(r);
                    if (!d) {
                      rc = Fail(s.error());
                      continue;
                    }
                    by_id = true;
                  } else {
                    fmt::print("Untagged: {}\n", ref->Familiar());
                    continue;
                  }
                }
                auto desc = (*store)->Resolve(r);
                if (!desc) {
                  rc = Fail(desc.error());
                  continue;
                }
                auto images = (*store)->ListImages();
                if (!images) {
                  rc = Fail(images.error());
                  continue;
                }
                int removed = 0;
                for (const auto& t : *images) {
                  if (t.descriptor.digest != desc->digest) continue;
                  if (auto s = (*store)->Untag(t.ref); !s) {
                    rc = Fail(s.error());
                    continue;
                  }
                  fmt::print("Untagged: {}\n", t.ref.Familiar());
                  ++removed;
                }
                if (removed == 0) {
                  rc = Fail(Error(ErrorCode::kNotFound,
                                  fmt::format("image {} has no tags to remove", r)));
                }
              }
              return rc;
            };
          }};
}

}  // namespace strata::cli
