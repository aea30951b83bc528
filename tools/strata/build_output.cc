#include "tools/strata/build_output.h"

#include <charconv>
#include <set>

#include <fmt/format.h>

#include "tools/strata/buildkit_options.h"

namespace strata::cli {
namespace {

constexpr std::string_view kFlag = "--output";

bool MakesImage(OutputType t) {
  return t == OutputType::kOci || t == OutputType::kDocker || t == OutputType::kImage;
}

std::string_view TypeName(OutputType t, bool registry) {
  switch (t) {
    case OutputType::kLocal:
      return "local";
    case OutputType::kTar:
      return "tar";
    case OutputType::kOci:
      return "oci";
    case OutputType::kDocker:
      return "docker";
    case OutputType::kImage:
      return registry ? "registry" : "image";
    case OutputType::kCacheOnly:
      return "cacheonly";
  }
  return "?";
}

// The keys each type takes besides the image options and annotations.
std::string ValidKeys(OutputType t, bool registry) {
  std::string image_opts =
      "compression, compression-level, force-compression, oci-mediatypes, rewrite-timestamp, "
      "annotation.KEY";
  switch (t) {
    case OutputType::kLocal:
    case OutputType::kTar:
      return "dest";
    case OutputType::kOci:
      return "dest, tar, name, " + image_opts;
    case OutputType::kDocker:
      return "dest, name, " + image_opts;
    case OutputType::kImage:
      return (registry ? "name, " : "name, push, ") + image_opts;
    case OutputType::kCacheOnly:
      return "none";
  }
  return "";
}

Result<std::vector<std::string>> SplitNames(std::string_view raw, std::string_view v) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= v.size()) {
    size_t j = v.find(',', i);
    if (j == std::string_view::npos) j = v.size();
    std::string n(v.substr(i, j - i));
    while (!n.empty() && n.front() == ' ') n.erase(0, 1);
    while (!n.empty() && n.back() == ' ') n.pop_back();
    if (n.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: empty name in name={}", kFlag, raw, v);
    }
    out.push_back(std::move(n));
    i = j + 1;
  }
  return out;
}

Result<oci::Compression> ParseCompressionValue(std::string_view flag, std::string_view raw,
                                               std::string_view v) {
  if (v == "gzip") return oci::Compression::kGzip;
  if (v == "zstd") return oci::Compression::kZstd;
  if (v == "uncompressed") return oci::Compression::kNone;
  if (v == "estargz") {
    return MakeError(ErrorCode::kUnimplemented, "{} {}: compression=estargz is not supported", flag,
                     raw);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "{} {}: compression={}: want gzip, zstd or uncompressed", flag, raw, v);
}

Result<int> ParseLevel(std::string_view flag, std::string_view raw, std::string_view v) {
  int level = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), level);
  if (ec != std::errc() || p != v.data() + v.size() || level < 0 || level > 22) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} {}: compression-level={}: want a number from 0 to 22", flag, raw, v);
  }
  return level;
}

// annotation.KEY / annotation-manifest.KEY -> KEY; other annotation targets
// are refused; nullopt if `key` is not an annotation key at all.
Result<std::optional<std::string>> AnnotationKey(std::string_view raw, const std::string& key) {
  for (std::string_view prefix : {"annotation.", "annotation-manifest."}) {
    if (key.starts_with(prefix)) {
      std::string k = key.substr(prefix.size());
      if (k.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: {} has an empty annotation key",
                         kFlag, raw, key);
      }
      return std::optional<std::string>(k);
    }
  }
  if (key.starts_with("annotation")) {
    return MakeError(ErrorCode::kUnimplemented,
                     "{} {}: {}: only manifest annotations (annotation.KEY, "
                     "annotation-manifest.KEY) are supported",
                     kFlag, raw, key);
  }
  return std::optional<std::string>();
}

}  // namespace

