// strata attest ls REF / strata attest get REF --type sbom|provenance: the
// attestations of an image, read from the store (referrers recorded there,
// oci/referrers.h, or BuildKit's attestation manifests in the image's
// index), or from REF's registry when the store does not have REF or with
// --remote (the referrers API, else the referrers tag schema).
#include <fmt/format.h>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/referrers.h"
#include "registry/referrers.h"
#include "tools/strata/attestations.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

struct AttestFlags {
  std::string ref;
  std::string type;
  bool remote = false;
};

// The image manifest a top-level document names (an index: the host's
// entry) and the BuildKit-form attestation manifests listed next to it.
struct Located {
  oci::Digest image;
  std::vector<std::pair<oci::Descriptor, std::string>> manifests;
};

Result<Located> Locate(const std::string& what, const oci::Descriptor& top,
                       const std::string& bytes) {
  Located out;
  if (!oci::media_type::IsIndex(top.media_type)) {
    out.image = top.digest;
    return out;
  }
  auto idx = oci::Index::Parse(bytes);
  if (!idx) return Unexpected(idx.error().Wrap(what));
  oci::ManifestSelector sel;
  sel.accept_unplatformed = true;
  STRATA_ASSIGN_OR_RETURN(size_t i, oci::SelectManifest(*idx, sel));
  out.image = idx->manifests[i].digest;
  for (const auto& d : oci::BuildkitAttestations(*idx, out.image)) {
    out.manifests.emplace_back(d, "buildkit");
  }
  return out;
}

Result<std::vector<AttestationEntry>> LocalEntries(oci::Store& store, const std::string& ref) {
  STRATA_ASSIGN_OR_RETURN(auto top, store.Resolve(ref));
  STRATA_ASSIGN_OR_RETURN(auto bytes, store.ReadBlob(top.digest));
  if (top.media_type.empty()) {
    STRATA_ASSIGN_OR_RETURN(top.media_type, oci::DetectManifestMediaType(bytes));
  }
  STRATA_ASSIGN_OR_RETURN(auto loc, Locate(ref, top, bytes));
  STRATA_ASSIGN_OR_RETURN(auto refs, oci::ListReferrers(store, loc.image));
  for (const auto& r : refs) loc.manifests.emplace_back(r, "referrer");
  return EntriesOf(loc.manifests,
                   [&](const oci::Descriptor& d) { return store.ReadBlob(d.digest); });
}

Result<std::vector<AttestationEntry>> RemoteEntries(
    const Context& ctx, registry::Client& client, const std::string& ref_text,
    std::function<Result<std::string>(const oci::Descriptor&, bool)>* fetch) {
  (void)ctx;
  STRATA_ASSIGN_OR_RETURN(auto ref, oci::Reference::Parse(ref_text));
  STRATA_ASSIGN_OR_RETURN(auto top, client.Resolve(ref));
  STRATA_ASSIGN_OR_RETURN(auto loc, Locate(ref_text, top.descriptor, top.bytes));
  STRATA_ASSIGN_OR_RETURN(auto listed, registry::ListRemoteReferrers(client, ref, loc.image));
  for (const auto& r : listed.referrers) loc.manifests.emplace_back(r, "referrer");
  *fetch = [&client, ref](const oci::Descriptor& d, bool manifest) {
    return registry::FetchSmallBlob(client, ref, d, manifest);
  };
  return EntriesOf(loc.manifests, [&](const oci::Descriptor& d) { return (*fetch)(d, true); });
}

int Run(Context& ctx, const AttestFlags& f, bool get) {
  if (get && f.type != "sbom" && f.type != "provenance") {
    Fail(Error(ErrorCode::kInvalidArgument,
               fmt::format("--type {}: want sbom or provenance", f.type)));
    return kExitUsage;
  }
  auto store = ctx.OpenStore();
  if (!store) return Fail(store.error());
  std::vector<AttestationEntry> entries;
  std::function<Result<std::string>(const oci::Descriptor&, bool)> fetch;
  std::unique_ptr<registry::Client> client;
  const bool local = !f.remote && (*store)->Resolve(f.ref).has_value();
  if (local) {
    auto e = LocalEntries(**store, f.ref);
    if (!e) return Fail(e.error());
    entries = std::move(*e);
    fetch = [&](const oci::Descriptor& d, bool) { return (*store)->ReadBlob(d.digest); };
  } else {
    auto creds = MakeCredentialStore(ctx);
    if (!creds) return Fail(creds.error());
    client = MakeClient(ctx, *creds);
    auto e = RemoteEntries(ctx, *client, f.ref, &fetch);
    if (!e) return Fail(e.error());
    entries = std::move(*e);
  }
  if (!get) {
    if (!ctx.global.quiet) fmt::print("TYPE\tFORM\tMANIFEST\tSTATEMENT\tPREDICATE\n");
    for (const auto& e : entries) {
      fmt::print("{}\t{}\t{}\t{}\t{}\n", e.kind, e.form, e.manifest.digest.ToString(),
                 e.statement.digest.ToString(), e.predicate_type);
    }
    return kExitOk;
  }
  for (const auto& e : entries) {
    if (e.kind != f.type) continue;
    auto bytes = fetch(e.statement, false);
    if (!bytes) return Fail(bytes.error());
    fmt::print("{}\n", *bytes);
    return kExitOk;
  }
  return Fail(Error(ErrorCode::kNotFound, fmt::format("{}: no {} attestation ({})", f.ref, f.type,
                                                      local ? "in the store" : "on the registry")));
}

}  // namespace

Verb AttestVerb() {
  return {"attest", "List or read an image's attestations (SBOM, provenance)",
          [](CLI::App& app) -> Action {
            auto f = std::make_shared<AttestFlags>();
            auto mode = std::make_shared<int>(0);
            app.require_subcommand(1);
            auto* ls = app.add_subcommand("ls", "List the attestations of REF");
            ls->add_option("REF", f->ref, "Image (store, else registry)")->required();
            ls->add_flag("--remote", f->remote, "Read from REF's registry even if stored");
            ls->fallthrough();
            ls->callback([mode] { *mode = 1; });
            auto* get = app.add_subcommand("get", "Print one attestation's in-toto statement");
            get->add_option("REF", f->ref, "Image (store, else registry)")->required();
            get->add_option("--type", f->type, "sbom or provenance")->required();
            get->add_flag("--remote", f->remote, "Read from REF's registry even if stored");
            get->fallthrough();
            get->callback([mode] { *mode = 2; });
            return [f, mode](Context& ctx) { return Run(ctx, *f, *mode == 2); };
          }};
}

}  // namespace strata::cli
