// build's attestation flags, BuildKit's syntax:
//   --sbom[=true|false|1|0]       an SPDX SBOM of the image (generator= is
//                                 refused: strata has its own scanner)
//   --provenance[=true|false|mode=min|mode=max][,builder-id=URI]
//   --attest-format oci|buildkit  OCI 1.1 referrers (default), or BuildKit's
//                                 attestation manifests inside an image index
// Pure functions; no I/O.
#pragma once

#include <string>
#include <string_view>

#include "oci/util/error.h"

namespace strata::cli {

struct AttestOptions {
  bool sbom = false;
  bool provenance = false;
  bool provenance_max = false;  // mode=max
  std::string builder_id;       // "" = strata's default
  bool buildkit_format = false;
  bool any() const { return sbom || provenance; }
};

// InvalidArgument (Unimplemented for a known but unsupported key) naming the
// flag and the value. Empty strings mean "not given".
Result<AttestOptions> ParseAttestOptions(std::string_view sbom, std::string_view provenance,
                                         std::string_view attest_format);

}  // namespace strata::cli
