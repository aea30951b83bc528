// strata import SOURCE REF: a rootfs directory or tarball becomes a new
// one-layer image.
#include <ctime>

#include <fmt/format.h>

#include "oci/import.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb ImportVerb() {
  return {
      "import", "Create a one-layer image from a rootfs directory or tarball",
      [](CLI::App& app) -> Action {
        auto src = std::make_shared<std::string>();
        auto ref = std::make_shared<std::string>();
        auto compression = std::make_shared<std::string>("gzip");
        auto platform = std::make_shared<std::string>();
        app.add_option("SOURCE", *src, "Directory or tarball (plain, gzip, zstd)")->required();
        app.add_option("REF", *ref, "Name for the new image")->required();
        app.add_option("--compression", *compression, "gzip or zstd");
        app.add_option("--platform", *platform,
                       "os/arch[/variant] recorded in the config (default: this host's)");
        return [src, ref, compression, platform](Context& ctx) -> int {
          auto r = oci::Reference::Parse(*ref);
          if (!r) return Fail(r.error());
          oci::ImportOptions o;
          if (*compression == "zstd") {
            o.layer.compress.compression = oci::Compression::kZstd;
          } else if (*compression != "gzip") {
            return Fail(Error(ErrorCode::kInvalidArgument,
                              fmt::format("--compression {}: want gzip or zstd", *compression)));
          }
          if (!platform->empty()) {
            auto p = oci::Platform::Parse(*platform);
            if (!p) return Fail(p.error().Wrap("--platform"));
            o.platform = *p;
          }
          o.created = std::time(nullptr);
          if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
            o.created = std::atoll(sde);
            o.layer.tar.source_date_epoch = o.created;
          }
          auto store = ctx.OpenStore();
          if (!store) return Fail(store.error());
          auto res = oci::ImportRootfs(**store, *src, o);
          if (!res) return Fail(res.error().Wrap(fmt::format("import {}", *src)));
          if (auto s = (*store)->Tag(*r, res->manifest); !s) return Fail(s.error());
          fmt::print("{}\n", res->manifest.digest.ToString());
          return kExitOk;
        };
      }};
}

}  // namespace strata::cli
