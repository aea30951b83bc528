// strata inspect REF...: {"ref", "digest", "manifest", "config"} as JSON, or,
// with --format, docker's image-inspect object through a template.
#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/image_index.h"
#include "oci/json_util.h"
#include "tools/strata/format.h"
#include "tools/strata/platform_flag.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

using nlohmann::json;

// docker image inspect's object for `img`. Id is strata's image ID (the
// manifest digest); every key of docker's Config is present so a template
// naming one never fails because the image leaves it unset.
json DockerInspect(const oci::Image& img, const std::vector<oci::TaggedImage>& tags) {
  json out;
  out["Id"] = img.descriptor.digest.ToString();
  json repo_tags = json::array(), repo_digests = json::array();
  for (const auto& t : tags) {
    if (t.descriptor.digest != img.descriptor.digest &&
        !(img.index && t.descriptor.digest == img.index->digest)) {
      continue;
    }
    std::string repo = t.ref.WithTag("").Familiar();
    repo = repo.substr(0, repo.find('@'));
    if (!t.ref.tag().empty()) repo_tags.push_back(t.ref.Familiar());
    std::string d = repo + "@" + t.descriptor.digest.ToString();
    if (std::find(repo_digests.begin(), repo_digests.end(), d) == repo_digests.end()) {
      repo_digests.push_back(d);
    }
  }
  out["RepoTags"] = repo_tags;
  out["RepoDigests"] = repo_digests;
  out["Parent"] = "";
  out["Comment"] = "";
  if (!img.config.history.empty()) out["Comment"] = img.config.history.back().comment;
  out["Created"] = img.config.created;
  out["Author"] = img.config.author;
  out["Architecture"] = img.config.architecture;
  out["Os"] = img.config.os;
  out["Variant"] = img.config.variant;
  int64_t size = 0;
  for (const auto& l : img.manifest.layers) size += l.size;
  out["Size"] = size;
  json cfg = img.config.ToJson().value("config", json::object());
  if (!cfg.is_object()) cfg = json::object();
  const json defaults = {{"Hostname", ""},
                         {"Domainname", ""},
                         {"User", ""},
                         {"AttachStdin", false},
                         {"AttachStdout", false},
                         {"AttachStderr", false},
                         {"ExposedPorts", json::object()},
                         {"Tty", false},
                         {"OpenStdin", false},
                         {"StdinOnce", false},
                         {"Env", json::array()},
                         {"Cmd", nullptr},
                         {"Image", ""},
                         {"Volumes", json::object()},
                         {"WorkingDir", ""},
                         {"Entrypoint", nullptr},
                         {"OnBuild", json::array()},
                         {"Labels", json::object()},
                         {"StopSignal", ""},
                         {"Shell", json::array()},
                         {"Healthcheck", nullptr},
                         {"ArgsEscaped", false}};
  for (auto it = defaults.begin(); it != defaults.end(); ++it) {
    if (!cfg.contains(it.key()) || cfg[it.key()].is_null()) cfg[it.key()] = it.value();
  }
  out["Config"] = cfg;
  json layers = json::array();
  for (const auto& d : img.config.diff_ids) layers.push_back(d.ToString());
  out["RootFS"] = {{"Type", "layers"}, {"Layers", layers}};
  out["Descriptor"] = img.descriptor.ToJson();
  out["Metadata"] = {{"LastTagTime", ""}};
  return out;
}

// `inspect REF` of an index: {"ref", "digest", "index", "manifests"}, each
// manifest with its platform, size and whether the store has it.
json IndexInspect(const std::string& ref, const oci::IndexView& view, std::string_view bytes) {
  json out;
  out["ref"] = ref;
  out["digest"] = view.descriptor.digest.ToString();
  out["mediaType"] = view.descriptor.media_type;
  out["index"] = json::parse(bytes, nullptr, false);
  json manifests = json::array();
  for (const auto& c : view.children) {
    json m;
    m["digest"] = c.descriptor.digest.ToString();
    m["mediaType"] = c.descriptor.media_type;
    m["size"] = c.descriptor.size;
    m["platform"] = c.descriptor.platform ? c.descriptor.platform->ToString() : "";
    m["local"] = c.local;
    if (!c.local && !c.sources.empty()) {
      m["source"] = c.sources.front().registry + "/" + c.sources.front().repository;
    }
    manifests.push_back(std::move(m));
  }
  out["manifests"] = std::move(manifests);
  return out;
}

}  // namespace

