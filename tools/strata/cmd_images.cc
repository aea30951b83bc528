// strata images: list tagged images, as `docker images` does.
#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/image_index.h"
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
  // An index: its platforms, and the size of the children in the store (each
  // layer counted once); created is the newest child's.
  std::vector<oci::Descriptor> images = {t.descriptor};
  std::string platforms;
  auto view = oci::ReadIndexView(store, t.descriptor);
  if (view && *view) {
    images.clear();
    for (const auto& c : (*view)->children) {
      std::string p = c.descriptor.platform ? c.descriptor.platform->ToString() : "?";
      platforms += (platforms.empty() ? "" : ",") + p + (c.local ? "" : "(remote)");
      if (c.local) images.push_back(c.descriptor);
    }
    if (platforms.empty()) platforms = "none";
  }
  std::unordered_set<oci::Digest> counted;
  std::string newest;
  for (const auto& d : images) {
    auto img = store.LoadImageMetadata(d);  // lazy layers may be absent
    if (!img) continue;
    if (newest.empty() || img->config.created > newest) {
      newest = img->config.created;
      created = HumanAge(img->config.created);
      created_at = DockerTime(img->config.created);
    }
    if (bytes < 0) bytes = 0;
    if (counted.insert(img->manifest.config.digest).second) bytes += img->manifest.config.size;
    for (const auto& l : img->manifest.layers) {
      if (counted.insert(l.digest).second) bytes += l.size;
    }
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
  r["Platforms"] = platforms;  // "" for a plain image
  return r;
}

// Every field a row has, for checking a template when there are no rows.
nlohmann::json SampleRow() {
  nlohmann::json r;
  for (const char* k : {"ID", "Repository", "Tag", "Digest", "CreatedAt", "CreatedSince", "Size",
                        "VirtualSize", "SharedSize", "UniqueSize", "Containers", "Platforms"}) {
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
                           "{{.Digest}} {{.Size}} {{.CreatedAt}} {{.CreatedSince}} "
                           "{{.Platforms}} (of an index)");
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
                // An index: its platforms after SIZE, so a plain image's line
                // keeps its shape.
                const std::string platforms = r["Platforms"].get<std::string>();
                fmt::print("{:<40} {:<16} {}{:<14} {:<16} {}{}\n",
                           r["Repository"].get<std::string>(), r["Tag"].get<std::string>(), digest,
                           r["ID"].get<std::string>(), r["CreatedSince"].get<std::string>(),
                           r["Size"].get<std::string>(),
                           platforms.empty() ? "" : "  [index: " + platforms + "]");
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
