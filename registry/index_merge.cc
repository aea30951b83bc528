#include "registry/index_merge.h"

#include "oci/blob_sources.h"
#include "oci/image_index.h"
#include "oci/media_types.h"
#include "registry/puller.h"

namespace strata::registry {

namespace mt = oci::media_type;

namespace {

bool IsAttestation(const oci::Descriptor& d) {
  return d.platform && d.platform->os == "unknown" && d.platform->architecture == "unknown";
}

// The platform an image config states. InvalidArgument naming `what` if it
// states none.
Result<oci::Platform> PlatformOf(std::string_view config_bytes, const std::string& what) {
  auto cfg = oci::ImageConfig::Parse(config_bytes);
  if (!cfg) return Unexpected(cfg.error().Wrap(what));
  oci::Platform p = oci::PlatformOfConfig(*cfg);
  if (p.os.empty() || p.architecture.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: the image config names no os/architecture",
                     what);
  }
  return p;
}

}  // namespace

Result<oci::Index> MergeIndexes(const std::vector<MergeEntry>& entries,
                                const std::map<std::string, std::string>& annotations) {
  if (entries.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "manifest create: no platform manifests to merge");
  }
  oci::Index index;
  index.media_type = std::string(mt::kImageIndex);
  index.annotations = annotations;
  std::vector<const MergeEntry*> taken;
  for (const auto& e : entries) {
    if (!e.descriptor.platform) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "{}: manifest {} has no platform: cannot place it in an index", e.source,
                       e.descriptor.digest);
    }
    bool duplicate = false;
    for (const MergeEntry* t : taken) {
      if (!(*t->descriptor.platform == *e.descriptor.platform)) continue;
      if (t->descriptor.digest == e.descriptor.digest) {
        duplicate = true;
        break;
      }
      return MakeError(ErrorCode::kInvalidArgument,
                       "platform {} is given twice: by {} (manifest {}) and by {} (manifest {})",
                       e.descriptor.platform->ToString(), t->source, t->descriptor.digest, e.source,
                       e.descriptor.digest);
    }
    if (duplicate) continue;
    taken.push_back(&e);
    oci::Descriptor d =
        oci::Descriptor::Of(e.descriptor.media_type, e.descriptor.digest, e.descriptor.size);
    d.platform = e.descriptor.platform;
    index.manifests.push_back(std::move(d));
  }
  return index;
}

