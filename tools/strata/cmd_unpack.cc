// strata unpack REF DIR: the image's flattened rootfs into a new directory.
#include <unistd.h>

#include <fmt/format.h>

#include "oci/unpack.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb UnpackVerb() {
  return {"unpack", "Write an image's flattened rootfs into a new directory",
          [](CLI::App& app) -> Action {
            auto ref = std::make_shared<std::string>();
            auto dir = std::make_shared<std::string>();
            app.add_option("REF", *ref, "Image")->required();
            app.add_option("DIR", *dir, "Target directory (new or empty)")->required();
            return [ref, dir](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              if (auto s = FetchLazyLayers(ctx, **store, *ref); !s) return Fail(s.error());
              auto img = (*store)->LoadImage(*ref);
              if (!img) return Fail(img.error());
              oci::UnpackOptions o;
              o.preserve_owners = ::geteuid() == 0;
              auto max_layer = ctx.MaxLayerBytes();
              if (!max_layer) return Fail(max_layer.error());
              o.max_layer_bytes = *max_layer;
              if (auto s = oci::UnpackImage(**store, *img, *dir, o); !s) {
                return Fail(s.error().Wrap(fmt::format("unpack {}", *ref)));
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
