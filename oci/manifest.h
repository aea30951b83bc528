// Manifest (image-spec manifest.md) and Index (image-index.md), also reading
// Docker schema2 manifests and manifest lists. A manifest is stored and pushed
// as the exact bytes it was made from; these types are for reading and for
// making new ones. Unknown fields survive a round-trip in `extra`.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/descriptor.h"
#include "oci/json_util.h"
#include "oci/util/error.h"

namespace strata::oci {

struct Manifest {
  int schema_version = 2;
  std::string media_type;  // may be empty in OCI manifests
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
  nlohmann::json extra = nlohmann::json::object();

  static Result<Manifest> Parse(std::string_view json);
  nlohmann::json ToJson() const;
  // Canonical bytes strata writes (sorted keys, compact).
  std::string Serialize() const { return DumpJson(ToJson()); }
};

struct Index {
  int schema_version = 2;
  std::string media_type;
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
  nlohmann::json extra = nlohmann::json::object();

  static Result<Index> Parse(std::string_view json);
  nlohmann::json ToJson() const;
  std::string Serialize() const { return DumpJson(ToJson()); }
};

// The one manifest selector: the index of the first entry of `index` for
// `platform` (Platform::Matches, containerd's rule) that `usable` accepts (all
// when unset). Entries without a platform are candidates only when
// `accept_unplatformed` (a local index strata wrote itself); attestation
// manifests and other unplatformed entries of pulled indexes are not.
// NotFound naming the platform and the platforms offered.
struct ManifestSelector {
  Platform platform = Platform::Host();
  bool accept_unplatformed = false;
  std::function<bool(const Descriptor&)> usable;
};
Result<size_t> SelectManifest(const Index& index, const ManifestSelector& selector);

// The media type of a manifest-like JSON document: its mediaType field, or,
// for OCI documents without one, inferred from "manifests" vs "config".
Result<std::string> DetectManifestMediaType(std::string_view json);

}  // namespace strata::oci
