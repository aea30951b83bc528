// strata load -i FILE|DIR: load an oci-archive, a docker-archive (optionally
// compressed) or an OCI layout directory. Prints one line per image as docker
// does: "Loaded image: REF", or "Loaded image ID: sha256:..." when untagged.
#include <fmt/format.h>

#include "oci/archive.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb LoadVerb() {
  return {"load", "Load images from an archive or OCI layout directory",
          [](CLI::App& app) -> Action {
            auto input = std::make_shared<std::string>();
            app.add_option("-i,--input", *input, "oci-archive, docker-archive or OCI layout dir")
                ->required();
            return [input](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto loaded = oci::Load(**store, *input);
              if (!loaded) return Fail(loaded.error());
              for (const auto& img : *loaded) {
                if (img.ref) {
                  fmt::print("Loaded image: {}\n", img.ref->Familiar());
                } else {
                  fmt::print("Loaded image ID: {}\n", img.descriptor.digest.ToString());
                }
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
