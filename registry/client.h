// Client: pulls images from and pushes images to OCI distribution registries
// (OCI distribution spec v1.1, Docker registry HTTP API v2).
//
// Pull: resolve the reference with Accept for OCI manifest/index and Docker
// schema2 manifest/list; select the platform from an index (keeping the
// index); fetch config and layers in parallel (bounded), each streamed into
// the store's ingest and verified against its digest and size; a broken
// download resumes with Range. A blob the store already has is re-hashed
// before it is skipped: a corrupt one is quarantined (Store::QuarantineBlob,
// moved out of blobs/, never rewritten) and downloaded again. Then the
// manifest's exact bytes go into the store (checked the same way) and the
// reference is tagged.
//
// Push: for each blob HEAD, else cross-repository mount, else upload
// (POST + monolithic PUT for small blobs, chunked PATCH with Content-Range for
// large ones, resuming from the registry's offset); uploads run in parallel
// (bounded); then PUT the manifest's exact bytes with its media type. An index
// in the store is pushed with every child manifest. Local blob bytes are
// hashed while they are sent: on a mismatch the upload is abandoned before it
// is finalized (the monolithic PUT is cut before its last bytes; the chunked
// upload's final PUT ?digest= is never sent) with DataLoss "digest mismatch".
//
// Lost responses: the requests that finish an upload (PUT ?digest=) and the
// manifest PUT are not replayed blindly (the registry may have applied them
// and closed the upload session). After one fails the client HEADs the blob
// (or the manifest, comparing Docker-Content-Digest) and treats "present" as
// success; only if it is absent does it start a new upload session / PUT
// again, at most max_resumes times.
//
// Transport stack per registry session:
//   AuthTransport -> RetryTransport -> RedirectTransport -> base (curl / fake).
// Scheme: https; plain http when the registry is insecure
// (ClientOptions::tls_verify=false, insecure_registries) or is localhost /
// 127.0.0.1 / ::1 and https fails, as podman does.
//
// Thread-safety: a Client may run several operations concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "registry/auth.h"
#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/progress.h"
#include "registry/retry.h"
#include "registry/transport.h"

namespace strata::registry {

struct SendHash;  // client.cc: hashes a local blob while a push sends it

struct ClientOptions {
  bool tls_verify = true;                     // false: every registry is insecure
  std::set<std::string> insecure_registries;  // host[:port]: http allowed, TLS unverified
  // containers-certs.d(5) roots, searched in order (see curl_transport.h).
  std::vector<std::filesystem::path> certs_dirs = {"/etc/containers/certs.d",
                                                   "/etc/docker/certs.d"};
  RetryPolicy retry;
  // A transfer below low_speed_limit bytes/s for low_speed_time is aborted
  // (Unavailable, "transfer too slow") and retried within the retry policy
  // and the pull/push resume bounds. 0 disables the check.
  int64_t low_speed_limit = 1024;
  std::chrono::milliseconds low_speed_time{30000};
  std::string user_agent = "strata/0.1";

  // Adds the hosts of $STRATA_INSECURE_REGISTRIES (comma-separated).
  void AddInsecureFromEnvironment();
};

struct PullOptions {
  oci::Platform platform = oci::Platform::Host();
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

struct PushOptions {
  int jobs = 3;  // parallel blob uploads
  // Repositories on the destination registry to try mounting blobs from.
  std::vector<std::string> mount_from;
  int64_t monolithic_max = 32 << 20;  // larger blobs go up in chunks
  int64_t chunk_size = 64 << 20;
  int max_resumes = 5;  // per blob, after a failed chunk
  ProgressSink* progress = nullptr;
};

struct PushResult {
  oci::Reference ref;          // destination
  oci::Descriptor descriptor;  // of the pushed manifest or index
  int blobs_uploaded = 0;
  int blobs_skipped = 0;
  int blobs_mounted = 0;
  int64_t bytes_uploaded = 0;
};

struct Resolved {
  oci::Descriptor descriptor;  // media type, digest, size of the document
  std::string bytes;           // the document, verified against digest
};

class Client {
 public:
  // `base` is the bottom transport (CurlTransport, or a fake in tests).
  // `credentials` may be null (anonymous).
  Client(std::shared_ptr<Transport> base, std::shared_ptr<const CredentialStore> credentials,
         ClientOptions options, std::shared_ptr<Clock> clock = std::make_shared<SystemClock>());

