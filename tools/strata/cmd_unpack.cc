// strata unpack REF DIR: the image's flattened rootfs into a new directory.
#include <unistd.h>

#include <fmt/format.h>

#include "oci/unpack.h"
#include "tools/strata/platform_flag.h"
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
            auto platform_s = std::make_shared<std::string>();
            app.add_option("--platform", *platform_s,
                           "Platform of an index to unpack (os/arch[/variant])");
            return [ref, dir, platform_s](Context& ctx) -> int {
              auto platform = ParsePlatformFlag(*platform_s);
              if (!platform) return Fail(platform.error());
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              if (auto s = FetchLazyLayers(ctx, **store, *ref, *platform); !s) {
                return Fail(s.error());
              }
              auto img = oci::LoadOneImage(**store, *ref, *platform, /*layers=*/true);
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
