#include "builder/engine/named_contexts.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "builder/engine/add_archive.h"
#include "builder/engine/build.h"
#include "builder/engine/git_source.h"
#include "builder/engine/image_path.h"
#include "builder/engine/staging.h"
#include "oci/descriptor.h"
#include "oci/layer_reader.h"
#include "oci/layer_writer.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Copies the blob `d` of the layout at `layout` into `store`, verified.
Status CopyLayoutBlob(oci::Store& store, const fs::path& layout, const oci::Descriptor& d) {
  if (store.Has(d.digest)) return OkStatus();
  fs::path file = layout / "blobs" / std::string(d.digest.algorithm_name()) / d.digest.hex();
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(file, O_RDONLY));
  STRATA_ASSIGN_OR_RETURN(auto w, store.Ingest());
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read " + file.string());
    if (n == 0) break;
    STRATA_RETURN_IF_ERROR(w.Write(buf.data(), static_cast<size_t>(n)));
  }
  STRATA_ASSIGN_OR_RETURN(auto committed, w.Commit(d.media_type, d.digest, d.size));
  (void)committed;
  return OkStatus();
}

// Copies `d` and what it reaches (an index's manifests, a manifest's config
// and layers).
Status CopyLayoutImage(oci::Store& store, const fs::path& layout, const oci::Descriptor& d,
                       int depth = 0) {
  STRATA_RETURN_IF_ERROR(CopyLayoutBlob(store, layout, d));
  if (depth > 4) return OkStatus();
  STRATA_ASSIGN_OR_RETURN(auto bytes, store.ReadBlob(d.digest));
  std::string mt = d.media_type;
  if (auto detected = oci::DetectManifestMediaType(bytes); detected && mt.empty()) mt = *detected;
  if (oci::media_type::IsIndex(mt)) {
    STRATA_ASSIGN_OR_RETURN(auto idx, oci::Index::Parse(bytes));
    for (const auto& m : idx.manifests) {
      STRATA_RETURN_IF_ERROR(CopyLayoutImage(store, layout, m, depth + 1));
    }
    return OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(auto m, oci::Manifest::Parse(bytes));
  STRATA_RETURN_IF_ERROR(CopyLayoutBlob(store, layout, m.config));
  for (const auto& l : m.layers) STRATA_RETURN_IF_ERROR(CopyLayoutBlob(store, layout, l));
  return OkStatus();
}

// `platform`: the image an index in the layout gives (the build's target).
Result<ResolvedSource> ResolveOciLayout(oci::Store& store, const NamedContext& nc,
                                        const oci::Platform& platform) {
  const fs::path layout = nc.layout;
  STRATA_ASSIGN_OR_RETURN(auto text, ReadFile(layout / "index.json"));
  STRATA_ASSIGN_OR_RETURN(auto index, oci::Index::Parse(text));
  std::optional<oci::Descriptor> pick;
  std::vector<std::string> seen;
  for (const auto& m : index.manifests) {
    auto name = m.annotations.find("org.opencontainers.image.ref.name");
    std::string tag = name == m.annotations.end() ? "" : name->second;
    seen.push_back(tag.empty() ? m.digest.ToString() : tag);
    if ((!nc.layout_digest.empty() && m.digest.ToString() == nc.layout_digest) ||
        (!nc.layout_tag.empty() && tag == nc.layout_tag)) {
      pick = m;
      break;
    }
  }
  if (!pick && nc.layout_digest.empty() && nc.layout_tag.empty() && index.manifests.size() == 1) {
    pick = index.manifests[0];
  }
  if (!pick) {
    return MakeError(ErrorCode::kNotFound, "{}: no {} in the layout (it holds: {})", nc.value,
                     !nc.layout_digest.empty() ? "manifest " + nc.layout_digest
                     : !nc.layout_tag.empty()  ? "tag " + nc.layout_tag
                                               : "single image",
                     fmt::join(seen, ", "));
  }
  STRATA_RETURN_IF_ERROR(CopyLayoutImage(store, layout, *pick));
  STRATA_ASSIGN_OR_RETURN(auto img, store.LoadImage(*pick, platform));
  ResolvedSource r;
  r.state.config = img.config;
  r.state.layers = img.manifest.layers;
  r.state.created = img.config.created;
  r.state.key = img.descriptor.digest;
  r.cache_key = img.descriptor.digest.ToString();
  return r;
}

// A directory as a one-layer source keyed by its diffID.
Result<ResolvedSource> CommitDirSource(oci::Store& store, const BuildOptions& opts,
                                       const fs::path& dir, std::string_view kind) {
  oci::LayerWriterOptions lo;
  lo.compress = opts.compression;
  lo.tar.source_date_epoch = opts.source_date_epoch;
  if (::geteuid() != 0) {
    lo.tar.root_uid = ::geteuid();
    lo.tar.root_gid = ::getegid();
  }
  STRATA_ASSIGN_OR_RETURN(auto info, oci::CommitLayer(store, dir, lo));
  ResolvedSource r;
  // A directory has no platform: it is the build's target's.
  const oci::Platform p = opts.platform.value_or(oci::Platform::Host());
  r.state.config.os = p.os;
  r.state.config.architecture = p.architecture;
  r.state.config.variant = p.variant;
  r.state.config.diff_ids.push_back(info.diff_id);
  r.state.layers.push_back(info.descriptor);
  r.state.key = info.diff_id;
  r.cache_key = fmt::format("context-{}:{}", kind, info.diff_id.ToString());
  return r;
}

// Resolves the ref through the injected GitClient and checks the commit out
// into a scratch dir under the store's ingest/ (removed on return); its tree
// (or subdir) is the directory.
Result<ResolvedSource> ResolveGit(oci::Store& store, const BuildOptions& opts,
                                  const NamedContext& nc,
                                  const std::function<Status(ResolvedInput)>& resolved) {
  STRATA_ASSIGN_OR_RETURN(auto parsed, ParseGitRef(nc.url));
  if (!parsed) return MakeError(ErrorCode::kInvalidArgument, "{} is not a git source", nc.url);
  if (opts.git == nullptr) {
    return MakeError(ErrorCode::kUnimplemented, "no git client configured for {}",
                     RedactUrl(parsed->remote));
  }
  STRATA_ASSIGN_OR_RETURN(auto commit, opts.git->Resolve(*parsed));
  if (resolved) STRATA_RETURN_IF_ERROR(resolved(GitInput(*parsed, commit)));
  STRATA_ASSIGN_OR_RETURN(auto scratch, ScopedTempDir::Create(store.IngestDir(), "gitctx-"));
  const fs::path tree = scratch.path() / "tree";
  STRATA_RETURN_IF_ERROR(MakeDirs(tree));
  STRATA_RETURN_IF_ERROR(opts.git->Checkout(*parsed, commit, tree, /*keep_git_dir=*/false));
  STRATA_ASSIGN_OR_RETURN(auto dir,
                          ResolveInRoot(tree, parsed->subdir.empty() ? "." : parsed->subdir, true));
  if (!IsDir(dir)) {
    return MakeError(ErrorCode::kNotFound, "{} is no directory of commit {}", parsed->subdir,
                     commit);
  }
  return CommitDirSource(store, opts, dir, "git");
}

// Downloads the tarball through the injected fetcher and extracts it into a
// scratch dir under the store's ingest/, removed on return.
Result<ResolvedSource> ResolveUrl(oci::Store& store, const BuildOptions& opts,
                                  const NamedContext& nc) {
  if (!opts.fetcher) {
    return MakeError(ErrorCode::kUnimplemented, "no URL fetcher configured for {}", nc.url);
  }
  STRATA_ASSIGN_OR_RETURN(auto scratch, ScopedTempDir::Create(store.IngestDir(), "urlctx-"));
  const fs::path file = scratch.path() / "download";
  const fs::path root = scratch.path() / "root";
  std::string last_modified;
  STRATA_RETURN_IF_ERROR(opts.fetcher(nc.url, file, &last_modified));
  STRATA_ASSIGN_OR_RETURN(bool is_tar, IsTarArchive(file));
  if (!is_tar) {
    return MakeError(ErrorCode::kInvalidArgument, "{} is not a tar archive", nc.url);
  }
  STRATA_RETURN_IF_ERROR(MakeDirs(root));
  STRATA_ASSIGN_OR_RETURN(auto src, OpenDecompressed(file));
  oci::ApplyOptions ao;
  ao.preserve_owners = ::geteuid() == 0;
  ao.max_uncompressed_bytes = opts.max_layer_bytes;
  STRATA_ASSIGN_OR_RETURN(auto applied,
                          oci::ApplyTar(src.get(), oci::Compression::kNone, root, ao, nc.url));
  (void)applied;
  return CommitDirSource(store, opts, root, "url");
}

}  // namespace

