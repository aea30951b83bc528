// Import: a root file system (a directory, or a tarball: plain, gzip or zstd)
// becomes a new single-layer image in the store (`strata import SOURCE REF`).
// The config is what a base image needs: os linux, the host architecture
// (or the given platform), Env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:
// /usr/bin:/sbin:/bin, one history entry. A directory is written by the layer
// writer (sorted, reproducible with SOURCE_DATE_EPOCH); a tarball's entries
// are kept byte for byte (only recompressed), as `docker import` does.
// Tagging is the caller's: Store::Tag(ref, returned descriptor).
// Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "oci/descriptor.h"
#include "oci/layer_writer.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

inline constexpr std::string_view kDefaultPathEnv =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct ImportOptions {
  // Compression and SOURCE_DATE_EPOCH (which also clamps `created`).
  LayerWriterOptions layer;
  // Unix seconds for config.created and the history entry; the caller's clock.
  int64_t created = 0;
  std::string created_by = "strata import";
  // Empty os/architecture: Platform::Host().
  Platform platform;
};

struct ImportResult {
  Descriptor manifest;  // what to tag
  Descriptor config;
  LayerInfo layer;
};

// Imports `source`. NotFound if it does not exist; InvalidArgument if a file
// is not a tar (after decompression).
Result<ImportResult> ImportRootfs(Store& store, const std::filesystem::path& source,
                                  const ImportOptions& opts);

}  // namespace strata::oci