Verb InspectVerb() {
  return {"inspect", "Show an image's manifest and config as JSON", [](CLI::App& app) -> Action {
            auto refs = std::make_shared<std::vector<std::string>>();
            auto format = std::make_shared<std::string>();
            app.add_option("REF", *refs, "Image reference or digest")->required();
            app.add_option("-f,--format", *format,
                           "json (docker's inspect array), or a Go template: {{.Id}} "
                           "{{.Config.Env}} {{json .Config}} {{.Architecture}} {{.Os}} "
                           "{{index .RepoTags 0}} {{json .}}");
            auto platform_s = std::make_shared<std::string>();
            app.add_option("--platform", *platform_s,
                           "Of an index, inspect this platform's image (os/arch[/variant])");
            return [refs, format, platform_s](Context& ctx) -> int {
              auto platform = ParsePlatformFlag(*platform_s);
              if (!platform) return Fail(platform.error());
              std::optional<Template> tmpl;
              std::string trimmed = *format;
              trimmed.erase(0, trimmed.find_first_not_of(" \t\n"));
              trimmed.erase(trimmed.find_last_not_of(" \t\n") + 1);
              const bool as_json = trimmed == "json";
              if (!format->empty() && !as_json) {
                auto t = Template::Parse(*format);
                if (!t) {
                  fmt::print(stderr, "strata: --format: {}\n", t.error().message());
                  return kExitUsage;
                }
                tmpl = std::move(*t);
              }
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              std::vector<oci::TaggedImage> tags;
              if (!format->empty()) {
                auto l = (*store)->ListImages();
                if (!l) return Fail(l.error());
                tags = std::move(*l);
              }
              json all = json::array();
              int rc = kExitOk;
              for (const auto& ref : *refs) {
                auto desc = (*store)->Resolve(ref);
                if (!desc) {
                  rc = Fail(desc.error());
                  continue;
                }
                auto view = oci::ReadIndexView(**store, *desc);
                if (!view) {
                  rc = Fail(view.error().Wrap(ref));
                  continue;
                }
                // An index without --platform: the index itself in the default
                // shape; a template or json (docker's image object) needs one
                // image, the host's.
                if (*view && !*platform && format->empty()) {
                  auto bytes = (*store)->ReadBlob(desc->digest);
                  if (!bytes) {
                    rc = Fail(bytes.error().Wrap(ref));
                    continue;
                  }
                  fmt::print("{}\n", oci::DumpJson(IndexInspect(ref, **view, *bytes), 2));
                  continue;
                }
                auto img = oci::LoadOneImage(**store, ref, *platform, /*layers=*/false);
                if (!img) {
                  rc = Fail(img.error());
                  continue;
                }
                if (as_json) {
                  all.push_back(DockerInspect(*img, tags));
                  continue;
                }
                if (tmpl) {
                  auto line = tmpl->Render(DockerInspect(*img, tags));
                  if (!line) {
                    fmt::print(stderr, "strata: --format: {}\n", line.error().message());
                    return kExitUsage;
                  }
                  fmt::print("{}\n", *line);
                  continue;
                }
                json out;
                out["ref"] = ref;
                out["digest"] = img->descriptor.digest.ToString();
                if (img->index) out["index_digest"] = img->index->digest.ToString();
                out["manifest"] = json::parse(img->manifest_bytes, nullptr, false);
                out["config"] = json::parse(img->config_bytes, nullptr, false);
                fmt::print("{}\n", oci::DumpJson(out, 2));
              }
              if (as_json) fmt::print("{}\n", all.dump(4));
              return rc;
            };
          }};
}

}  // namespace strata::cli
