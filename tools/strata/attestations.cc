#include "tools/strata/attestations.h"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include <fmt/format.h>

#include "builder/engine/provenance.h"
#include "builder/engine/sbom.h"
#include "builder/frontend/plan.h"
#include "oci/json_util.h"
#include "oci/referrers.h"
#include "oci/unpack.h"
#include "oci/util/file_util.h"
#include "tools/strata/registry_cli.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultBuilderId = "https://strata.invalid/builder";

std::string DockerfileDisplay(const builder::BuildOptions& o) {
  fs::path df = o.dockerfile.empty() ? o.context_dir / "Dockerfile" : o.dockerfile;
  fs::path rel = df.lexically_normal().lexically_relative(o.context_dir.lexically_normal());
  if (rel.empty() || rel.string().starts_with("..")) return df.filename().string();
  return rel.string();
}

Result<std::string> SbomStatement(const Context& ctx, oci::Store& store, const AttestRequest& req,
                                  const std::string& created,
                                  const std::function<void(std::string_view)>& warn) {
  const auto& manifest = req.result->manifest;
  STRATA_RETURN_IF_ERROR(FetchLazyLayers(ctx, store, manifest.digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto image, store.LoadImage(manifest));
  STRATA_ASSIGN_OR_RETURN(auto tmp, ScopedTempDir::Create(store.IngestDir(), "sbom-"));
  oci::UnpackOptions uo;
  uo.preserve_owners = false;
  STRATA_ASSIGN_OR_RETURN(uo.max_layer_bytes, ctx.MaxLayerBytes());
  const fs::path rootfs = tmp.path() / "rootfs";
  STRATA_RETURN_IF_ERROR(oci::UnpackImage(store, image, rootfs, uo));
  STRATA_ASSIGN_OR_RETURN(auto scan, builder::ScanRootfs(rootfs));
  for (const auto& w : scan.warnings) warn(fmt::format("SBOM: {}", w));
  builder::SpdxOptions so;
  so.name = req.subject_name;
  so.image_digest = manifest.digest.ToString();
  so.created = created;
  so.tool = fmt::format("strata-{}", STRATA_VERSION);
  auto statement = builder::InTotoStatement(
      req.subject_name, manifest.digest, oci::kSpdxPredicateType, builder::SpdxDocument(scan, so));
  return oci::DumpJson(statement);
}

Result<std::string> ProvenanceStatement(const AttestRequest& req) {
  const auto& o = *req.build;
  builder::ProvenanceInput in;
  in.dockerfile_path = DockerfileDisplay(o);
  in.target = o.target;
  in.platform = oci::Platform::Host().ToString();
  in.build_args = o.build_args;
  for (const auto& [id, secret] : o.secrets) in.secret_ids.push_back(id);
  in.inputs = req.result->inputs;
  in.builder_id =
      req.options.builder_id.empty() ? std::string(kDefaultBuilderId) : req.options.builder_id;
  in.builder_version = STRATA_VERSION;
  in.started_on = builder::Rfc3339(req.started);
  in.finished_on = builder::Rfc3339(req.finished);
  in.max = req.options.provenance_max;
  if (in.max) {
    if (o.dockerfile_text) {
      in.dockerfile_text = *o.dockerfile_text;
    } else {
      STRATA_ASSIGN_OR_RETURN(in.dockerfile_text, ReadFile(o.dockerfile));
    }
    builder::ParseOptions po;
    po.file_name = fs::path(in.dockerfile_path).filename().string();
    po.build_args = o.build_args;
    po.target = o.target;
    STRATA_ASSIGN_OR_RETURN(in.build_config,
                            builder::ParseDockerfileToJson(in.dockerfile_text, po));
  }
  auto statement =
      builder::InTotoStatement(req.subject_name, req.result->manifest.digest,
                               oci::kSlsaProvenanceV1PredicateType, ProvenancePredicate(in));
  return oci::DumpJson(statement);
}

}  // namespace

Result<AttestResult> MakeAttestations(const Context& ctx, oci::Store& store,
                                      const AttestRequest& req,
                                      const std::function<void(std::string_view)>& warn) {
  AttestResult out;
  const std::string created = builder::Rfc3339(req.finished);
  std::vector<oci::Statement> statements;
  if (req.options.sbom) {
    STRATA_ASSIGN_OR_RETURN(auto s, SbomStatement(ctx, store, req, created, warn));
    statements.push_back({std::move(s), std::string(oci::kSpdxPredicateType)});
  }
  if (req.options.provenance) {
    STRATA_ASSIGN_OR_RETURN(auto s, ProvenanceStatement(req));
    statements.push_back({std::move(s), std::string(oci::kSlsaProvenanceV1PredicateType)});
  }
  if (req.options.buildkit_format) {
    STRATA_ASSIGN_OR_RETURN(auto idx,
                            oci::PutBuildkitAttestationIndex(store, req.result->manifest,
                                                             oci::Platform::Host(), statements));
    out.index = idx;
    return out;
  }
  for (const auto& s : statements) {
    const bool sbom = s.predicate_type == oci::kSpdxPredicateType;
    STRATA_ASSIGN_OR_RETURN(
        auto d, oci::PutAttestation(store, req.result->manifest, s.bytes,
                                    sbom ? oci::kSbomArtifactType : oci::kProvenanceArtifactType,
                                    s.predicate_type, created));
    out.referrers.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<AttestationEntry>> EntriesOf(
    const std::vector<std::pair<oci::Descriptor, std::string>>& manifests,
    const std::function<Result<std::string>(const oci::Descriptor&)>& read) {
  std::vector<AttestationEntry> out;
  for (const auto& [desc, form] : manifests) {
    STRATA_ASSIGN_OR_RETURN(auto bytes, read(desc));
    auto m = oci::Manifest::Parse(bytes);
    if (!m) return Unexpected(m.error().Wrap(fmt::format("attestation manifest {}", desc.digest)));
    for (const auto& layer : m->layers) {
      if (layer.media_type != oci::kInTotoMediaType) continue;
      AttestationEntry e;
      auto it = layer.annotations.find(std::string(oci::kAnnotationPredicateType));
      e.predicate_type = it == layer.annotations.end() ? "" : it->second;
      e.kind = e.predicate_type == oci::kSpdxPredicateType               ? "sbom"
               : e.predicate_type == oci::kSlsaProvenanceV1PredicateType ? "provenance"
                                                                         : "other";
      e.manifest = desc;
      e.statement = layer;
      e.form = form;
      out.push_back(std::move(e));
    }
  }
  std::sort(out.begin(), out.end(), [](const AttestationEntry& a, const AttestationEntry& b) {
    return std::tie(a.kind, a.manifest.digest, a.statement.digest) <
           std::tie(b.kind, b.manifest.digest, b.statement.digest);
  });
  return out;
}

}  // namespace strata::cli

#include "registry/referrers.h"

namespace strata::cli {

Status PushAttestations(registry::Client& client, oci::Store& store, const oci::Digest& image,
                        const oci::Reference& dest, const registry::PushOptions& opts, bool quiet) {
  STRATA_ASSIGN_OR_RETURN(auto r, registry::PushReferrers(client, store, image, dest, opts));
  if (r.pushed > 0 && !quiet) {
    fmt::print(stderr, "Pushed {} attestation(s) of {}{}\n", r.pushed, image,
               r.tag_schema ? fmt::format(" (referrers tag {})", oci::ReferrersTag(image)) : "");
  }
  return OkStatus();
}

}  // namespace strata::cli