Result<NamedContextFlag> ParseNamedContext(std::string_view flag) {
  auto eq = flag.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "--build-context {}: want NAME=VALUE", flag);
  }
  NamedContextFlag out;
  out.name = std::string(flag.substr(0, eq));
  std::string_view value = flag.substr(eq + 1);
  out.context.value = std::string(value);
  auto unsupported = [&](std::string_view what) {
    return MakeError(ErrorCode::kUnimplemented, "--build-context {}: {} is not supported", flag,
                     what);
  };
  if (value.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--build-context {}: empty VALUE", flag);
  }
  if (value.starts_with("docker-image://")) {
    std::string ref(value.substr(std::string_view("docker-image://").size()));
    auto parsed = oci::Reference::Parse(ref);
    if (!parsed) return Unexpected(parsed.error().Wrap(fmt::format("--build-context {}", flag)));
    out.context.kind = NamedContext::Kind::kImage;
    out.context.image = ref;
    return out;
  }
  if (value.starts_with("oci-layout://")) {
    std::string rest(value.substr(std::string_view("oci-layout://").size()));
    NamedContext& nc = out.context;
    nc.kind = NamedContext::Kind::kOciLayout;
    if (auto at = rest.rfind('@'); at != std::string::npos) {
      auto d = oci::Digest::Parse(rest.substr(at + 1));
      if (!d) return Unexpected(d.error().Wrap(fmt::format("--build-context {}", flag)));
      nc.layout_digest = d->ToString();
      rest.resize(at);
    } else if (auto colon = rest.rfind(':');
               colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
      nc.layout_tag = rest.substr(colon + 1);
      rest.resize(colon);
    }
    std::filesystem::path dir = Absolute(std::filesystem::path(rest));
    if (rest.empty() || !IsDir(dir)) {
      return MakeError(ErrorCode::kInvalidArgument, "--build-context {}: {} is not a directory",
                       flag, dir.string());
    }
    nc.layout = dir.string();
    return out;
  }
  auto git = ParseGitRef(value);
  if (!git) return Unexpected(git.error().Wrap(fmt::format("--build-context {}", flag)));
  if (git->has_value()) {
    out.context.kind = NamedContext::Kind::kGit;
    out.context.url = std::string(value);
    return out;
  }
  if (value.starts_with("https://") || value.starts_with("http://")) {
    std::string_view path = value.substr(0, value.find('#'));
    if (path.ends_with(".git") || value.find('#') != std::string_view::npos) {
      return unsupported("a git context");
    }
    out.context.kind = NamedContext::Kind::kUrl;
    out.context.url = std::string(value);
    return out;
  }
  if (value.starts_with("git@") || value.starts_with("git://") || value.starts_with("ssh://")) {
    return unsupported("a git context");
  }
  if (value.starts_with("target:")) return unsupported("a bake target: context");
  if (auto scheme = value.find("://"); scheme != std::string_view::npos) {
    return unsupported(fmt::format("the scheme {}://", value.substr(0, scheme)));
  }
  std::filesystem::path dir = Absolute(std::filesystem::path(value));
  if (!IsDir(dir)) {
    return MakeError(ErrorCode::kInvalidArgument, "--build-context {}: {} is not a directory", flag,
                     dir.string());
  }
  out.context.kind = NamedContext::Kind::kDir;
  out.context.dir = dir.string();
  return out;
}

