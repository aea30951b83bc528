// Blob sources: where the store's blobs are known to exist on registries, so
// that a push can ask the destination registry to mount a blob from another
// repository of its own instead of uploading it again (cross-repository
// mount, distribution-spec "Mounting a blob from another repository").
//
// On disk (design block):
//
//   ROOT/sources/<alg>/<hex>     one small JSON document per blob digest:
//       {"sources":[{"registry":"127.0.0.1:5000","repository":"library/base"},
//                   ...]}
//     most recent first, each (registry, repository) at most once, at most
//     kMaxBlobSources entries (the oldest fall off). Written with
//     WriteFileAtomic under ROOT/sources/.lock (flock, exclusive), so two
//     processes recording the same blob never lose each other's entry.
//   ROOT/sources/.lock           that flock; never deleted.
//
// Records are kept for manifests too: the platform manifests of an index
// pulled for one platform are recorded where the index came from, so the
// store knows where its absent children are (oci/image_index.h).
//
// A record is a hint, never proof: the repository may have been deleted
// since, and a push treats a refused mount as "upload instead". A record may
// exist for a blob the store does not have (it names where to fetch it).
// Store::Prune removes the records of every blob it does not keep.
//
// Why oci/ and plain strings: the registry client (registry/puller, pusher)
// records and reads them, but the store owns everything under ROOT and its
// GC must drop the records of deleted blobs; oci/ may not depend on
// registry/, so the record is two strings — the registry as a reference's
// domain ("docker.io", "127.0.0.1:5000") and the repository path — and the
// registry client decides which records fit a destination (same domain).
//
// Thread-safety: safe from several threads and processes (the lock file).
#pragma once

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

#include "oci/digest.h"
#include "oci/util/error.h"

namespace strata::oci {

class Store;

struct BlobLocation {
  std::string registry;    // a reference's domain: "docker.io", "127.0.0.1:5000"
  std::string repository;  // its path: "library/debian", "app"
  bool operator==(const BlobLocation&) const = default;
};

inline constexpr size_t kMaxBlobSources = 8;

// Records that blob `d` exists at `src` (moving it to the front if it was
// already recorded). InvalidArgument if either string is empty.
Status RecordBlobSource(const Store& store, const Digest& d, const BlobLocation& src);

// The recorded sources of `d`, most recent first; empty if none. A record
// that cannot be parsed reads as empty (it is only a hint; the next
// RecordBlobSource replaces it).
Result<std::vector<BlobLocation>> ReadBlobSources(const Store& store, const Digest& d);

// Removes the record of every digest not in `keep` (Store::Prune); returns
// how many were removed.
Result<int64_t> SweepBlobSources(const Store& store, const std::unordered_set<Digest>& keep);

}  // namespace strata::oci
