// Client: pulls images from and pushes images to OCI distribution registries
// (OCI distribution spec v1.1, Docker registry HTTP API v2). A thin facade
// over the three parts of the client:
//
//   session.h  SessionFactory / Session: ping, scheme, auth challenges, token
//              cache, scopes, the transport stack and the request helper;
//   puller.h   Puller: manifests, index/platform selection, verified and
//              resumable blob downloads;
//   pusher.h   Pusher: HEAD / cross-repo mount / monolithic or chunked
//              upload, the finishing PUT checked with HEAD, manifest PUT.
//
// The facade returns plain Result<T>: the protocol codes of a failure are in
// its message (and on the RegistryError the Puller and Pusher return).
// The real transport comes from tools/curl (MakeCurlClient); tests pass a
// scripted fake.
//
// Thread-safety: a Client may run several operations concurrently.
#pragma once

#include <memory>
#include <string_view>

#include "oci/reference.h"
#include "oci/store.h"
#include "registry/auth.h"
#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/puller.h"
#include "registry/pusher.h"
#include "registry/session.h"
#include "registry/transport.h"

namespace strata::registry {

class Client {
 public:
  // `base` is the bottom transport (CurlTransport, or a fake in tests).
  // `credentials` may be null (anonymous).
  Client(std::shared_ptr<Transport> base, std::shared_ptr<const CredentialStore> credentials,
         ClientOptions options, std::shared_ptr<Clock> clock = std::make_shared<SystemClock>());
  // The puller and pusher refer to the session factory inside: not copyable.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Pulls `ref` into `store` and tags it (see Puller::Pull).
  Result<PullResult> Pull(oci::Store& store, const oci::Reference& ref, const PullOptions& opts);

  // Pushes what `source` names in `store` to `dest` (see Pusher::Push).
  Result<PushResult> Push(oci::Store& store, std::string_view source, const oci::Reference& dest,
                          const PushOptions& opts);

  // Fetches the manifest or index `ref` names (no platform selection).
  Result<Resolved> Resolve(const oci::Reference& ref);

  // Fetches blob `d`, absent from `store` (a lazy base layer), from its
  // recorded source (see FetchRecordedBlob in puller.h).
  Status FetchRecordedBlob(oci::Store& store, const oci::Descriptor& d, const PullOptions& opts);

  // Checks `auth` against `registry` (a reference domain): OK if the registry
  // accepts it (or needs no auth). Unauthenticated if rejected.
  Status CheckLogin(std::string_view registry, const AuthConfig& auth);

  Puller& puller() { return puller_; }
  // For helpers that open their own sessions (registry/index_merge.h,
  // registry/referrers.h).
  SessionFactory& sessions() { return sessions_; }
  Pusher& pusher() { return pusher_; }

 private:
  SessionFactory sessions_;
  Puller puller_;
  Pusher pusher_;
};

}  // namespace strata::registry