const NamedContext* FindNamedContext(const std::map<std::string, NamedContext>& contexts,
                                     std::string_view name) {
  if (contexts.empty()) return nullptr;
  if (auto it = contexts.find(std::string(name)); it != contexts.end()) return &it->second;
  const std::string lower = Lower(name);
  for (const auto& [k, v] : contexts) {
    if (Lower(k) == lower) return &v;
  }
  return nullptr;
}

ResolvedInput GitInput(const GitRef& g, const std::string& commit) {
  ResolvedInput in;
  in.kind = ResolvedInput::Kind::kGit;
  in.ref = RedactUrl(g.remote) + "#" + (g.ref.empty() ? "HEAD" : g.ref) +
           (g.subdir.empty() ? "" : ":" + g.subdir);
  in.commit = commit;
  return in;
}

Result<ResolvedSource> ResolveNamedContext(
    oci::Store& store, const BuildOptions& opts, const NamedContext& nc,
    const std::function<Result<ResolvedSource>(const std::string& image)>& resolve_image,
    const std::function<Status(ResolvedInput)>& resolved) {
  if (nc.kind == NamedContext::Kind::kImage) {
    auto r = resolve_image(nc.image);
    if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", nc.value)));
    return r;
  }
  if (nc.kind == NamedContext::Kind::kOciLayout) {
    auto r = ResolveOciLayout(store, nc, opts.platform.value_or(oci::Platform::Host()));
    if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", nc.value)));
    return r;
  }
  if (nc.kind == NamedContext::Kind::kGit) {
    auto r = ResolveGit(store, opts, nc, resolved);
    if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", RedactUrl(nc.value))));
    return r;
  }
  if (nc.kind == NamedContext::Kind::kUrl) {
    auto r = ResolveUrl(store, opts, nc);
    if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", nc.value)));
    return r;
  }
  auto r = CommitDirSource(store, opts, nc.dir, "dir");
  if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", nc.value)));
  return r;
}

}  // namespace strata::builder
