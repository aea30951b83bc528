// strata history REF: the image's history entries, newest first.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tools/strata/format.h"
#include "tools/strata/platform_flag.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

struct HistoryFlags {
  std::string ref;
  bool no_trunc = false;
  std::string format;
  std::string platform;
};

}  // namespace

Verb HistoryVerb() {
  return {"history", "Show the history of an image", [](CLI::App& app) -> Action {
            auto f = std::make_shared<HistoryFlags>();
            app.add_option("REF", f->ref, "Image reference")->required();
            app.add_flag("--no-trunc", f->no_trunc, "Do not truncate CREATED BY or IDs");
            app.add_option("--format", f->format,
                           "json, or a Go template: {{.ID}} {{.CreatedBy}} {{.Size}} "
                           "{{.CreatedSince}} {{.CreatedAt}} {{.Comment}}");
            app.add_option("--platform", f->platform,
                           "Platform of an index to show (os/arch[/variant])");
            return [f](Context& ctx) -> int {
              auto platform = ParsePlatformFlag(f->platform);
              if (!platform) return Fail(platform.error());
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              // Lazy layers may be absent: metadata only.
              auto img = oci::LoadOneImage(**store, f->ref, *platform, /*layers=*/false);
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
              // As docker: the newest entry carries the image ID, older ones
              // "<missing>" (their intermediate images are not in the store).
              const std::string id =
                  f->no_trunc ? img->descriptor.digest.ToString() : img->descriptor.digest.Short();
              if (ctx.global.quiet) {
                for (size_t k = hist.size(); k-- > 0;) {
                  fmt::print("{}\n", k + 1 == hist.size() ? id : "<missing>");
                }
                return kExitOk;
              }
              if (!f->format.empty()) {
                std::vector<nlohmann::json> rows;
                for (size_t k = hist.size(); k-- > 0;) {
                  nlohmann::json r;
                  r["ID"] = k + 1 == hist.size() ? id : "<missing>";
                  r["CreatedAt"] = DockerTime(hist[k].created);
                  r["CreatedSince"] = HumanAge(hist[k].created);
                  r["CreatedBy"] = hist[k].created_by;
                  r["Size"] = HumanSize(sizes[k]);
                  r["Comment"] = hist[k].comment;
                  r["Author"] = hist[k].author;
                  r["EmptyLayer"] = hist[k].empty_layer;
                  rows.push_back(std::move(r));
                }
                nlohmann::json sample = {
                    {"ID", ""},   {"CreatedAt", ""}, {"CreatedSince", ""}, {"CreatedBy", ""},
                    {"Size", ""}, {"Comment", ""},   {"Author", ""},       {"EmptyLayer", false}};
                return PrintRows(f->format, rows, sample,
                                 {{"ID", "IMAGE"},
                                  {"CreatedSince", "CREATED"},
                                  {"CreatedAt", "CREATED AT"},
                                  {"CreatedBy", "CREATED BY"}});
              }
              fmt::print("{:<16} {:<50} {:<10} {}\n", "CREATED", "CREATED BY", "SIZE", "COMMENT");
              for (size_t k = hist.size(); k-- > 0;) {
                std::string by = hist[k].created_by;
                if (!f->no_trunc && by.size() > 47) by = by.substr(0, 46) + "…";
                fmt::print("{:<16} {:<50} {:<10} {}\n", HumanAge(hist[k].created), by,
                           HumanSize(sizes[k]), hist[k].comment);
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
