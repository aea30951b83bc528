// One rule for every `from`: FROM's image, COPY --from and RUN --mount from=.
// A name of an earlier stage is that stage's result; anything else is an
// image reference, taken from the store unless --pull=always, else pulled
// through the injected resolver for the build's target platform, and its
// layer blobs checked before snapshots stand in for them. A FROM whose stage
// never reads the base's file system may leave its layers at the registry
// (lazy base layers, BuildOptions::metadata_resolver).
#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/frontend/stage_graph.h"
#include "oci/media_types.h"
#include "oci/snapshots.h"

namespace strata::builder {

Result<ResolvedSource> Build::ResolveSource(const std::string& from, std::string_view what) {
  // --build-context NAME=...: overrides the stage or image NAME.
  if (const NamedContext* nc = FindNamedContext(opts_.named_contexts, from)) {
    return ResolveNamedContext(
        store_, opts_, *nc, [&](const std::string& image) { return ResolveImage(image, what); },
        [&](ResolvedInput in) { return Resolved(std::move(in)); });
  }
  std::vector<std::string> names;
  for (const auto& s : plan_.stages) names.push_back(s.name);
  if (auto idx = StageGraph::Resolve(names, from)) {
    auto built = Done(*idx);
    if (!built) return MakeError(ErrorCode::kInternal, "stage {} not built", from);
    ResolvedSource r;
    r.cache_key = built->key.ToString();
    r.state = std::move(*built);
    r.is_stage = true;
    return r;
  }
  return ResolveImage(from, what);
}

Status Build::FetchLazyLayers(const std::vector<oci::Descriptor>& layers, std::string_view what) {
  for (const auto& l : layers) {
    if (store_.Has(l.digest)) continue;
    if (!opts_.blob_fetcher) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "{}: layer {} is not in the store (a lazy base layer) and this build may "
                       "not fetch it (--pull=never)",
                       what, l.digest);
    }
    if (auto s = opts_.blob_fetcher(l); !s) {
      return Unexpected(s.error().Wrap(fmt::format("{}: fetch layer {}", what, l.digest)));
    }
  }
  return OkStatus();
}

namespace {

// The platforms an index in the store offers ("linux/amd64, linux/arm64"),
// for the error of a base without the wanted one.
std::string OfferedPlatforms(const oci::Store& store, const oci::Descriptor& desc) {
  auto bytes = store.ReadBlob(desc.digest);
  if (!bytes) return "unknown";
  auto idx = oci::Index::Parse(*bytes);
  if (!idx) return "unknown";
  std::string out;
  for (const auto& m : idx->manifests) {
    if (!m.platform) continue;
    out += (out.empty() ? "" : ", ") + m.platform->ToString();
  }
  return out.empty() ? "none" : out;
}

// The platform an image's config declares.
oci::Platform ConfigPlatform(const oci::ImageConfig& c) {
  oci::Platform p;
  p.os = c.os;
  p.architecture = c.architecture;
  p.variant = c.variant;
  return p;
}

}  // namespace

