#include "builder/engine/named_contexts.h"

#include <unistd.h>

#include <cctype>

#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/engine/staging.h"
#include "oci/descriptor.h"
#include "oci/layer_writer.h"
#include "oci/reference.h"

namespace strata::builder {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  if (value.starts_with("oci-layout://")) return unsupported("an oci-layout:// context");
  if (value.starts_with("https://") || value.starts_with("http://")) {
    return unsupported("a URL context");
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

Result<ResolvedSource> ResolveNamedContext(
    oci::Store& store, const BuildOptions& opts, const NamedContext& nc,
    const std::function<Result<ResolvedSource>(const std::string& image)>& resolve_image) {
  if (nc.kind == NamedContext::Kind::kImage) {
    auto r = resolve_image(nc.image);
    if (!r) return Unexpected(r.error().Wrap(fmt::format("build context {}", nc.value)));
    return r;
  }
  oci::LayerWriterOptions lo;
  lo.compress = opts.compression;
  lo.tar.source_date_epoch = opts.source_date_epoch;
  if (::geteuid() != 0) {
    lo.tar.root_uid = ::geteuid();
    lo.tar.root_gid = ::getegid();
  }
  auto info = oci::CommitLayer(store, nc.dir, lo);
  if (!info) return Unexpected(info.error().Wrap(fmt::format("build context {}", nc.value)));
  ResolvedSource r;
  r.state.config.os = "linux";
  r.state.config.architecture = oci::Platform::Host().architecture;
  r.state.config.diff_ids.push_back(info->diff_id);
  r.state.layers.push_back(info->descriptor);
  r.state.key = info->diff_id;
  r.cache_key = "context-dir:" + info->diff_id.ToString();
  return r;
}

}  // namespace strata::builder
