// strata inspect REF: {"ref", "digest", "manifest", "config"} as JSON.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/json_util.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb InspectVerb() {
  return {"inspect", "Show an image's manifest and config as JSON", [](CLI::App& app) -> Action {
            auto ref = std::make_shared<std::string>();
            app.add_option("REF", *ref, "Image reference or digest")->required();
            return [ref](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto desc = (*store)->Resolve(*ref);
              if (!desc) return Fail(desc.error());
              auto img = (*store)->LoadImage(*desc);
              if (!img) return Fail(img.error().Wrap(*ref));
              nlohmann::json out;
              out["ref"] = *ref;
              out["digest"] = img->descriptor.digest.ToString();
              if (img->index) out["index_digest"] = img->index->digest.ToString();
              out["manifest"] = nlohmann::json::parse(img->manifest_bytes, nullptr, false);
              out["config"] = nlohmann::json::parse(img->config_bytes, nullptr, false);
              fmt::print("{}\n", oci::DumpJson(out, 2));
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
