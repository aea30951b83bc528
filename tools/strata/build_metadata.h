// `strata build --metadata-file FILE`: what the build made, under the keys
// BuildKit writes (and CI actions such as docker/build-push-action read):
//   {"containerimage.digest": "sha256:…"          the manifest digest (image ID)
//    "containerimage.config.digest": "sha256:…"   the config digest
//    "containerimage.descriptor": {"mediaType", "digest", "size"[, "annotations"]}
//    "image.name": "docker.io/library/a:1,…"}     the names, comma-joined (only
//                                                 when the image has names)
// Pure; the CLI writes it with WriteFileAtomic.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/reference.h"

namespace strata::cli {

nlohmann::json BuildMetadataJson(const oci::Descriptor& manifest, const oci::Digest& config,
                                 const std::vector<oci::Reference>& names);

}  // namespace strata::cli
