// `strata build --cache-from/--cache-to` values: strata's plain REF form and
// BuildKit's syntax, parsed and validated before the build starts. Pure; the
// export and import themselves are in cmd_build.cc over builder's
// ExportCache/ImportCache (build_cache.h).
//
//   REF                                  a registry image holding every record
//                                        the build used (strata's form; as mode=max)
//   type=registry,ref=R[,mode=min|max][,image-manifest=true][,oci-mediatypes=true]
//                      [,ignore-error=true|false]
//   type=local,dest=DIR[,tag=T][,mode=…][,image-manifest=true][,ignore-error=…]
//                                        (--cache-to: an OCI layout directory)
//   type=local,src=DIR[,tag=T]           (--cache-from)
//
// mode=max exports the records of every stage the build ran (intermediate
// stages too, so another target reuses them); mode=min (BuildKit's default)
// only those whose layer is in the final image and the layer-less ones.
// Refused with an error naming the option: type=inline (the records would
// have to live in the image config), type=gha|s3|azblob, compression=,
// compression-level=, force-compression=true (the cache holds the layers as
// built), image-manifest=false and oci-mediatypes=false (strata's cache is
// always an OCI image manifest), any unknown key.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "oci/reference.h"
#include "oci/util/error.h"

namespace strata::cli {

enum class CacheDirection { kFrom, kTo };
enum class CacheType { kRegistry, kLocal };
enum class CacheMode { kMin, kMax };

struct CacheSpec {
  CacheType type = CacheType::kRegistry;
  std::string raw;                    // as given, for messages
  std::optional<oci::Reference> ref;  // registry
  std::filesystem::path dir;          // local: dest (to) or src (from)
  std::string tag = "latest";         // local: the index.json ref.name
  CacheMode mode = CacheMode::kMax;   // to: plain REF = max, BuildKit syntax default min
  bool ignore_error = false;          // to: an export failure is a warning
};

// One value of --cache-from (kFrom) or --cache-to (kTo). InvalidArgument (or
// Unimplemented for a known but unsupported type or option) naming the flag,
// the value and the key.
Result<CacheSpec> ParseCacheSpec(std::string_view value, CacheDirection direction);

}  // namespace strata::cli
