// The attestations of a finished build (build --sbom / --provenance): made
// from the build's result, stored in the store as referrers of the image
// manifest (oci/referrers.h), or, with --attest-format buildkit, as
// BuildKit's attestation manifest inside a new image index. And the reading
// side shared by `strata attest`: the attestations of an image in the store.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/engine/executor.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "oci/store.h"
#include "tools/strata/attest_options.h"
#include "tools/strata/cli.h"

namespace strata::cli {

struct AttestRequest {
  AttestOptions options;
  const builder::BuildOptions* build = nullptr;
  const builder::BuildResult* result = nullptr;
  std::string subject_name;  // the image's first name, or its digest
  int64_t started = 0;       // unix seconds (SOURCE_DATE_EPOCH when set)
  int64_t finished = 0;
};

struct AttestResult {
  std::vector<oci::Descriptor> referrers;  // the OCI form
  std::optional<oci::Descriptor> index;    // the BuildKit form: tag this instead
};

// Scans the image (fetching lazy base layers first: the SBOM reads every
// layer), writes the statements, stores them. `warn` gets the SBOM
// scanner's warnings (an rpm database it could not read, ...).
Result<AttestResult> MakeAttestations(const Context& ctx, oci::Store& store,
                                      const AttestRequest& req,
                                      const std::function<void(std::string_view)>& warn);

// One attestation of an image: the manifest that carries it and the
// statement's descriptor.
struct AttestationEntry {
  std::string kind;  // "sbom", "provenance", or "other"
  std::string predicate_type;
  oci::Descriptor manifest;   // the artifact (or BuildKit attestation) manifest
  oci::Descriptor statement;  // the in-toto statement blob
  std::string form;           // "referrer" or "buildkit"
};

// The attestation entries of the manifests in `manifests` (read with
// `read`, which returns a manifest's bytes), sorted by kind then digest.
Result<std::vector<AttestationEntry>> EntriesOf(
    const std::vector<std::pair<oci::Descriptor, std::string>>& manifests,
    const std::function<Result<std::string>(const oci::Descriptor&)>& read);

}  // namespace strata::cli

namespace strata::registry {
class Client;
struct PushOptions;
}  // namespace strata::registry

namespace strata::cli {

// After pushing `image` (a manifest digest) to `dest`: pushes its referrers
// recorded in the store (registry/referrers.h). Prints what it did unless quiet.
Status PushAttestations(registry::Client& client, oci::Store& store, const oci::Digest& image,
                        const oci::Reference& dest, const registry::PushOptions& opts, bool quiet);

}  // namespace strata::cli
