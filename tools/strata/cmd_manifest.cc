// strata manifest create DEST SRC... | -t DEST... SRC...: one image index of
// every platform manifest of the sources (images or indexes, in the store or
// on registries), as `docker buildx imagetools create` makes it; pushed to a
// registry DEST (the sources' blobs are mounted across repositories, never
// downloaded: registry/index_merge.h) or tagged in the store (--local, or
// when every source is local). Prints the index digest.
// strata manifest inspect [--raw] REF: a manifest or index, local or remote.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/image_index.h"
#include "oci/json_util.h"
#include "oci/media_types.h"
#include "registry/index_merge.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

using nlohmann::json;

struct CreateFlags {
  std::vector<std::string> args;
  std::vector<std::string> tags;
  std::vector<std::string> annotations;
  bool dry_run = false;
  bool local = false;
  bool push = false;
  bool append = false;
};

struct InspectFlags {
  std::string ref;
  bool raw = false;
};

// A source is local when the store resolves it, else a registry reference.
bool IsLocal(const oci::Store& store, const std::string& s) { return store.Resolve(s).has_value(); }

int Create(Context& ctx, const CreateFlags& f) {
  std::vector<std::string> dests = f.tags;
  std::vector<std::string> sources = f.args;
  if (dests.empty()) {
    if (sources.empty()) {
      return Fail(Error(ErrorCode::kInvalidArgument, "manifest create: DEST and SRC... required"));
    }
    dests.push_back(sources.front());
    sources.erase(sources.begin());
  }
  if (f.local && f.push) {
    return Fail(Error(ErrorCode::kInvalidArgument, "--local and --push exclude each other"));
  }
  if (f.append) {
    // buildx --append: the existing DEST's manifests come first.
    sources.insert(sources.begin(), dests.front());
  }
  if (sources.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument, "manifest create: no source image named"));
  }
  std::map<std::string, std::string> annotations;
  for (const auto& a : f.annotations) {
    auto kv = registry::ParseIndexAnnotation(a);
    if (!kv) return Fail(kv.error());
    annotations[kv->first] = kv->second;
  }
  std::vector<oci::Reference> dest_refs;
  for (const auto& d : dests) {
    auto r = oci::Reference::Parse(d);
    if (!r) return Fail(r.error().Wrap("manifest create: destination"));
    if (r->digest()) {
      return Fail(Error(ErrorCode::kInvalidArgument,
                        fmt::format("manifest create: destination {} is a digest reference", d)));
    }
    dest_refs.push_back(*r);
  }
  auto store = ctx.OpenStore();
  if (!store) return Fail(store.error());
  bool all_local = true;
  std::vector<bool> local(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    local[i] = IsLocal(**store, sources[i]);
    all_local = all_local && local[i];
  }
  const bool dest_local = f.local || (all_local && !f.push);
  auto creds = MakeCredentialStore(ctx);
  if (!creds) return Fail(creds.error());
  auto client = MakeClient(ctx, *creds);
  std::vector<registry::MergeEntry> entries;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (local[i]) {
      auto got = registry::GatherLocal(**store, sources[i]);
      if (!got) return Fail(got.error());
      entries.insert(entries.end(), got->begin(), got->end());
      continue;
    }
    auto ref = oci::Reference::Parse(sources[i]);
    if (!ref) return Fail(ref.error().Wrap(fmt::format("manifest create: source {}", sources[i])));
    auto got = registry::GatherRemote(client->sessions(), **store, *ref);
    if (!got) return Fail(got.error().error());
    for (auto& e : *got) e.source = sources[i];
    entries.insert(entries.end(), got->begin(), got->end());
  }
  auto index = registry::MergeIndexes(entries, annotations);
  if (!index) return Fail(index.error());
  const std::string bytes = oci::DumpJson(index->ToJson(), 2);
  if (f.dry_run) {
    fmt::print("{}\n", bytes);
    return kExitOk;
  }
  auto desc = (*store)->Put(bytes, std::string(oci::media_type::kImageIndex));
  if (!desc) return Fail(desc.error().Wrap("manifest create"));
  StderrProgress progress(ctx.global.quiet);
  for (const auto& dest : dest_refs) {
    if (dest_local) {
      if (auto s = (*store)->Tag(dest, *desc); !s) return Fail(s.error());
      if (!ctx.global.quiet) fmt::print(stderr, "Tagged {}\n", dest.Familiar());
      continue;
    }
    registry::PushOptions opts;
    opts.progress = &progress;
    auto pushed = client->Push(**store, desc->digest.ToString(), dest, opts);
    if (!pushed) return Fail(pushed.error());
    PrintPushSummary(*pushed, ctx.global.quiet);
  }
  fmt::print("{}\n", desc->digest.ToString());
  return kExitOk;
}

