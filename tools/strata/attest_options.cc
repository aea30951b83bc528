#include "tools/strata/attest_options.h"

#include <fmt/format.h>

#include "tools/strata/buildkit_options.h"

namespace strata::cli {

Result<AttestOptions> ParseAttestOptions(std::string_view sbom, std::string_view provenance,
                                         std::string_view attest_format) {
  AttestOptions o;
  if (!sbom.empty()) {
    if (sbom.find('=') == std::string_view::npos) {
      STRATA_ASSIGN_OR_RETURN(o.sbom, ParseBoolOption("--sbom", "", sbom));
    } else {
      STRATA_ASSIGN_OR_RETURN(auto fields, ParseKeyValueFields(sbom, "--sbom"));
      o.sbom = true;
      for (const auto& [k, v] : fields) {
        if (k == "disabled") {
          STRATA_ASSIGN_OR_RETURN(bool off, ParseBoolOption("--sbom", k, v));
          o.sbom = !off;
        } else {
          return MakeError(
              k == "generator" ? ErrorCode::kUnimplemented : ErrorCode::kInvalidArgument,
              "--sbom={}: {}= is not supported (strata scans the image itself; "
              "want true or false)",
              sbom, k);
        }
      }
    }
  }
  if (!provenance.empty()) {
    if (provenance.find('=') == std::string_view::npos) {
      STRATA_ASSIGN_OR_RETURN(o.provenance, ParseBoolOption("--provenance", "", provenance));
    } else {
      STRATA_ASSIGN_OR_RETURN(auto fields, ParseKeyValueFields(provenance, "--provenance"));
      o.provenance = true;
      for (const auto& [k, v] : fields) {
        if (k == "mode") {
          if (v != "min" && v != "max") {
            return MakeError(ErrorCode::kInvalidArgument,
                             "--provenance={}: mode={}: want min or max", provenance, v);
          }
          o.provenance_max = v == "max";
        } else if (k == "builder-id") {
          if (v.find("://") == std::string::npos) {
            return MakeError(ErrorCode::kInvalidArgument,
                             "--provenance={}: builder-id must be a URI", provenance);
          }
          o.builder_id = v;
        } else if (k == "disabled") {
          STRATA_ASSIGN_OR_RETURN(bool off, ParseBoolOption("--provenance", k, v));
          o.provenance = !off;
        } else {
          return MakeError(ErrorCode::kInvalidArgument,
                           "--provenance={}: unknown key {} (want mode=min|max, builder-id=URI)",
                           provenance, k);
        }
      }
    }
  }
  if (!attest_format.empty()) {
    if (attest_format == "buildkit") {
      o.buildkit_format = true;
    } else if (attest_format != "oci") {
      return MakeError(ErrorCode::kInvalidArgument, "--attest-format {}: want oci or buildkit",
                       attest_format);
    }
    if (!o.any()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--attest-format {}: needs --sbom or --provenance", attest_format);
    }
  }
  return o;
}

}  // namespace strata::cli
