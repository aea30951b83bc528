#include "oci/manifest.h"

#include "oci/json_util.h"
#include "oci/media_types.h"

namespace strata::oci {

namespace {

Result<std::vector<Descriptor>> GetDescriptors(const nlohmann::json& j, std::string_view key,
                                               std::string_view what) {
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be an array", what, key);
  }
  for (const auto& e : *it) {
    auto d = Descriptor::FromJson(e);
    if (!d) return Unexpected(d.error().Wrap(fmt::format("{} {}", what, key)));
    out.push_back(std::move(*d));
  }
  return out;
}

Status CheckSchemaVersion(const nlohmann::json& j, std::string_view what, int* out) {
  STRATA_ASSIGN_OR_RETURN(int64_t v, GetInt(j, "schemaVersion", what, true));
  if (v != 2) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: unsupported schemaVersion {}", what, v);
  }
  *out = 2;
  return OkStatus();
}

// The fields a manifest and an index share: schemaVersion 2, a mediaType of
// the kind `is_kind` accepts (or none), an artifactType.
Result<nlohmann::json> ParseHeader(std::string_view json, std::string_view what,
                                   bool (*is_kind)(std::string_view), int* schema_version,
                                   std::string* media_type, std::string* artifact_type) {
  STRATA_ASSIGN_OR_RETURN(auto j, ParseJson(json, what));
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "{}: not an object", what);
  STRATA_RETURN_IF_ERROR(CheckSchemaVersion(j, what, schema_version));
  STRATA_ASSIGN_OR_RETURN(*media_type, GetString(j, "mediaType", what));
  if (!media_type->empty() && !is_kind(*media_type)) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: unexpected mediaType \"{}\"", what,
                     *media_type);
  }
  STRATA_ASSIGN_OR_RETURN(*artifact_type, GetString(j, "artifactType", what));
  return j;
}

}  // namespace

Result<Manifest> Manifest::Parse(std::string_view json) {
  constexpr std::string_view kWhat = "manifest";
  Manifest m;
  STRATA_ASSIGN_OR_RETURN(auto j, ParseHeader(json, kWhat, media_type::IsManifest,
                                              &m.schema_version, &m.media_type, &m.artifact_type));
  auto cfg = j.find("config");
  if (cfg == j.end()) return MakeError(ErrorCode::kInvalidArgument, "manifest: missing config");
  auto c = Descriptor::FromJson(*cfg);
  if (!c) return Unexpected(c.error().Wrap("manifest config"));
  m.config = std::move(*c);
  STRATA_ASSIGN_OR_RETURN(m.layers, GetDescriptors(j, "layers", kWhat));
  if (auto it = j.find("subject"); it != j.end() && !it->is_null()) {
    STRATA_ASSIGN_OR_RETURN(m.subject, Descriptor::FromJson(*it));
  }
  STRATA_ASSIGN_OR_RETURN(m.annotations, GetStringMap(j, "annotations", kWhat));
  m.extra = ExtraFields(j, {"schemaVersion", "mediaType", "artifactType", "config", "layers",
                            "subject", "annotations"});
  return m;
}

nlohmann::json Manifest::ToJson() const {
  nlohmann::json j = {{"schemaVersion", schema_version}};
  if (!media_type.empty()) j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  j["config"] = config.ToJson();
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& l : layers) ls.push_back(l.ToJson());
  j["layers"] = std::move(ls);
  if (subject) j["subject"] = subject->ToJson();
  if (!annotations.empty()) j["annotations"] = annotations;
  MergeExtra(j, extra);
  return j;
}

Result<Index> Index::Parse(std::string_view json) {
  constexpr std::string_view kWhat = "index";
  Index x;
  STRATA_ASSIGN_OR_RETURN(auto j, ParseHeader(json, kWhat, media_type::IsIndex, &x.schema_version,
                                              &x.media_type, &x.artifact_type));
  STRATA_ASSIGN_OR_RETURN(x.manifests, GetDescriptors(j, "manifests", kWhat));
  if (auto it = j.find("subject"); it != j.end() && !it->is_null()) {
    STRATA_ASSIGN_OR_RETURN(x.subject, Descriptor::FromJson(*it));
  }
  STRATA_ASSIGN_OR_RETURN(x.annotations, GetStringMap(j, "annotations", kWhat));
  x.extra = ExtraFields(
      j, {"schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations"});
  return x;
}

nlohmann::json Index::ToJson() const {
  nlohmann::json j = {{"schemaVersion", schema_version}};
  if (!media_type.empty()) j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  nlohmann::json ms = nlohmann::json::array();
  for (const auto& m : manifests) ms.push_back(m.ToJson());
  j["manifests"] = std::move(ms);
  if (subject) j["subject"] = subject->ToJson();
  if (!annotations.empty()) j["annotations"] = annotations;
  MergeExtra(j, extra);
  return j;
}

Result<std::string> DetectManifestMediaType(std::string_view json) {
  STRATA_ASSIGN_OR_RETURN(auto j, ParseJson(json, "manifest"));
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "manifest: not an object");
  STRATA_ASSIGN_OR_RETURN(std::string mt, GetString(j, "mediaType", "manifest"));
  if (!mt.empty()) return mt;
  if (j.contains("manifests")) return std::string(media_type::kImageIndex);
  if (j.contains("config")) return std::string(media_type::kImageManifest);
  return MakeError(ErrorCode::kInvalidArgument, "manifest: cannot tell its media type");
}

Result<size_t> SelectManifest(const Index& index, const ManifestSelector& selector) {
  std::string offered;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const auto& m = index.manifests[i];
    if (!m.platform && !selector.accept_unplatformed) continue;
    if (m.platform) offered += (offered.empty() ? "" : ", ") + m.platform->ToString();
    if (m.platform && !m.platform->Matches(selector.platform)) continue;
    if (selector.usable && !selector.usable(m)) continue;
    return i;
  }
  return MakeError(ErrorCode::kNotFound, "no manifest for platform {} (offered: {})",
                   selector.platform.ToString(), offered.empty() ? "none" : offered);
}

}  // namespace strata::oci
