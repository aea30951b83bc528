#include "oci/descriptor.h"

#include <sys/utsname.h>

#include "oci/json_util.h"

namespace strata::oci {

namespace {

// Kernel (uname -m) and distribution names of architectures, with the OCI
// (GOARCH) name and variant each stands for.
struct ArchAlias {
  std::string_view name;
  std::string_view arch;
  std::string_view variant;
};
constexpr ArchAlias kArchAliases[] = {
    {"x86_64", "amd64", ""}, {"x86-64", "amd64", ""}, {"aarch64", "arm64", ""},
    {"armv7l", "arm", "v7"}, {"armv6l", "arm", "v6"}, {"armhf", "arm", ""},
    {"armel", "arm", ""},    {"i386", "386", ""},     {"i486", "386", ""},
    {"i586", "386", ""},     {"i686", "386", ""},
};

const ArchAlias* FindAlias(std::string_view name) {
  for (const auto& a : kArchAliases) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string NormalizeArch(std::string arch) {
  if (const ArchAlias* a = FindAlias(arch)) return std::string(a->arch);
  return arch;
}

std::string NormalizeVariant(std::string_view arch, std::string variant) {
  if (arch == "arm64" && (variant == "v8" || variant == "8")) return "";
  if (arch == "arm" && !variant.empty() && variant[0] != 'v') return "v" + variant;
  return variant;
}

}  // namespace

Platform Platform::FromMachine(std::string_view machine) {
  Platform p;
  p.os = "linux";
  if (const ArchAlias* a = FindAlias(machine)) {
    p.architecture = std::string(a->arch);
    p.variant = std::string(a->variant);
  } else {
    p.architecture = std::string(machine);
  }
  return p;
}

Platform Platform::Host() {
  struct utsname u;
  return FromMachine(::uname(&u) == 0 ? u.machine : "x86_64");
}

Result<Platform> Platform::Parse(std::string_view s) {
  Platform p;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid platform \"{}\": want os/arch[/variant]",
                     s);
  }
  for (auto& part : parts) {
    for (auto& c : part) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  p.os = parts[0];
  p.architecture = NormalizeArch(parts[1]);
  if (parts.size() == 3) p.variant = NormalizeVariant(p.architecture, parts[2]);
  return p;
}

std::string Platform::ToString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

bool Platform::Matches(const Platform& wanted) const {
  if (os != wanted.os) return false;
  if (NormalizeArch(architecture) != NormalizeArch(wanted.architecture)) return false;
  std::string arch = NormalizeArch(architecture);
  std::string want_variant = NormalizeVariant(arch, wanted.variant);
  if (want_variant.empty()) return true;
  return NormalizeVariant(arch, variant) == want_variant;
}

Result<Platform> Platform::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "platform must be an object");
  Platform p;
  STRATA_ASSIGN_OR_RETURN(p.os, GetString(j, "os", "platform"));
  STRATA_ASSIGN_OR_RETURN(p.architecture, GetString(j, "architecture", "platform"));
  STRATA_ASSIGN_OR_RETURN(p.variant, GetString(j, "variant", "platform"));
  STRATA_ASSIGN_OR_RETURN(p.os_version, GetString(j, "os.version", "platform"));
  STRATA_ASSIGN_OR_RETURN(p.os_features, GetStringList(j, "os.features", "platform"));
  return p;
}

nlohmann::json Platform::ToJson() const {
  nlohmann::json j = {{"os", os}, {"architecture", architecture}};
  if (!variant.empty()) j["variant"] = variant;
  if (!os_version.empty()) j["os.version"] = os_version;
  if (!os_features.empty()) j["os.features"] = os_features;
  return j;
}

Result<Descriptor> Descriptor::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "descriptor must be a JSON object");
  }
  Descriptor d;
  STRATA_ASSIGN_OR_RETURN(d.media_type, GetString(j, "mediaType", "descriptor", true));
  STRATA_ASSIGN_OR_RETURN(std::string digest, GetString(j, "digest", "descriptor", true));
  auto parsed = Digest::Parse(digest);
  if (!parsed) return Unexpected(parsed.error().Wrap("descriptor"));
  d.digest = *parsed;
  STRATA_ASSIGN_OR_RETURN(d.size, GetInt(j, "size", "descriptor", true));
  if (d.size < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "descriptor {}: negative size", digest);
  }
  STRATA_ASSIGN_OR_RETURN(d.urls, GetStringList(j, "urls", "descriptor"));
  STRATA_ASSIGN_OR_RETURN(d.annotations, GetStringMap(j, "annotations", "descriptor"));
  STRATA_ASSIGN_OR_RETURN(d.artifact_type, GetString(j, "artifactType", "descriptor"));
  if (auto it = j.find("platform"); it != j.end() && !it->is_null()) {
    STRATA_ASSIGN_OR_RETURN(d.platform, Platform::FromJson(*it));
  }
  d.extra = ExtraFields(
      j, {"mediaType", "digest", "size", "urls", "annotations", "platform", "artifactType"});
  return d;
}

nlohmann::json Descriptor::ToJson() const {
  nlohmann::json j = {{"mediaType", media_type}, {"digest", digest.ToString()}, {"size", size}};
  if (!urls.empty()) j["urls"] = urls;
  if (!annotations.empty()) j["annotations"] = annotations;
  if (platform) j["platform"] = platform->ToJson();
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  MergeExtra(j, extra);
  return j;
}

}  // namespace strata::oci
