#include "tools/strata/cache_spec.h"

#include <set>

#include <fmt/format.h>

#include "tools/strata/buildkit_options.h"

namespace strata::cli {

Result<CacheSpec> ParseCacheSpec(std::string_view value, CacheDirection direction) {
  const bool to = direction == CacheDirection::kTo;
  const std::string_view flag = to ? "--cache-to" : "--cache-from";
  CacheSpec spec;
  spec.raw = std::string(value);
  if (value.empty()) return MakeError(ErrorCode::kInvalidArgument, "{}: empty value", flag);
  if (value.find('=') == std::string_view::npos) {
    // strata's plain form: a registry image reference.
    auto ref = oci::Reference::Parse(value);
    if (!ref) return Unexpected(ref.error().Wrap(fmt::format("{} {}", flag, value)));
    spec.ref = *ref;
    return spec;
  }
  STRATA_ASSIGN_OR_RETURN(auto fields, ParseKeyValueFields(value, flag));
  std::optional<std::string> type;
  for (const auto& [k, v] : fields) {
    if (k == "type") type = v;
  }
  if (!type) {
    // buildx: `ref=R` alone is type=registry.
    type = "registry";
  }
  if (*type == "registry") {
    spec.type = CacheType::kRegistry;
  } else if (*type == "local") {
    spec.type = CacheType::kLocal;
  } else if (*type == "inline") {
    return MakeError(ErrorCode::kUnimplemented,
                     "{} {}: type=inline is not supported (use type=registry,ref=R or "
                     "type=local)",
                     flag, value);
  } else if (*type == "gha" || *type == "s3" || *type == "azblob") {
    return MakeError(ErrorCode::kUnimplemented,
                     "{} {}: type={} is not supported (use type=registry or type=local)", flag,
                     value, *type);
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} {}: unknown cache type \"{}\" (want registry or local)", flag, value,
                     *type);
  }
  spec.mode = CacheMode::kMin;  // BuildKit's default
  const bool registry = spec.type == CacheType::kRegistry;
  std::set<std::string> seen;
  for (const auto& [k, v] : fields) {
    if (!seen.insert(k).second) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: {} given twice", flag, value, k);
    }
    if (k == "type") continue;
    if (k == "ref" && registry) {
      auto ref = oci::Reference::Parse(v);
      if (!ref) return Unexpected(ref.error().Wrap(fmt::format("{} {}: ref", flag, value)));
      spec.ref = *ref;
    } else if (k == (to ? "dest" : "src") && !registry) {
      if (v.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: {}= is empty", flag, value, k);
      }
      spec.dir = v;
    } else if (k == "tag" && !registry) {
      if (v.empty() || v.find_first_of("/@ ") != std::string::npos) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: tag={} is not a tag", flag, value, v);
      }
      spec.tag = v;
    } else if (k == "mode" && to) {
      if (v == "min") {
        spec.mode = CacheMode::kMin;
      } else if (v == "max") {
        spec.mode = CacheMode::kMax;
      } else {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: mode={}: want min or max", flag,
                         value, v);
      }
    } else if (k == "image-manifest" && to) {
      STRATA_ASSIGN_OR_RETURN(bool im, ParseBoolOption(flag, k, v));
      if (!im) {
        return MakeError(ErrorCode::kUnimplemented,
                         "{} {}: image-manifest=false is not supported (strata's cache is "
                         "always an OCI image manifest)",
                         flag, value);
      }
    } else if (k == "oci-mediatypes" && to) {
      STRATA_ASSIGN_OR_RETURN(bool oci_mt, ParseBoolOption(flag, k, v));
      if (!oci_mt) {
        return MakeError(ErrorCode::kUnimplemented,
                         "{} {}: oci-mediatypes=false is not supported (strata writes OCI media "
                         "types only)",
                         flag, value);
      }
    } else if (k == "ignore-error" && to) {
      STRATA_ASSIGN_OR_RETURN(spec.ignore_error, ParseBoolOption(flag, k, v));
    } else if (to && (k == "compression" || k == "compression-level" || k == "force-compression")) {
      return MakeError(ErrorCode::kUnimplemented,
                       "{} {}: {} is not supported (the cache holds this build's layers as they "
                       "were compressed; set --compression for the build)",
                       flag, value, k);
    } else {
      std::string valid =
          registry
              ? (to ? "ref, mode, image-manifest, oci-mediatypes, ignore-error" : "ref")
              : (to ? "dest, tag, mode, image-manifest, oci-mediatypes, ignore-error" : "src, tag");
      return MakeError(ErrorCode::kInvalidArgument,
                       "{} {}: unknown option \"{}\" for type={} (valid: {})", flag, value, k,
                       registry ? "registry" : "local", valid);
    }
  }
  if (registry && !spec.ref) {
    return MakeError(ErrorCode::kInvalidArgument, "{} {}: type=registry needs ref=", flag, value);
  }
  if (!registry && spec.dir.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{} {}: type=local needs {}=DIR", flag, value,
                     to ? "dest" : "src");
  }
  return spec;
}

}  // namespace strata::cli
