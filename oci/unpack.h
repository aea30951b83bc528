// Unpack: materialise an image's flattened root file system in a directory
// (`strata unpack REF DIR`): every layer applied in order with the applier's
// safety rules (oci/layer_reader.h), whiteouts resolved, no `.wh.` marker
// left, each layer's digest and diffID verified.
// Thread-safety: reentrant; one call per target.
#pragma once

#include <filesystem>

#include "oci/layer_reader.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

struct UnpackOptions {
  bool allow_devices = false;                        // only for root
  bool preserve_owners = true;                       // chown to the layers' uid/gid (root)
  uint64_t max_layer_bytes = kDefaultMaxLayerBytes;  // per uncompressed layer
};

// Unpacks `image` into `target`, which is created if missing and must be
// empty otherwise (FailedPrecondition). On error the target is left as it
// was: emptied again, and removed if this call created it (not the parents
// it may have created with it); the error names the image, the layer and
// the entry.
Status UnpackImage(const Store& store, const Image& image, const std::filesystem::path& target,
                   const UnpackOptions& opts);

}  // namespace strata::oci
