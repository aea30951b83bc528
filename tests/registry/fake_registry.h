// FakeRegistry: an in-memory OCI distribution registry behind a
// ScriptedTransport, for hermetic tests of the registry client. It serves
// https://reg.example (any repository), a token endpoint at
// https://auth.example/token, blob storage at https://cdn.example (for
// redirected blob GETs) and upload sessions on reg.example or, with
// `upload_host`, another host. Every switch below is a fault or a protocol
// variant a test turns on; `hook` answers any request before the registry
// does (return nullopt to let the registry answer).
//
// Thread-safety: Handle may be called from several threads (the client runs
// parallel blob transfers); tests read the counters after the client returns.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "registry/transport.h"
#include "tests/registry/fakes.h"

namespace strata::registry::testing {

class FakeRegistry {
 public:
  enum class Auth { kNone, kBasic, kBearer };
  enum class Mount { kAllow, kDecline, kDeny, kServerError };

  struct Repo {
    std::map<std::string, std::string> blobs;        // digest -> bytes
    std::map<std::string, std::string> manifests;    // tag or digest -> bytes
    std::map<std::string, std::string> media_types;  // tag or digest -> media type
  };

  // --- switches ---
  Auth auth = Auth::kNone;
  std::string user = "alice";
  std::string password = "s3cret";
  int64_t token_expires_in = 300;
  bool reject_tokens = false;   // 401 even for a valid token
  std::string challenge_scope;  // overrides the scope the Bearer challenge names
  Mount mount = Mount::kAllow;
  bool absolute_locations = false;                   // Location of upload sessions as absolute URLs
  std::string upload_host;                           // if set, upload sessions live on this host
  bool relative_patch_locations = false;             // PATCH answers a relative Location ("u3?...")
  bool redirect_blobs = false;                       // blob GETs answer 307 to cdn.example
  bool ignore_range = false;                         // blob GETs ignore Range (200, whole blob)
  std::map<std::string, std::string> corrupt_blobs;  // digest -> bytes served instead
  std::map<std::string, int64_t> cut_blob_once;      // digest -> cut after N bytes, once
  std::map<std::string, int> short_blob_once;        // digest -> end body early (bytes), once
  int lose_blob_puts = 0;      // finishing PUT applied, response lost (connection reset)
  int fail_blob_puts = 0;      // finishing PUT not applied, connection reset
  int lose_manifest_puts = 0;  // manifest PUT applied, response lost
  std::function<std::optional<Result<Response>>(const Request&)> hook;
  // More registry hosts, served from the same repositories as reg.example
  // (a second registry for cross-registry tests: same contents, another
  // domain, so no mount between them).
  std::set<std::string> other_hosts;

  // --- state ---
  Repo& repo(const std::string& name);
  int posts = 0;          // POST .../blobs/uploads/ (with or without mount)
  int blob_puts = 0;      // finishing PUTs applied
  int manifest_puts = 0;  // manifest PUTs applied
  int patches = 0;
  std::vector<std::string> token_requests;     // URLs (GET) or bodies (POST) of token requests
  std::vector<std::string> cdn_authorization;  // Authorization seen by cdn.example ("" if none)

  Result<Response> Handle(const Request& req);

  // A ScriptedTransport over Handle (records every request).
  std::shared_ptr<ScriptedTransport> Transport();

  // Stores an image manifest in `repo` under `tag` (and its digest); returns its digest.
  std::string PutManifest(const std::string& repo, const std::string& tag, const std::string& bytes,
                          const std::string& media_type);

 private:
  Result<Response> HandleLocked(const Request& req);
  Result<Response> Token(const Request& req);
  Result<Response> Cdn(const Request& req);
  Result<Response> Blob(const Request& req, Repo& r, const std::string& digest);
  Result<Response> Upload(const Request& req, const std::string& repo, const std::string& id,
                          const std::string& query);
  Result<Response> Manifest(const Request& req, Repo& r, const std::string& ref);
  std::optional<Response> CheckAuth(const Request& req, const std::string& repo);
  std::string SessionUrl(const std::string& repo, const std::string& id, bool absolute) const;

  std::recursive_mutex mu_;
  std::map<std::string, Repo> repos_;
  struct Session {
    std::string repo;
    std::string bytes;
  };
  std::map<std::string, Session> sessions_;
  std::set<std::string> tokens_;
  int next_id_ = 1;
};

// Reads a request's body (in memory or streamed) in full.
Result<std::string> ReadRequestBody(const Request& req);

}  // namespace strata::registry::testing
