// strata images: list tagged images, as `docker images` does.
#include <algorithm>

#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb ImagesVerb() {
  return {"images", "List images in the store", [](CLI::App& app) -> Action {
            auto digests = std::make_shared<bool>(false);
            app.add_flag("--digests", *digests, "Show full manifest digests");
            return [digests](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto images = (*store)->ListImages();
              if (!images) return Fail(images.error());
              std::sort(images->begin(), images->end(), [](const auto& a, const auto& b) {
                return a.ref.Familiar() < b.ref.Familiar();
              });
              if (ctx.global.quiet) {
                for (const auto& t : *images) fmt::print("{}\n", t.descriptor.digest.ToString());
                return kExitOk;
              }
              fmt::print("{:<40} {:<16} {:<14} {:<16} {}\n", "REPOSITORY", "TAG",
                         *digests ? "DIGEST" : "IMAGE ID", "CREATED", "SIZE");
              for (const auto& t : *images) {
                std::string repo = t.ref.WithTag("").Familiar();
                if (t.ref.digest()) repo = repo.substr(0, repo.find('@'));
                std::string tag = t.ref.tag().empty() ? "<none>" : t.ref.tag();
                std::string created, size = "?";
                auto img = (*store)->LoadImage(t.descriptor);
                if (img) {
                  created = HumanAge(img->config.created);
                  int64_t total = img->manifest.config.size;
                  for (const auto& l : img->manifest.layers) total += l.size;
                  size = HumanSize(total);
                }
                fmt::print("{:<40} {:<16} {:<14} {:<16} {}\n", repo, tag,
                           *digests ? t.descriptor.digest.ToString() : t.descriptor.digest.Short(),
                           created, size);
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