Result<OutputSpec> ParseOutputSpec(std::string_view value) {
  OutputSpec spec;
  spec.raw = std::string(value);
  if (value.empty()) return MakeError(ErrorCode::kInvalidArgument, "{}: empty value", kFlag);
  // buildx: a value without a comma that is not type=... is a path.
  if (value.find(',') == std::string_view::npos && !value.starts_with("type=")) {
    if (value == "-") {
      spec.type = OutputType::kTar;
    } else {
      spec.type = OutputType::kLocal;
    }
    spec.dest = std::string(value);
    return spec;
  }
  STRATA_ASSIGN_OR_RETURN(auto fields, ParseKeyValueFields(value, kFlag));
  std::optional<std::string> type;
  for (const auto& [k, v] : fields) {
    if (k == "type") type = v;
  }
  if (!type) {
    return MakeError(ErrorCode::kInvalidArgument, "{} {}: type= is required", kFlag, value);
  }
  bool registry = false;
  if (*type == "local") {
    spec.type = OutputType::kLocal;
  } else if (*type == "tar") {
    spec.type = OutputType::kTar;
  } else if (*type == "oci") {
    spec.type = OutputType::kOci;
  } else if (*type == "docker") {
    spec.type = OutputType::kDocker;
  } else if (*type == "image") {
    spec.type = OutputType::kImage;
  } else if (*type == "registry") {
    spec.type = OutputType::kImage;
    spec.push = true;
    registry = true;
  } else if (*type == "cacheonly") {
    spec.type = OutputType::kCacheOnly;
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} {}: unknown output type \"{}\" (want local, tar, oci, docker, image, "
                     "registry or cacheonly)",
                     kFlag, value, *type);
  }
  const OutputType t = spec.type;
  std::set<std::string> seen;
  bool has_dest = false;
  for (const auto& [k, v] : fields) {
    if (!seen.insert(k).second) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: {} given twice", kFlag, value, k);
    }
    auto unknown = [&, k = k]() {
      return MakeError(ErrorCode::kInvalidArgument,
                       "{} {}: unknown option \"{}\" for type={} (valid: {})", kFlag, value, k,
                       TypeName(t, registry), ValidKeys(t, registry));
    };
    if (k == "type") continue;
    if (k == "dest" && t != OutputType::kImage && t != OutputType::kCacheOnly) {
      if (v.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: dest= is empty", kFlag, value);
      }
      spec.dest = v;
      has_dest = true;
      continue;
    }
    if (!MakesImage(t)) return unknown();
    STRATA_ASSIGN_OR_RETURN(auto ann, AnnotationKey(value, k));
    if (ann) {
      spec.annotations[*ann] = v;
    } else if (k == "tar" && t == OutputType::kOci) {
      STRATA_ASSIGN_OR_RETURN(spec.tar, ParseBoolOption(kFlag, k, v));
    } else if (k == "name") {
      STRATA_ASSIGN_OR_RETURN(spec.names, SplitNames(value, v));
    } else if (k == "push" && t == OutputType::kImage) {
      STRATA_ASSIGN_OR_RETURN(bool push, ParseBoolOption(kFlag, k, v));
      if (registry && !push) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "{} {}: type=registry always pushes (push=false: use type=image)", kFlag,
                         value);
      }
      spec.push = push;
    } else if (k == "compression") {
      STRATA_ASSIGN_OR_RETURN(spec.compression, ParseCompressionValue(kFlag, value, v));
    } else if (k == "compression-level") {
      STRATA_ASSIGN_OR_RETURN(spec.compression_level, ParseLevel(kFlag, value, v));
    } else if (k == "force-compression") {
      STRATA_ASSIGN_OR_RETURN(bool force, ParseBoolOption(kFlag, k, v));
      if (force) {
        return MakeError(ErrorCode::kUnimplemented,
                         "{} {}: force-compression=true is not supported (layers of the base "
                         "image keep their compression; this build's layers use compression=)",
                         kFlag, value);
      }
    } else if (k == "oci-mediatypes") {
      STRATA_ASSIGN_OR_RETURN(bool oci_mt, ParseBoolOption(kFlag, k, v));
      if (!oci_mt) {
        return MakeError(ErrorCode::kUnimplemented,
                         "{} {}: oci-mediatypes=false is not supported (strata writes OCI media "
                         "types only)",
                         kFlag, value);
      }
    } else if (k == "rewrite-timestamp") {
      STRATA_ASSIGN_OR_RETURN(spec.rewrite_timestamp, ParseBoolOption(kFlag, k, v));
    } else {
      return unknown();
    }
  }
  if ((t == OutputType::kLocal || t == OutputType::kTar || t == OutputType::kOci ||
       t == OutputType::kDocker) &&
      !has_dest) {
    return MakeError(ErrorCode::kInvalidArgument, "{} {}: type={} needs dest= (dest=- for stdout)",
                     kFlag, value, TypeName(t, registry));
  }
  if (t == OutputType::kLocal && spec.dest == "-") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} {}: type=local cannot write to stdout (use type=tar,dest=-)", kFlag,
                     value);
  }
  if (t == OutputType::kOci && !spec.tar && spec.dest == "-") {
    return MakeError(ErrorCode::kInvalidArgument, "{} {}: tar=false writes a directory, not stdout",
                     kFlag, value);
  }
  return spec;
}

Result<std::vector<OutputSpec>> ParseOutputSpecs(const std::vector<std::string>& values) {
  std::vector<OutputSpec> out;
  std::set<std::string> dests;
  bool stdout_taken = false;
  for (const auto& v : values) {
    STRATA_ASSIGN_OR_RETURN(auto spec, ParseOutputSpec(v));
    if (spec.ToStdout()) {
      if (stdout_taken) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: only one output can write to stdout",
                         kFlag, v);
      }
      stdout_taken = true;
    } else if (!spec.dest.empty() && !dests.insert(spec.dest).second) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: dest {} is used by another output",
                       kFlag, v, spec.dest);
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseAnnotationFlags(
    const std::vector<std::string>& values) {
  std::map<std::string, std::string> out;
  for (const auto& a : values) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return MakeError(ErrorCode::kInvalidArgument, "--annotation {}: want KEY=VALUE", a);
    }
    std::string key = a.substr(0, eq);
    if (auto colon = key.find(':'); colon != std::string::npos) {
      // BuildKit's TYPE[PLATFORM]:KEY; only the manifest is ours to annotate.
      std::string target = key.substr(0, colon);
      if (target != "manifest") {
        return MakeError(ErrorCode::kUnimplemented,
                         "--annotation {}: \"{}:\" annotations are not supported (only the "
                         "manifest's: KEY=V or manifest:KEY=V)",
                         a, target);
      }
      key = key.substr(colon + 1);
      if (key.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "--annotation {}: empty key", a);
      }
    }
    out[key] = a.substr(eq + 1);
  }
  return out;
}

Result<LayerCompression> MergeOutputCompression(const std::vector<OutputSpec>& outputs) {
  LayerCompression lc;
  for (const auto& o : outputs) {
    if (o.compression) {
      if (lc.compression && *lc.compression != *o.compression) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "{} {}: compression differs from another output's (the layers are made "
                         "once)",
                         kFlag, o.raw);
      }
      lc.compression = o.compression;
    }
    if (o.compression_level) {
      if (lc.level && *lc.level != *o.compression_level) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "{} {}: compression-level differs from another output's", kFlag, o.raw);
      }
      lc.level = o.compression_level;
    }
  }
  return lc;
}

}  // namespace strata::cli
