// `strata build -o/--output` and `--annotation` in BuildKit's syntax
// (docker buildx build): what the build exports besides the image in the
// store. Pure parsing; cmd_build.cc runs the exports.
//
//   -o type=local,dest=DIR        the target's flattened filesystem into DIR
//   -o type=tar,dest=FILE|-       the same as a tar (- = stdout)
//   -o type=oci,dest=FILE|-[,tar=false]   an oci-archive, or with tar=false
//                                 an OCI layout directory
//   -o type=docker,dest=FILE|-    a docker-archive (`docker load`)
//   -o type=image[,name=R][,push=true]    tag (and push) the image
//   -o type=registry[,name=R]     = type=image,push=true
//   -o type=cacheonly             nothing besides the build cache
//   -o DIR  (no comma, no type=)  = type=local,dest=DIR;  -o -  = tar to stdout
//
// Options of the image-producing types (oci, docker, image, registry):
// name (several as "name=a,b" in a quoted field), compression=gzip|zstd|
// uncompressed, compression-level=N, force-compression=false,
// oci-mediatypes=true, annotation.KEY=V (and annotation-manifest.KEY=V),
// rewrite-timestamp=true|false. Everything else is an error naming the key:
// nothing is accepted and ignored. force-compression=true and
// oci-mediatypes=false are refused (strata keeps base layers as they are
// and writes OCI media types only).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/compress.h"
#include "oci/util/error.h"

namespace strata::cli {

enum class OutputType { kLocal, kTar, kOci, kDocker, kImage, kCacheOnly };

struct OutputSpec {
  OutputType type = OutputType::kImage;
  std::string raw;                 // as given, for messages
  std::string dest;                // local, tar, oci, docker; "-" = stdout
  bool tar = true;                 // oci: false writes an OCI layout directory
  std::vector<std::string> names;  // name=, comma-separated
  bool push = false;               // image push=true; always for registry
  std::optional<oci::Compression> compression;
  std::optional<int> compression_level;
  std::map<std::string, std::string> annotations;  // manifest annotations
  std::optional<bool> rewrite_timestamp;

  bool ToStdout() const { return dest == "-"; }
  friend bool operator==(const OutputSpec&, const OutputSpec&) = default;
};

// One `-o` value. InvalidArgument naming the flag value and the bad type,
// key or value.
Result<OutputSpec> ParseOutputSpec(std::string_view value);

// All `-o` values: each parsed, then checked together (at most one writes to
// stdout; a local/tar/oci/docker dest used once).
Result<std::vector<OutputSpec>> ParseOutputSpecs(const std::vector<std::string>& values);

// `--annotation KEY=V` (also `manifest:KEY=V`, BuildKit's explicit form of
// the same). Other targets (index, manifest-descriptor, platforms) are
// refused: strata makes a single-platform manifest without an index.
Result<std::map<std::string, std::string>> ParseAnnotationFlags(
    const std::vector<std::string>& values);

// What the outputs and the flags say about layer compression, merged:
// nullopt when nobody said anything, an error when two say different things.
struct LayerCompression {
  std::optional<oci::Compression> compression;
  std::optional<int> level;
};
Result<LayerCompression> MergeOutputCompression(const std::vector<OutputSpec>& outputs);

}  // namespace strata::cli
