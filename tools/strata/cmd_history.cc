// strata history REF: the image's history entries, newest first.
#include <fmt/format.h>

#include "tools/strata/verbs.h"

namespace strata::cli {

Verb HistoryVerb() {
  return {"history", "Show the history of an image", [](CLI::App& app) -> Action {
            auto ref = std::make_shared<std::string>();
            auto no_trunc = std::make_shared<bool>(false);
            app.add_option("REF", *ref, "Image reference")->required();
            app.add_flag("--no-trunc", *no_trunc, "Do not truncate CREATED BY");
            return [ref, no_trunc](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto img = (*store)->LoadImage(*ref);
              if (!img) return Fail(img.error());
              const auto& hist = img->config.history;
              // Pair non-empty history entries with layers, in order.
              std::vector<int64_t> sizes(hist.size(), 0);
              size_t layer = 0;
              for (size_t i = 0; i < hist.size(); ++i) {
                if (hist[i].empty_layer) continue;
                if (layer < img->manifest.layers.size())
                  sizes[i] = img->manifest.layers[layer].size;
                ++layer;
              }
              fmt::print("{:<16} {:<50} {:<10} {}\n", "CREATED", "CREATED BY", "SIZE", "COMMENT");
              for (size_t k = hist.size(); k-- > 0;) {
                std::string by = hist[k].created_by;
                if (!*no_trunc && by.size() > 47) by = by.substr(0, 46) + "…";
                fmt::print("{:<16} {:<50} {:<10} {}\n", HumanAge(hist[k].created), by,
                           HumanSize(sizes[k]), hist[k].comment);
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
