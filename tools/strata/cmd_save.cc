// strata save REF... -o FILE [--format oci-archive|docker-archive]: write
// images to an archive that docker/podman load (docker-archive, the default,
// as with docker and podman) or any OCI tool reads (oci-archive). Prints
// nothing on success.
#include <fmt/format.h>

#include "oci/archive.h"
#include "tools/strata/platform_flag.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb SaveVerb() {
  return {"save", "Save images to an archive file", [](CLI::App& app) -> Action {
            auto refs = std::make_shared<std::vector<std::string>>();
            auto output = std::make_shared<std::string>();
            auto format = std::make_shared<std::string>("docker-archive");
            app.add_option("REF", *refs, "Images to save (tags or digests)")->required();
            app.add_option("-o,--output", *output, "Archive file to write")->required();
            app.add_option("--format", *format, "oci-archive or docker-archive")
                ->check(CLI::IsMember({"oci-archive", "docker-archive"}));
            auto platform_s = std::make_shared<std::string>();
            app.add_option("--platform", *platform_s,
                           "docker-archive: the platform of an index to save (an oci-archive "
                           "keeps the whole index)");
            return [refs, output, format, platform_s](Context& ctx) -> int {
              auto fmt_kind = oci::ParseArchiveFormat(*format);
              if (!fmt_kind) return Fail(fmt_kind.error());
              auto platform = ParsePlatformFlag(*platform_s);
              if (!platform) return Fail(platform.error());
              const bool oci = *fmt_kind == oci::ArchiveFormat::kOciArchive;
              if (oci && *platform) {
                return Fail(Error(ErrorCode::kInvalidArgument,
                                  "--platform applies to --format docker-archive only: an "
                                  "oci-archive keeps every platform of an index"));
              }
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              for (const auto& ref : *refs) {
                if (!oci) {
                  // A docker-archive holds one image per ref: an index needs
                  // --platform unless one child matches the host (the error
                  // lists its platforms).
                  auto one = oci::LoadOneImage(**store, ref, *platform, /*layers=*/false);
                  if (!one) return Fail(one.error().Wrap("save --format docker-archive"));
                }
                if (auto s = FetchLazyLayers(ctx, **store, ref, *platform, /*all_children=*/oci);
                    !s) {
                  return Fail(s.error());
                }
              }
              if (auto s = oci::SaveArchive(**store, *refs, *output, *fmt_kind, *platform); !s) {
                return Fail(s.error());
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
