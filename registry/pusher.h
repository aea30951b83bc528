// Pusher: the upload direction of the registry client.
//
// For each blob: HEAD; else a cross-repository mount (POST ?mount=&from=:
// 201 mounted; 202 the registry declined and opened an upload session, which
// is cancelled (DELETE) when another source is left to try, else used; a refusal — DENIED,
// UNAUTHORIZED, BLOB_UNKNOWN, NAME_UNKNOWN, any 4xx — tries the next source repository, then a
// plain upload); else an upload (POST, then a monolithic PUT ?digest= for small blobs, or PATCH
// chunks with Content-Range following each Location, relative or absolute,
// resuming from the registry's Range after a failed chunk, and a final PUT
// ?digest=). Uploads run in parallel (bounded); then the manifest's exact
// bytes are PUT with its media type. An index in the store is pushed with
// every child manifest. Local blob bytes are hashed while they are sent: on
// a mismatch the upload is abandoned before it is finalized (the monolithic
// PUT is cut before its last bytes; the chunked upload's final PUT is never
// sent) with DataLoss "digest mismatch".
//
// Lost responses: the requests that finish an upload (PUT ?digest=) and the
// manifest PUT are not replayed blindly (the registry may have applied them
// and closed the upload session). After one fails the pusher HEADs the blob
// (or the manifest, comparing Docker-Content-Digest) and treats "present" as
// success; only if it is absent does it start a new upload session / PUT
// again, at most max_resumes times, and only for a failure a new session can
// help: connection errors and 5xx, BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID
// (the session is gone), DIGEST_INVALID / SIZE_INVALID (bytes damaged on the
// way), 416 and a 404 without a protocol code.
//
// Every blob that ends up on the registry (skipped because present, mounted,
// uploaded) is recorded in the store as present in the destination
// repository (oci/blob_sources.h), best effort: a record that cannot be
// written does not fail the push.
//
// Thread-safety: a Pusher may run several pushes at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "oci/descriptor.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "registry/progress.h"
#include "registry/session.h"

namespace strata::registry {

struct PushOptions {
  int jobs = 3;  // parallel blob uploads
  // Repositories on the destination registry to try mounting blobs from.
  std::vector<std::string> mount_from;
  // Also try, for each blob, the repositories recorded for it in the store
  // (oci/blob_sources.h) on the destination's registry (same domain), most
  // recent first, at most max_recorded_mounts per blob, after mount_from.
  // Their pull scope is asked for with the push token (as docker does), at
  // most max_mount_scopes repositories in all; a mount from a repository
  // beyond that is refused by the registry and the blob is uploaded.
  bool mount_recorded = true;
  int max_recorded_mounts = 3;
  int max_mount_scopes = 8;
  int64_t monolithic_max = 32 << 20;  // larger blobs go up in chunks
  int64_t chunk_size = 64 << 20;
  int max_resumes = 5;  // per blob, after a failed chunk or upload
  ProgressSink* progress = nullptr;
};

struct PushResult {
  oci::Reference ref;          // destination
  oci::Descriptor descriptor;  // of the pushed manifest or index
  int blobs_uploaded = 0;
  int blobs_skipped = 0;
  int blobs_mounted = 0;
  int64_t bytes_uploaded = 0;
  // Blobs that were not in the store (lazy base layers) and could not be
  // mounted: fetched from their recorded source (oci/blob_sources.h) into
  // the store first, then uploaded.
  int blobs_fetched = 0;
  int64_t bytes_fetched = 0;
};

struct SendHash;  // pusher.cc: hashes a local blob while it is sent

class Pusher {
 public:
  // `sessions` must outlive the Pusher.
  explicit Pusher(SessionFactory& sessions) : sessions_(sessions) {}

  // Pushes the image (or index) `source` names in `store` (a tag, name@digest
  // or digest string as Store::Resolve accepts) to `dest`. The returned
  // descriptor's digest is the one the registry stored (equal to the local
  // one: the bytes are pushed unchanged). DataLoss if a local blob is corrupt
  // (nothing of it is finalized on the registry). A layer blob the store does
  // not have (a lazy base layer) is mounted from a recorded repository on the
  // destination's registry, else fetched from its recorded source on any
  // registry (FetchRecordedBlob) and uploaded; NotFound naming the blob if no
  // source is recorded.
  RegistryResult<PushResult> Push(oci::Store& store, std::string_view source,
                                  const oci::Reference& dest, const PushOptions& opts);

 private:
  // `mount_from`: the repositories to try mounting `d` from, in order.
  RegistryResult<void> PushBlob(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                const std::vector<std::string>& mount_from, const PushOptions& opts,
                                PushResult& result);
  // POST an upload session (with `from`: a mount). 201 (mounted) gives "".
  RegistryResult<std::string> StartUpload(const Session& s, const oci::Descriptor& d,
                                          const std::string& from, const std::string& what);
  // One upload attempt into the session at `location`, finished by PUT
  // ?digest= (sent once, never replayed). DataLoss if the local bytes do not
  // match d.digest (nothing is finalized).
  RegistryResult<void> UploadMonolithic(const Session& s, oci::Store& store,
                                        const oci::Descriptor& d, const std::string& location,
                                        const std::shared_ptr<SendHash>& hash);
  RegistryResult<void> UploadChunked(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                     std::string location, const std::shared_ptr<SendHash>& hash,
                                     const PushOptions& opts);
  RegistryResult<oci::Digest> PutManifest(const Session& s, const std::string& reference,
                                          const std::string& media_type, const std::string& bytes,
                                          const PushOptions& opts);

  SessionFactory& sessions_;
  std::mutex stats_mu_;  // guards the counters of results filled by workers
};

// Whether the registry has blob `d` in `s` (HEAD): true on 200, false on 404.
RegistryResult<bool> HasBlob(const Session& s, const oci::Descriptor& d, const std::string& what);

// Whether `reference` (tag or digest) names manifest `digest` on the registry
// (HEAD, falling back to GET when there is no Docker-Content-Digest).
bool HasManifest(const Session& s, const std::string& reference, const std::string& media_type,
                 const oci::Digest& digest);

// "0-N" (the Range of an upload status) -> N+1 bytes received; nullopt if
// absent or malformed. "0-0" counts as 0 (an empty session, as registries say).
std::optional<int64_t> UploadedBytes(std::string_view range);

}  // namespace strata::registry
