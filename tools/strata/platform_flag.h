// The --platform flag of the verbs that read one image of an index (unpack,
// history, diff, inspect, save): empty means "not given"; anything else must
// be a known os/arch[/variant] (oci::ParseKnownPlatform).
#pragma once

#include <optional>
#include <string>

#include "oci/image_index.h"

namespace strata::cli {

inline Result<std::optional<oci::Platform>> ParsePlatformFlag(const std::string& s) {
  if (s.empty()) return std::optional<oci::Platform>();
  STRATA_ASSIGN_OR_RETURN(auto p, oci::ParseKnownPlatform(s));
  return std::optional<oci::Platform>(p);
}

}  // namespace strata::cli