  // A client over libcurl configured from `options`.
  static std::unique_ptr<Client> Create(std::shared_ptr<const CredentialStore> credentials,
                                        ClientOptions options);

  // Pulls `ref` into `store` and tags it. Errors name registry, repository and
  // digest: NotFound (unknown manifest/blob), Unauthenticated,
  // FailedPrecondition (content does not match its digest: nothing of that
  // blob is stored and the reference is not tagged), Unavailable.
  Result<PullResult> Pull(oci::Store& store, const oci::Reference& ref, const PullOptions& opts);

  // Pushes the image (or index) `source` names in `store` (a tag, name@digest
  // or digest string as Store::Resolve accepts) to `dest`. The returned
  // descriptor's digest is the one the registry stored (equal to the local
  // one: the bytes are pushed unchanged).
  Result<PushResult> Push(oci::Store& store, std::string_view source, const oci::Reference& dest,
                          const PushOptions& opts);

  // Fetches the manifest or index `ref` names (no platform selection).
  Result<Resolved> Resolve(const oci::Reference& ref);

  // Checks `auth` against `registry` (a reference domain): OK if the registry
  // accepts it (or needs no auth). Unauthenticated if rejected.
  Status CheckLogin(std::string_view registry, const AuthConfig& auth);

 private:
  struct Session;
  Result<std::shared_ptr<Session>> OpenSession(const std::string& domain, const std::string& repo,
                                               std::vector<std::string> scopes,
                                               const std::optional<AuthConfig>& auth_override);
  Result<Resolved> FetchManifest(Session& s, const std::string& reference,
                                 const std::optional<oci::Digest>& expect);
  Status FetchBlob(Session& s, oci::Store& store, const oci::Descriptor& d, const PullOptions& opts,
                   PullResult& result);
  Status PushBlob(Session& s, oci::Store& store, const oci::Descriptor& d, const PushOptions& opts,
                  PushResult& result);
  // One upload attempt into the session at `location`, finished by PUT
  // ?digest= (sent once, never replayed). DataLoss if the local bytes do not
  // match d.digest (nothing is finalized).
  Status UploadMonolithic(Session& s, oci::Store& store, const oci::Descriptor& d,
                          const std::string& location, const std::shared_ptr<SendHash>& hash);
  Status UploadChunked(Session& s, oci::Store& store, const oci::Descriptor& d,
                       std::string location, const std::shared_ptr<SendHash>& hash,
                       const PushOptions& opts);
  // Whether the registry has blob `d` (HEAD): true on 200, false on 404.
  Result<bool> HasBlob(Session& s, const oci::Descriptor& d, const std::string& what);
  // Whether `reference` (tag or digest) names manifest `digest` on the
  // registry (HEAD, falling back to GET when no Docker-Content-Digest).
  bool HasManifest(Session& s, const std::string& reference, const std::string& media_type,
                   const oci::Digest& digest);
  // For pull: true if the store has `d` intact. A corrupt copy is moved to
  // the quarantine (reported to `progress`) and false returned.
  Result<bool> HaveIntactLocalCopy(oci::Store& store, const oci::Descriptor& d,
                                   ProgressSink* progress);
  Result<oci::Digest> PutManifest(Session& s, const std::string& reference,
                                  const std::string& media_type, const std::string& bytes,
                                  const PushOptions& opts);
  bool IsInsecure(const std::string& host) const;

  std::shared_ptr<Transport> base_;
  std::shared_ptr<Transport> redirect_;
  std::shared_ptr<Transport> retrying_;
  std::shared_ptr<const CredentialStore> credentials_;
  ClientOptions options_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<TokenCache> tokens_;
  std::mutex stats_mu_;  // guards the counters of results filled by workers
};

// Index of the manifest in `index` for `platform` (containerd matching);
// NotFound listing the platforms offered.
Result<size_t> SelectPlatform(const oci::Index& index, const oci::Platform& platform);

}  // namespace strata::registry
