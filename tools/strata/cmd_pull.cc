// strata pull REF [--platform OS/ARCH[/VARIANT]]: fetch an image from its
// registry into the store; prints the manifest digest.
#include <fmt/format.h>

#include "oci/image_index.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb PullVerb() {
  return {"pull", "Pull an image from a registry", [](CLI::App& app) -> Action {
            auto ref_s = std::make_shared<std::string>();
            auto platform_s = std::make_shared<std::string>();
            app.add_option("REF", *ref_s, "Image reference")->required();
            app.add_option("--platform", *platform_s, "Platform to select (os/arch[/variant])");
            auto all = std::make_shared<bool>(false);
            app.add_flag("-a,--all-platforms", *all,
                         "Of an index, pull every platform and tag the index");
            return [ref_s, platform_s, all](Context& ctx) -> int {
              auto ref = oci::Reference::Parse(*ref_s);
              if (!ref) return Fail(ref.error());
              registry::PullOptions opts;
              opts.all_platforms = *all;
              if (*all && !platform_s->empty()) {
                return Fail(Error(ErrorCode::kInvalidArgument,
                                  "--platform and --all-platforms exclude each other"));
              }
              if (!platform_s->empty()) {
                auto p = oci::ParseKnownPlatform(*platform_s);
                if (!p) return Fail(p.error());
                opts.platform = *p;
              }
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto creds = MakeCredentialStore(ctx);
              if (!creds) return Fail(creds.error());
              StderrProgress progress(ctx.global.quiet);
              opts.progress = &progress;
              auto client = MakeClient(ctx, *creds);
              auto pulled = client->Pull(**store, *ref, opts);
              if (!pulled) return Fail(pulled.error());
              fmt::print("{}\n", pulled->manifest.digest.ToString());
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
