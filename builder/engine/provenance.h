// Provenance: SLSA provenance v1 (https://slsa.dev/provenance/v1) of a
// build, and the in-toto statement v1 that carries it (or an SBOM).
//
// What is recorded follows BuildKit's provenance attestation: the build
// definition (Dockerfile path, target, platform, build args), the resolved
// dependencies (each image by manifest digest, each ADD URL by the digest of
// its content; URLs lose any user:password@ part), the builder (id and
// version) and the start and finish times. Secrets are never recorded: only
// the ids of --secret entries are listed (as BuildKit does), never a value
// or a source path. mode=max adds the Dockerfile's text and the parsed plan
// (every stage and step) as buildConfig.
//
// Deterministic: the same input gives the same bytes (dependencies sorted,
// maps ordered, times as the caller gives them — SOURCE_DATE_EPOCH when set).
// Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "builder/engine/executor.h"
#include "oci/digest.h"

namespace strata::builder {

struct ProvenanceInput {
  std::string dockerfile_path;  // as given to the build (relative to the context when inside)
  std::string target;           // "" = the last stage
  std::string platform;         // "linux/amd64"
  std::map<std::string, std::string> build_args;
  std::vector<std::string> secret_ids;  // ids only
  std::vector<ResolvedInput> inputs;    // BuildResult::inputs
  std::string builder_id;               // e.g. "https://strata.invalid/builder/strata"
  std::string builder_version;          // "0.1"
  std::string started_on;               // RFC 3339 (seconds, "Z")
  std::string finished_on;
  bool max = false;
  std::string dockerfile_text;  // mode=max only
  nlohmann::json build_config;  // mode=max only: the parsed plan
};

// `url` without a "user[:password]@" part.
std::string StripUrlUserinfo(std::string_view url);

// The package URL of an image input: pkg:docker/<name>@<tag or digest>?platform=...
std::string ImagePurl(const ResolvedInput& in);

// The SLSA provenance v1 predicate.
nlohmann::json ProvenancePredicate(const ProvenanceInput& in);

// An in-toto statement v1 about one subject (the image manifest).
nlohmann::json InTotoStatement(std::string_view subject_name, const oci::Digest& subject,
                               std::string_view predicate_type, nlohmann::json predicate);

// RFC 3339 UTC with seconds ("2024-01-02T03:04:05Z") of a unix time.
std::string Rfc3339(int64_t unix_seconds);

}  // namespace strata::builder
