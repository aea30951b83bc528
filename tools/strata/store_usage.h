// What the store's tags and build-cache records keep: shared by `strata df`
// (usage) and `strata prune` (the build cache's least-recently-used order).
// Read-only; callers hold the store open.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/store.h"

namespace strata::cli {

// Marks the blobs `desc` reaches (an index's manifests, a manifest's config
// and layers) in `live` (digest strings) and appends the configs. Unreadable
// parts are reported through `warn`, never fatal.
void Mark(const oci::Store& store, const oci::Descriptor& desc,
          std::unordered_set<std::string>& live, std::vector<oci::Digest>& configs,
          const std::function<void(std::string)>& warn, int depth = 0);

// The "blobs" of the cache record file `record`; empty if unreadable.
std::vector<std::string> RecordBlobs(const std::filesystem::path& record);

}  // namespace strata::cli
