// Session: one repository on one registry, reached through the transport
// stack  AuthTransport -> RetryTransport -> RedirectTransport -> base
// (curl in tools/curl, a scripted fake in tests). SessionFactory opens them:
// it pings /v2/ (https first; plain http when the registry is insecure —
// ClientOptions::tls_verify=false, insecure_registries — or is localhost /
// 127.0.0.1 / ::1 and https fails, as podman does), keeps the auth challenge
// the ping returned, and shares one TokenCache across sessions, so a token
// fetched for a scope is reused until it expires.
//
// Also here: the small helpers the puller and the pusher share (progress
// events, bounded parallelism, the blobs of a manifest).
//
// Thread-safety: a Session and a SessionFactory may be used from several
// threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "oci/manifest.h"
#include "registry/auth.h"
#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/errors.h"
#include "registry/progress.h"
#include "registry/retry.h"
#include "registry/transport.h"

namespace strata::registry {

struct ClientOptions {
  bool tls_verify = true;                     // false: every registry is insecure
  std::set<std::string> insecure_registries;  // host[:port]: http allowed, TLS unverified
  RetryPolicy retry;
  // Settings of the real transport, read by its factory (tools/curl,
  // MakeCurlClient); the client itself does not use them.
  // containers-certs.d(5) roots, searched in order.
  std::vector<std::filesystem::path> certs_dirs = {"/etc/containers/certs.d",
                                                   "/etc/docker/certs.d"};
  // A transfer below low_speed_limit bytes/s for low_speed_time is aborted
  // (Unavailable, "transfer too slow") and retried within the retry policy
  // and the pull/push resume bounds. 0 disables the check.
  int64_t low_speed_limit = 1024;
  std::chrono::milliseconds low_speed_time{30000};
  std::string user_agent = "strata/0.1";

  // Adds the hosts of $STRATA_INSECURE_REGISTRIES (comma-separated).
  void AddInsecureFromEnvironment();
  // Whether `host` (a reference domain or host[:port]) may use plain http and
  // unverified TLS.
  bool IsInsecure(const std::string& host) const;
};

struct Session {
  std::string domain;  // as in the reference (credentials, messages)
  std::string base;    // scheme://authority
  std::string repo;
  std::shared_ptr<Transport> transport;  // the whole stack, with auth
  std::shared_ptr<Clock> clock;
  RetryPolicy retry;

  std::string Where() const { return domain + "/" + repo; }
  std::string RepoUrl() const { return base + "/v2/" + repo; }
  // "domain/repo:tag" or "domain/repo@sha256:…" for a tag or digest string.
  std::string Named(std::string_view reference) const;

  // Sends `req`. A connection-level failure comes back wrapped in `what`; a
  // response whose status is not in `ok` becomes a RegistryError naming
  // `what` with the status and the registry's codes.
  RegistryResult<Response> Send(const Request& req, std::string_view what,
                                std::initializer_list<int> ok) const;
  // Sleeps the retry policy's backoff before retry number `retry` (1-based):
  // used between the client's own resumes (a broken download, a new upload
  // session), which RetryTransport does not replay.
  void Backoff(int retry_number) const;
};

class SessionFactory {
 public:
  // `base` is the bottom transport; `credentials` may be null (anonymous).
  SessionFactory(std::shared_ptr<Transport> base,
                 std::shared_ptr<const CredentialStore> credentials, ClientOptions options,
                 std::shared_ptr<Clock> clock);

  // Pings the registry of `domain` and returns a session for `repo`
  // authorized for `scopes`. `auth_override` replaces the stored credentials
  // (login). Errors name the registry: Unavailable (unreachable),
  // FailedPrecondition (TLS), the ping's HTTP error.
  RegistryResult<std::shared_ptr<Session>> Open(const std::string& domain, const std::string& repo,
                                                std::vector<std::string> scopes,
                                                const std::optional<AuthConfig>& auth_override);

  const ClientOptions& options() const { return options_; }

 private:
  std::shared_ptr<Transport> redirect_;
  std::shared_ptr<Transport> retrying_;
  std::shared_ptr<const CredentialStore> credentials_;
  ClientOptions options_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<TokenCache> tokens_;
};

// --- helpers shared by the puller and the pusher ---

constexpr int64_t kMaxManifestBytes = 4 << 20;

// The Accept header for manifests: `first` (if not empty) then every
// manifest and index type strata reads.
std::string ManifestAccept(std::string_view first = "");

void Emit(ProgressSink* sink, ProgressEvent::Kind kind, const oci::Digest& d, int64_t size,
          int64_t bytes = 0, std::string detail = "");

// Runs fn(0..n-1) on up to `jobs` threads; stops handing out work after the
// first error, which it returns.
RegistryResult<void> RunParallel(int jobs, size_t n,
                                 const std::function<RegistryResult<void>(size_t)>& fn);

// The config and the layers of `m`, each digest once, in manifest order.
std::vector<oci::Descriptor> BlobsOf(const oci::Manifest& m);

// True for localhost, 127.0.0.0/8 and ::1 (with or without a port).
bool IsLocalhost(std::string_view authority);

}  // namespace strata::registry
