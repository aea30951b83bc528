// Garbage collection of the store: mark what the roots reach, sweep the rest.
//
// The roots are index.json's entries (tags and untagged images) plus whatever
// the caller hands in (PruneOptions::extra_roots: the builder's cache records
// keep their layer blobs that way). The store never reads another
// component's files to find roots. Marking is MarkReachable, a small function
// over the BlobStore interface; Store::Prune (oci/gc.cc) sweeps blobs,
// ingest leftovers and, through oci/snapshots, unused snapshots.
//
// Thread-compatible: MarkReachable only reads the blob store.
#pragma once

#include <functional>
#include <string>
#include <unordered_set>

#include "oci/blob_store.h"
#include "oci/descriptor.h"
#include "oci/digest.h"

namespace strata::oci {

struct GcMarks {
  std::unordered_set<Digest> live;     // every blob reached
  std::unordered_set<Digest> configs;  // image configs reached (their chains keep snapshots)
};

// Adds to `marks` every blob reachable from `root` (an index, a manifest, or
// any other blob, which is kept as it is): nested indexes, manifests, configs
// and layers. A manifest's missing or wrongly sized blobs are reported through
// `problem`; a manifest or index that cannot be read or parsed (so what it
// reaches is unknown) through both `problem` and `unreadable`. Entries of an
// index that are not in the store are skipped (partial multi-platform pulls).
// A missing layer for which `lazy` (if set) returns true — a lazy base layer
// whose source is recorded, oci/blob_sources.h — is marked but no problem.
void MarkReachable(const BlobStore& blobs, const Descriptor& root, GcMarks& marks,
                   const std::function<void(std::string)>& problem,
                   const std::function<void(std::string)>& unreadable,
                   const std::function<bool(const Digest&)>& lazy = nullptr);

}  // namespace strata::oci
