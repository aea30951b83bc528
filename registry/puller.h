// Puller: the download direction of the registry client.
//
// Pull resolves the reference with Accept for OCI manifest/index and Docker
// schema2 manifest/list; selects the platform from an index (keeping the
// index); fetches config and layers in parallel (bounded), each streamed into
// the store's ingest and verified against its digest and size; a broken
// download resumes with Range (a registry that ignores Range and answers 200
// restarts the ingest; 416 starts over). A blob the store already has is
// re-hashed before it is skipped: a corrupt one is quarantined
// (Store::QuarantineBlob, moved out of blobs/, never rewritten) and downloaded
// again. Then the manifest's exact bytes go into the store (checked the same
// way) and the reference is tagged. A manifest whose bytes do not match the
// digest asked for (or the registry's Docker-Content-Digest) is refused and
// nothing is stored.
//
// Every blob of the pulled manifest (fetched or already present) is recorded
// in the store as present in the source repository (oci/blob_sources.h), so
// that a later push to the same registry can mount it; best effort (a record
// that cannot be written does not fail the pull).
//
// Errors are RegistryErrors (HTTP status and protocol codes kept) naming the
// registry, repository and digest.
//
// Thread-safety: a Puller may run several pulls at once.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "registry/progress.h"
#include "registry/session.h"

namespace strata::registry {

struct PullOptions {
  oci::Platform platform = oci::Platform::Host();
  // false: fetch the manifest (and index) and the config only, for a build
  // that never reads the image's file system (lazy base layers). The layers
  // stay at the registry, recorded as their source (oci/blob_sources.h); the
  // reference is tagged all the same (Store::LoadImageMetadata reads it; a
  // later full pull, or FetchRecordedBlob, fetches the layers).
  bool layers = true;
  // Of an index: fetch every manifest it lists (each with its config and
  // layers) and tag the index itself, so the local copy is complete and can
  // be pushed; `platform` is then ignored. Without it a pull of an index
  // fetches the `platform` manifest and tags that; the index is stored too,
  // and its other manifests are recorded as being in the source repository
  // (oci/image_index.h calls them remote).
  bool all_platforms = false;
  int jobs = 3;         // parallel blob downloads
  int max_resumes = 5;  // per blob, after a broken download
  ProgressSink* progress = nullptr;
};

struct PullResult {
  oci::Reference ref;
  oci::Descriptor manifest;              // what `ref` is tagged to in the store
  std::optional<oci::Descriptor> index;  // the index it was selected from
  int blobs_fetched = 0;
  int blobs_skipped = 0;
  int64_t bytes_fetched = 0;
};

struct Resolved {
  oci::Descriptor descriptor;  // media type, digest, size of the document
  std::string bytes;           // the document, verified against digest
};

class Puller {
 public:
  // `sessions` must outlive the Puller.
  explicit Puller(SessionFactory& sessions) : sessions_(sessions) {}

  // Pulls `ref` into `store` and tags it: NotFound (unknown manifest/blob),
  // Unauthenticated, PermissionDenied, FailedPrecondition (content does not
  // match its digest: nothing of that blob is stored and the reference is not
  // tagged), Unavailable (after the bounded retries and resumes).
  RegistryResult<PullResult> Pull(oci::Store& store, const oci::Reference& ref,
                                  const PullOptions& opts);

  // Fetches the manifest or index `ref` names (no platform selection).
  RegistryResult<Resolved> Resolve(const oci::Reference& ref);

  // Fetches manifest `reference` (tag or digest) in session `s`; with
  // `expect`, FailedPrecondition unless the bytes hash to it.
  static RegistryResult<Resolved> FetchManifest(const Session& s, const std::string& reference,
                                                const std::optional<oci::Digest>& expect);

 private:
  RegistryResult<void> FetchBlob(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                 const PullOptions& opts, PullResult& result);

  // Fetches the config and layers of manifest `image` (verified), records
  // them as present in `s`'s repository, and with `put` stores the manifest.
  RegistryResult<void> FetchImageBlobs(const Session& s, oci::Store& store, const Resolved& image,
                                       const PullOptions& opts, PullResult& result,
                                       const std::string& what, bool put = true);

  SessionFactory& sessions_;
  std::mutex stats_mu_;  // guards the counters of results filled by workers
};

// Fetches blob `d` (verified against digest and size, resumed like a pull)
// from the repository `s` into `store`: true if fetched, false if the store
// already had it intact.
RegistryResult<bool> FetchBlobToStore(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                      const PullOptions& opts);

// Fetches blob `d` into `store` from the repositories recorded as its source
// (oci/blob_sources.h), most recent first, on any registry: how a lazy base
// layer is fetched on demand. False if the store already has it. NotFound
// naming the digest if no source is recorded; else the last failure, naming
// the digest and every source tried.
RegistryResult<bool> FetchRecordedBlob(SessionFactory& sessions, oci::Store& store,
                                       const oci::Descriptor& d, const PullOptions& opts);

// Fetches manifest `d` (an index child the store does not have: a remote
// platform manifest, oci/image_index.h) from the repositories recorded as its
// source, verified against its digest, into `store`, and records its config
// and layers as being there (they stay remote: a push mounts or fetches them).
// False if the store already has it. NotFound naming the digest if no source
// is recorded; else the last failure, naming every source tried.
RegistryResult<bool> FetchRecordedManifest(SessionFactory& sessions, oci::Store& store,
                                           const oci::Descriptor& d);

// Index of the manifest in `index` for `platform` (containerd matching);
// NotFound listing the platforms offered.
Result<size_t> SelectPlatform(const oci::Index& index, const oci::Platform& platform);

// For pull: true if the store has `d` intact. A corrupt copy is moved to the
// quarantine (reported to `progress`) and false returned.
Result<bool> HaveIntactLocalCopy(oci::Store& store, const oci::Descriptor& d,
                                 ProgressSink* progress);

}  // namespace strata::registry