Result<ResolvedSource> Build::ResolveImage(const std::string& image, std::string_view what,
                                           bool reads_fs, std::optional<oci::Platform> platform) {
  auto ref = oci::Reference::Parse(image);
  if (!ref) return Unexpected(ref.error().Wrap(what));
  const std::string name = what.empty() ? ref->Familiar() : std::string(what);
  const oci::Platform want = platform ? *platform : TargetPlatform();
  // Lazy base layers need both halves: the metadata-only pull and a way to
  // fetch a layer later. Without them every layer is fetched now.
  const bool lazy_ok = !reads_fs && opts_.metadata_resolver && opts_.blob_fetcher;
  Result<oci::Descriptor> desc = MakeError(ErrorCode::kNotFound, "");
  if (!opts_.pull_always) {
    desc = store_.Resolve(*ref);
  } else if (auto idx = store_.ReadIndex(); !idx) {
    desc = Unexpected(idx.error());  // a pull could not be recorded either
  }
  // Only an image that is not in the store is pulled: a store that cannot
  // answer (a corrupt index.json) stops the build.
  if (!desc && desc.error().code() != ErrorCode::kNotFound) {
    return Unexpected(desc.error().Wrap(name));
  }
  if (!desc) {
    if (!opts_.resolver) {
      return MakeError(ErrorCode::kNotFound, "{}: image not found in the store", name);
    }
    desc = lazy_ok ? opts_.metadata_resolver(*ref, want) : opts_.resolver(*ref, want);
    if (!desc) return Unexpected(desc.error().Wrap(name));
  }
  auto img = store_.LoadImageMetadata(*desc, want);
  // A stored image for another platform (a plain image, or an index without
  // this one): pulled for this platform when a resolver may, else an error
  // naming the reference and what it offers.
  auto mismatch = [&]() -> std::optional<Error> {
    if (!img) {
      if (img.error().code() != ErrorCode::kNotFound) return std::nullopt;
      auto bytes = store_.ReadBlob(desc->digest);
      if (!bytes) return std::nullopt;
      auto mt = oci::DetectManifestMediaType(*bytes);
      if (!mt || !oci::media_type::IsIndex(*mt)) return std::nullopt;
      return Error(
          ErrorCode::kNotFound,
          fmt::format("{}: image {} has no {} image in the store (its index offers: {})", name,
                      ref->Familiar(), want.ToString(), OfferedPlatforms(store_, *desc)));
    }
    oci::Platform have = ConfigPlatform(img->config);
    if (have.os.empty() || have.architecture.empty() || have.Matches(want)) return std::nullopt;
    return Error(ErrorCode::kNotFound,
                 fmt::format("{}: image {} is for {}, not {} (it offers: {})", name,
                             ref->Familiar(), have.ToString(), want.ToString(), have.ToString()));
  };
  if (auto e = mismatch()) {
    if (!opts_.resolver || opts_.pull_always) return Unexpected(*e);
    // Not what this platform needs: ask the registry for its image.
    desc = lazy_ok ? opts_.metadata_resolver(*ref, want) : opts_.resolver(*ref, want);
    if (!desc) return Unexpected(desc.error().Wrap(e->message()));
    img = store_.LoadImageMetadata(*desc, want);
    if (auto again = mismatch()) return Unexpected(*again);
  }
  if (!img) return Unexpected(img.error().Wrap(name));
  // ONBUILD triggers run in this stage, and may read the base: fetch.
  const bool lazy = lazy_ok && img->config.config.on_build.empty();
  if (!lazy) {
    STRATA_RETURN_IF_ERROR(FetchLazyLayers(img->manifest.layers, name));
  }
  // Snapshots stand in for the image's layer blobs, which a build then never
  // reads: check that they are intact (size always; content hashed unless
  // memoized next to the snapshot, see oci/snapshots.h). A lazy layer is
  // verified when it is fetched.
  auto chains = oci::ChainIds(img->config.diff_ids);
  for (size_t i = 0; i < img->manifest.layers.size() && i < chains.size(); ++i) {
    if (lazy && !store_.Has(img->manifest.layers[i].digest)) continue;
    if (auto s = oci::VerifyLayerBlob(store_, img->manifest.layers[i], chains[i]); !s) {
      return Unexpected(
          s.error().Wrap(fmt::format("{}: image {} layer {}", name, img->descriptor.digest, i)));
    }
  }
  if (auto s = Resolved(
          {ResolvedInput::Kind::kImage, ref->ToString(), img->descriptor.digest, want.ToString()});
      !s) {
    return Unexpected(s.error().Wrap(name));
  }
  ResolvedSource r;
  r.state.config = img->config;
  r.state.layers = img->manifest.layers;
  r.state.created = img->config.created;
  r.state.key = img->descriptor.digest;
  r.cache_key = img->descriptor.digest.ToString();
  return r;
}

}  // namespace strata::builder
