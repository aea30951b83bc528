#include "oci/image_index.h"

#include <algorithm>
#include <array>

#include "oci/media_types.h"

namespace strata::oci {

namespace {

bool IsAttestation(const Descriptor& d) {
  return d.platform && d.platform->os == "unknown" && d.platform->architecture == "unknown";
}

std::string NameOf(const Descriptor& d) {
  return d.platform ? d.platform->ToString() : std::string("<no platform>");
}

bool ChildMatches(const IndexChild& c, const Platform& want) {
  return !c.descriptor.platform || c.descriptor.platform->Matches(want);
}

Status NotLocal(const IndexChild& c, std::string_view ref) {
  std::string where;
  for (const auto& s : c.sources)
    where += (where.empty() ? "" : ", ") + s.registry + "/" + s.repository;
  if (where.empty()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}: the {} manifest {} is not in the store and no registry is recorded "
                     "for it",
                     ref, NameOf(c.descriptor), c.descriptor.digest);
  }
  return MakeError(ErrorCode::kFailedPrecondition,
                   "{}: the {} manifest {} is not in the store (it is at {}); fetch it with "
                   "`strata pull --platform {} <ref>` or `strata pull --all-platforms <ref>`",
                   ref, NameOf(c.descriptor), c.descriptor.digest, where, NameOf(c.descriptor));
}

}  // namespace

std::string IndexView::PlatformList() const {
  std::string out;
  for (const auto& c : children) out += (out.empty() ? "" : ", ") + NameOf(c.descriptor);
  return out.empty() ? "none" : out;
}

Result<std::optional<IndexView>> ReadIndexView(const Store& store, const Descriptor& desc) {
  STRATA_ASSIGN_OR_RETURN(std::string bytes, store.ReadBlob(desc.digest));
  STRATA_ASSIGN_OR_RETURN(std::string mt, DetectManifestMediaType(bytes));
  if (!media_type::IsIndex(mt)) return std::optional<IndexView>();
  auto idx = Index::Parse(bytes);
  if (!idx) return Unexpected(idx.error().Wrap(fmt::format("index {}", desc.digest)));
  IndexView view;
  view.descriptor = desc;
  view.descriptor.media_type = mt;
  view.index = std::move(*idx);
  for (const auto& m : view.index.manifests) {
    if (IsAttestation(m) || media_type::IsIndex(m.media_type)) continue;
    IndexChild c;
    c.descriptor = m;
    c.local = store.Has(m.digest);
    if (!c.local) {
      auto src = ReadBlobSources(store, m.digest);
      if (src) c.sources = std::move(*src);
    }
    view.children.push_back(std::move(c));
  }
  return std::optional<IndexView>(std::move(view));
}

Status CheckKnownPlatform(const Platform& p) {
  static constexpr std::array<std::string_view, 14> kOs = {
      "linux",   "windows", "darwin",    "freebsd", "netbsd", "openbsd", "solaris",
      "illumos", "aix",     "dragonfly", "android", "plan9",  "js",      "wasip1"};
  static constexpr std::array<std::string_view, 16> kArch = {
      "amd64",    "arm64",  "arm",    "386",  "ppc64le", "ppc64", "s390x",   "riscv64",
      "mips64le", "mips64", "mipsle", "mips", "loong64", "wasm",  "sparc64", "amd64p32"};
  auto in = [](const auto& list, std::string_view v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  if (!in(kOs, p.os)) {
    return MakeError(ErrorCode::kInvalidArgument, "unknown platform {}: unknown os \"{}\"",
                     p.ToString(), p.os);
  }
  if (!in(kArch, p.architecture)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown platform {}: unknown architecture \"{}\" (known: amd64, arm64, "
                     "arm, 386, ppc64le, s390x, riscv64, mips64le, loong64, ...)",
                     p.ToString(), p.architecture);
  }
  if (p.variant.empty()) return OkStatus();
  bool ok = false;
  if (p.architecture == "arm") {
    ok = p.variant == "v5" || p.variant == "v6" || p.variant == "v7" || p.variant == "v8";
  } else if (p.architecture == "arm64") {
    ok = p.variant == "v8" || p.variant == "v9" || p.variant.starts_with("v8.") ||
         p.variant.starts_with("v9.");
  } else if (p.architecture == "amd64") {
    ok = p.variant == "v1" || p.variant == "v2" || p.variant == "v3" || p.variant == "v4";
  }
  if (!ok) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unknown platform {}: variant \"{}\" does not exist for {}", p.ToString(),
                     p.variant, p.architecture);
  }
  return OkStatus();
}

Result<Platform> ParseKnownPlatform(std::string_view s, std::string_view flag) {
  auto p = Platform::Parse(s);
  if (!p) return Unexpected(p.error().Wrap(flag));
  if (auto st = CheckKnownPlatform(*p); !st) return Unexpected(st.error().Wrap(flag));
  return p;
}

Result<Descriptor> PickIndexChild(const IndexView& view, std::string_view ref,
                                  const std::optional<Platform>& want) {
  const Platform target = want ? *want : Platform::Host();
  std::vector<const IndexChild*> matches;
  for (const auto& c : view.children) {
    if (ChildMatches(c, target)) matches.push_back(&c);
  }
  if (want) {
    if (matches.empty()) {
      return MakeError(ErrorCode::kNotFound,
                       "{}: index {} has no manifest for platform {}; it has: {}", ref,
                       view.descriptor.digest, want->ToString(), view.PlatformList());
    }
    auto local = std::find_if(matches.begin(), matches.end(), [](auto* c) { return c->local; });
    if (local != matches.end()) return (*local)->descriptor;
    return Unexpected(NotLocal(*matches.front(), ref).error());
  }
  if (matches.size() != 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} is an index of {} platforms ({}); {} this host ({}): choose one with "
                     "--platform",
                     ref, view.children.size(), view.PlatformList(),
                     matches.empty() ? "none matches" : "several match", target.ToString());
  }
  if (!matches.front()->local) return Unexpected(NotLocal(*matches.front(), ref).error());
  return matches.front()->descriptor;
}

Platform PlatformOfConfig(const ImageConfig& config) {
  Platform p;
  p.os = config.os;
  p.architecture = config.architecture;
  p.variant = config.variant;
  return p;
}

Result<Image> LoadOneImage(const Store& store, std::string_view ref,
                           const std::optional<Platform>& want, bool layers) {
  STRATA_ASSIGN_OR_RETURN(Descriptor desc, store.Resolve(ref));
  auto view = ReadIndexView(store, desc);
  if (!view) return Unexpected(view.error().Wrap(ref));
  Descriptor pick = desc;
  if (*view) {
    STRATA_ASSIGN_OR_RETURN(pick, PickIndexChild(**view, ref, want));
  }
  // A child is loaded as a manifest of its own (the platform choice is made).
  auto img = layers ? store.LoadImage(pick) : store.LoadImageMetadata(pick);
  if (!img) return Unexpected(img.error().Wrap(ref));
  if (*view) {
    img->index = (*view)->descriptor;
    img->descriptor.platform = pick.platform;
  } else if (want) {
    Platform have = PlatformOfConfig(img->config);
    if (!have.Matches(*want)) {
      return MakeError(ErrorCode::kNotFound,
                       "{}: image {} is for platform {}, not {} (it is not an index)", ref,
                       desc.digest, have.ToString(), want->ToString());
    }
  }
  return img;
}

}  // namespace strata::oci
