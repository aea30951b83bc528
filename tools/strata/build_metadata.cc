#include "tools/strata/build_metadata.h"

namespace strata::cli {

nlohmann::json BuildMetadataJson(const oci::Descriptor& manifest, const oci::Digest& config,
                                 const std::vector<oci::Reference>& names) {
  nlohmann::json desc = {{"mediaType", manifest.media_type},
                         {"digest", manifest.digest.ToString()},
                         {"size", manifest.size}};
  if (!manifest.annotations.empty()) desc["annotations"] = manifest.annotations;
  nlohmann::json j = {{"containerimage.digest", manifest.digest.ToString()},
                      {"containerimage.config.digest", config.ToString()},
                      {"containerimage.descriptor", desc}};
  if (!names.empty()) {
    std::string joined;
    for (const auto& n : names) {
      if (!joined.empty()) joined += ',';
      joined += n.ToString();
    }
    j["image.name"] = joined;
  }
  return j;
}

}  // namespace strata::cli
