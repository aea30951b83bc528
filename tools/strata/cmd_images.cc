// strata images: list tagged images, as `docker images` does.
#include <algorithm>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tools/strata/format.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

struct ImagesFlags {
  bool digests = false;
  bool no_trunc = false;
  std::string format;
};

// One row as docker's `images --format` sees it. The ID is strata's image ID,
// the manifest digest (the CLI contract), short unless --no-trunc.
nlohmann::json Row(const oci::Store& store, const oci::TaggedImage& t, bool no_trunc) {
  std::string repo = t.ref.WithTag("").Familiar();
  if (t.ref.digest()) repo = repo.substr(0, repo.find('@'));
  std::string tag = t.ref.tag().empty() ? "<none>" : t.ref.tag();
  std::string created, created_at, size = "?";
  int64_t bytes = -1;
  auto img = store.LoadImageMetadata(t.descriptor);  // lazy layers may be absent
  if (img) {
    created = HumanAge(img->config.created);
    created_at = DockerTime(img->config.created);
    bytes = img->manifest.config.size;
    for (const auto& l : img->manifest.layers) bytes += l.size;
    size = HumanSize(bytes);
  }
  nlohmann::json r;
  r["ID"] = no_trunc ? t.descriptor.digest.ToString() : t.descriptor.digest.Short();
  r["Repository"] = repo;
  r["Tag"] = tag;
  r["Digest"] = t.descriptor.digest.ToString();
  r["CreatedAt"] = created_at;
  r["CreatedSince"] = created;
  r["Size"] = size;
  r["VirtualSize"] = size;
  r["SharedSize"] = "N/A";
  r["UniqueSize"] = "N/A";
  r["Containers"] = "N/A";
  return r;
}

// Every field a row has, for checking a template when there are no rows.
nlohmann::json SampleRow() {
  nlohmann::json r;
  for (const char* k : {"ID", "Repository", "Tag", "Digest", "CreatedAt", "CreatedSince", "Size",
                        "VirtualSize", "SharedSize", "UniqueSize", "Containers"}) {
    r[k] = "";
  }
  return r;
}

}  // namespace

Verb ImagesVerb() {
  return {"images", "List images in the store", [](CLI::App& app) -> Action {
            auto f = std::make_shared<ImagesFlags>();
            app.add_flag("--digests", f->digests, "Show a DIGEST column (the manifest digest)");
            app.add_flag("--no-trunc", f->no_trunc, "Do not truncate image IDs");
            app.add_option("--format", f->format,
                           "json, or a Go template: {{.ID}} {{.Repository}} {{.Tag}} "
                           "{{.Digest}} {{.Size}} {{.CreatedAt}} {{.CreatedSince}}");
            return [f](Context& ctx) -> int {
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto images = (*store)->ListImages();
              if (!images) return Fail(images.error());
              std::sort(images->begin(), images->end(), [](const auto& a, const auto& b) {
                return a.ref.Familiar() < b.ref.Familiar();
              });
              if (ctx.global.quiet) {
                // Full digests (usable as a REF), with or without --no-trunc.
                for (const auto& t : *images) fmt::print("{}\n", t.descriptor.digest.ToString());
                return kExitOk;
              }
              if (!f->format.empty()) {
                std::vector<nlohmann::json> rows;
                for (const auto& t : *images) rows.push_back(Row(**store, t, f->no_trunc));
                nlohmann::json sample = SampleRow();
                return PrintRows(f->format, rows, sample,
                                 {{"ID", "IMAGE ID"},
                                  {"CreatedSince", "CREATED"},
                                  {"CreatedAt", "CREATED AT"},
                                  {"VirtualSize", "VIRTUAL SIZE"}});
              }
              // As docker: --digests adds a DIGEST column before IMAGE ID.
              const std::string digest_title = f->digests ? fmt::format("{:<72} ", "DIGEST") : "";
              fmt::print("{:<40} {:<16} {}{:<14} {:<16} {}\n", "REPOSITORY", "TAG", digest_title,
                         "IMAGE ID", "CREATED", "SIZE");
              for (const auto& t : *images) {
                auto r = Row(**store, t, f->no_trunc);
                const std::string digest =
                    f->digests ? fmt::format("{:<72} ", r["Digest"].get<std::string>()) : "";
                fmt::print("{:<40} {:<16} {}{:<14} {:<16} {}\n", r["Repository"].get<std::string>(),
                           r["Tag"].get<std::string>(), digest, r["ID"].get<std::string>(),
                           r["CreatedSince"].get<std::string>(), r["Size"].get<std::string>());
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