RegistryResult<std::vector<MergeEntry>> GatherRemote(SessionFactory& sessions, oci::Store& store,
                                                     const oci::Reference& ref) {
  const std::string what = ref.ToString();
  STRATA_ASSIGN_OR_RETURN(
      auto s,
      sessions.Open(ref.domain(), ref.path(), {RepositoryScope(ref.path(), "pull")}, std::nullopt));
  const oci::BlobLocation here{s->domain, s->repo};
  const std::string reference = ref.digest() ? ref.digest()->ToString() : ref.tag();
  STRATA_ASSIGN_OR_RETURN(Resolved top, Puller::FetchManifest(*s, reference, ref.digest()));
  // A manifest into the store, its blobs (and itself) recorded as here.
  auto keep = [&](const Resolved& r) -> RegistryResult<oci::Manifest> {
    auto m = oci::Manifest::Parse(r.bytes);
    if (!m) return std::unexpected(m.error().Wrap(what));
    auto put = store.Put(r.bytes, r.descriptor.media_type);
    if (!put) return std::unexpected(put.error().Wrap(what));
    (void)oci::RecordBlobSource(store, r.descriptor.digest, here);
    for (const auto& b : BlobsOf(*m)) (void)oci::RecordBlobSource(store, b.digest, here);
    return *m;
  };
  // The config of `m`, fetched (verified) into the store for its platform.
  auto platform_of = [&](const oci::Manifest& m) -> RegistryResult<oci::Platform> {
    PullOptions po;
    STRATA_ASSIGN_OR_RETURN(bool fetched, FetchBlobToStore(*s, store, m.config, po));
    (void)fetched;
    auto bytes = store.ReadBlob(m.config.digest);
    if (!bytes) return std::unexpected(bytes.error().Wrap(what));
    auto p = PlatformOf(*bytes, fmt::format("{}: config {}", what, m.config.digest));
    if (!p) return std::unexpected(RegistryError(p.error()));
    return *p;
  };
  std::vector<MergeEntry> out;
  if (mt::IsManifest(top.descriptor.media_type)) {
    STRATA_ASSIGN_OR_RETURN(oci::Manifest m, keep(top));
    STRATA_ASSIGN_OR_RETURN(oci::Platform p, platform_of(m));
    MergeEntry e{top.descriptor, what};
    e.descriptor.platform = p;
    out.push_back(std::move(e));
    return out;
  }
  auto index = oci::Index::Parse(top.bytes);
  if (!index) return std::unexpected(index.error().Wrap(what));
  for (const auto& child : index->manifests) {
    if (IsAttestation(child)) continue;
    STRATA_ASSIGN_OR_RETURN(Resolved r,
                            Puller::FetchManifest(*s, child.digest.ToString(), child.digest));
    if (!mt::IsManifest(r.descriptor.media_type)) {
      return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                       child.digest);
    }
    STRATA_ASSIGN_OR_RETURN(oci::Manifest m, keep(r));
    MergeEntry e{r.descriptor, what};
    e.descriptor.platform = child.platform;
    if (!e.descriptor.platform) {
      STRATA_ASSIGN_OR_RETURN(e.descriptor.platform, platform_of(m));
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: the index lists no platform manifests",
                     what);
  }
  return out;
}

Result<std::vector<MergeEntry>> GatherLocal(const oci::Store& store, const std::string& ref) {
  STRATA_ASSIGN_OR_RETURN(oci::Descriptor desc, store.Resolve(ref));
  auto view = oci::ReadIndexView(store, desc);
  if (!view) return Unexpected(view.error().Wrap(ref));
  std::vector<MergeEntry> out;
  if (!*view) {
    auto img = store.LoadImageMetadata(desc);
    if (!img) return Unexpected(img.error().Wrap(ref));
    STRATA_ASSIGN_OR_RETURN(oci::Platform p,
                            PlatformOf(img->config_bytes, fmt::format("{}: config", ref)));
    MergeEntry e{img->descriptor, ref};
    e.descriptor.platform = p;
    out.push_back(std::move(e));
    return out;
  }
  for (const auto& c : (*view)->children) {
    MergeEntry e{c.descriptor, ref};
    if (!e.descriptor.platform && c.local) {
      auto img = store.LoadImageMetadata(c.descriptor);
      if (!img) return Unexpected(img.error().Wrap(ref));
      STRATA_ASSIGN_OR_RETURN(e.descriptor.platform,
                              PlatformOf(img->config_bytes, fmt::format("{}: config", ref)));
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: the index lists no platform manifests", ref);
  }
  return out;
}

Result<std::pair<std::string, std::string>> ParseIndexAnnotation(std::string_view s) {
  std::string_view kv = s;
  size_t eq = s.find('=');
  size_t colon = s.find(':');
  if (colon != std::string_view::npos && (eq == std::string_view::npos || colon < eq)) {
    std::string_view prefix = s.substr(0, colon);
    // buildx: "index:", "manifest:", "manifest-descriptor:", "index-descriptor:"
    // (optionally with a [platform]); only the index itself is annotated here.
    if (prefix == "index") {
      kv = s.substr(colon + 1);
    } else if (prefix.starts_with("index") || prefix.starts_with("manifest")) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--annotation {}: only index annotations (\"key=value\" or "
                       "\"index:key=value\") are supported, not \"{}:\"",
                       s, prefix);
    }
  }
  eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "--annotation {}: want key=value", s);
  }
  return std::pair{std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1))};
}

}  // namespace strata::registry