int Inspect(Context& ctx, const InspectFlags& f) {
  auto store = ctx.OpenStore();
  if (!store) return Fail(store.error());
  std::string bytes;
  oci::Descriptor desc;
  if (auto d = (*store)->Resolve(f.ref)) {
    auto b = (*store)->ReadBlob(d->digest);
    if (!b) return Fail(b.error().Wrap(f.ref));
    bytes = std::move(*b);
    desc = *d;
  } else {
    auto ref = oci::Reference::Parse(f.ref);
    if (!ref) return Fail(ref.error());
    auto creds = MakeCredentialStore(ctx);
    if (!creds) return Fail(creds.error());
    auto client = MakeClient(ctx, *creds);
    auto r = client->Resolve(*ref);
    if (!r) return Fail(r.error());
    bytes = std::move(r->bytes);
    desc = r->descriptor;
  }
  if (f.raw) {
    fmt::print("{}", bytes);
    return kExitOk;
  }
  auto mt = oci::DetectManifestMediaType(bytes);
  if (!mt) return Fail(mt.error().Wrap(f.ref));
  json out;
  out["ref"] = f.ref;
  out["digest"] = desc.digest.ToString();
  out["mediaType"] = *mt;
  out["size"] = static_cast<int64_t>(bytes.size());
  json doc = json::parse(bytes, nullptr, false);
  if (oci::media_type::IsIndex(*mt)) {
    auto idx = oci::Index::Parse(bytes);
    if (!idx) return Fail(idx.error().Wrap(f.ref));
    json manifests = json::array();
    for (const auto& m : idx->manifests) {
      manifests.push_back({{"digest", m.digest.ToString()},
                           {"mediaType", m.media_type},
                           {"size", m.size},
                           {"platform", m.platform ? m.platform->ToString() : ""}});
    }
    out["manifests"] = std::move(manifests);
    out["index"] = std::move(doc);
  } else {
    out["manifest"] = std::move(doc);
  }
  fmt::print("{}\n", oci::DumpJson(out, 2));
  return kExitOk;
}

}  // namespace

Verb ManifestVerb() {
  return {"manifest", "Create and inspect image indexes (multi-platform manifests)",
          [](CLI::App& app) -> Action {
            app.require_subcommand(1);
            auto which = std::make_shared<std::string>();
            auto cf = std::make_shared<CreateFlags>();
            CLI::App* create = app.add_subcommand(
                "create",
                "Create an index of the platform manifests of SRC... (images or indexes, "
                "local or on registries) as DEST");
            create->fallthrough();
            create->add_option("ARGS", cf->args, "DEST SRC... (or SRC... with -t DEST)");
            create->add_option("-t,--tag", cf->tags, "Destination reference (repeatable)")
                ->allow_extra_args(false);
            create
                ->add_option("--annotation", cf->annotations,
                             "Index annotation key=value (or index:key=value; repeatable)")
                ->allow_extra_args(false);
            create->add_flag("--dry-run", cf->dry_run,
                             "Print the index JSON; store and push nothing");
            create->add_flag("--local", cf->local, "Tag DEST in the local store, do not push");
            create->add_flag("--push", cf->push,
                             "Push DEST to its registry even when every source is local");
            create->add_flag("--append", cf->append,
                             "Add the manifests of the existing DEST (the first -t) first");
            create->final_callback([which] { *which = "create"; });
            auto inf = std::make_shared<InspectFlags>();
            CLI::App* inspect =
                app.add_subcommand("inspect", "Show a manifest or index (local, else registry)");
            inspect->fallthrough();
            inspect->add_option("REF", inf->ref, "Reference")->required();
            inspect->add_flag("--raw", inf->raw, "Print the document's exact bytes");
            inspect->final_callback([which] { *which = "inspect"; });
            return [which, cf, inf](Context& ctx) -> int {
              if (*which == "create") return Create(ctx, *cf);
              if (*which == "inspect") return Inspect(ctx, *inf);
              return Fail(Error(ErrorCode::kInvalidArgument, "manifest: create or inspect"));
            };
          }};
}

}  // namespace strata::cli
