// strata push REF [DEST]: upload the image REF names in the store to DEST
// (default: REF itself); prints the digest the registry stored. Blobs the
// destination registry has in another repository (recorded when they were
// pulled or pushed, oci/blob_sources.h) are mounted, not uploaded.
#include <fmt/format.h>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "tools/strata/attestations.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {

Verb PushVerb() {
  return {"push", "Push an image to a registry", [](CLI::App& app) -> Action {
            auto src = std::make_shared<std::string>();
            auto dst = std::make_shared<std::string>();
            app.add_option("REF", *src, "Image in the store")->required();
            app.add_option("DEST", *dst, "Destination reference (default: REF)");
            return [src, dst](Context& ctx) -> int {
              auto dest = oci::Reference::Parse(dst->empty() ? *src : *dst);
              if (!dest) return Fail(dest.error());
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto creds = MakeCredentialStore(ctx);
              if (!creds) return Fail(creds.error());
              StderrProgress progress(ctx.global.quiet);
              registry::PushOptions opts;
              opts.progress = &progress;
              auto client = MakeClient(ctx, *creds);
              auto pushed = client->Push(**store, *src, *dest, opts);
              if (!pushed) return Fail(pushed.error());
              PrintPushSummary(*pushed, ctx.global.quiet);
              // The image's attestations (referrers recorded in the store) go
              // with it: of the manifest, or of each manifest of an index.
              std::vector<oci::Digest> subjects = {pushed->descriptor.digest};
              if (oci::media_type::IsIndex(pushed->descriptor.media_type)) {
                auto bytes = (*store)->ReadBlob(pushed->descriptor.digest);
                auto idx = bytes ? oci::Index::Parse(*bytes)
                                 : Result<oci::Index>(Unexpected(bytes.error()));
                if (!idx) return Fail(idx.error());
                for (const auto& m : idx->manifests) subjects.push_back(m.digest);
              }
              for (const auto& d : subjects) {
                if (!(*store)->Has(d)) continue;
                if (auto s = PushAttestations(*client, **store, d, *dest, opts, ctx.global.quiet);
                    !s) {
                  return Fail(s.error());
                }
              }
              fmt::print("{}\n", pushed->descriptor.digest.ToString());
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
