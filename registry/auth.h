// Registry authentication (Docker registry v2 token auth and RFC 7235):
//
//   * ParseChallenges reads WWW-Authenticate headers: several challenges per
//     header, quoted strings with escapes, e.g.
//       Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"
//   * Authenticator turns a challenge + credentials + scopes into an
//     Authorization value: Basic, or Bearer with a token fetched from the realm
//     by GET (anonymous or with Basic credentials) or by the OAuth2 POST form
//     (refresh_token grant with an identity token; password grant when the GET
//     endpoint is missing). Tokens are cached per (realm, service, scopes) until
//     their expires_in (default 60 s) runs out.
//   * AuthTransport is the decorator that attaches the header to requests for
//     one registry host, and on a 401 re-authenticates once with the new
//     challenge; a request still refused with 401 becomes an Unauthenticated
//     error naming the registry and the user (Authenticator::Rejected).
//
// Credentials and tokens never appear in an Error message.
// Thread-safety: Authenticator, TokenCache and AuthTransport are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/clock.h"
#include "registry/credentials.h"
#include "registry/transport.h"

namespace strata::registry {

struct Challenge {
  std::string scheme;                         // lowercased: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lowercased
  std::string Param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? "" : it->second;
  }
};

// Parses one WWW-Authenticate header value (possibly several challenges).
// InvalidArgument on malformed input.
Result<std::vector<Challenge>> ParseChallenges(std::string_view header);
// All challenges from all WWW-Authenticate headers of a response (malformed
// ones are skipped).
std::vector<Challenge> ChallengesFrom(const Response& resp);

// "repository:NAME:ACTIONS" (ACTIONS e.g. "pull" or "pull,push").
std::string RepositoryScope(std::string_view repository, std::string_view actions);

class TokenCache {
 public:
  std::optional<std::string> Get(const std::string& key, Clock::TimePoint now);
  void Put(const std::string& key, std::string token, Clock::TimePoint expires);
  void Erase(const std::string& key);

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, Clock::TimePoint>> tokens_;
};

class Authenticator {
 public:
  // `transport` reaches the token endpoint (normally the retrying stack
  // without auth). `registry` names the registry in error messages.
  Authenticator(std::shared_ptr<Transport> transport, std::string registry, AuthConfig creds,
                std::shared_ptr<Clock> clock, std::shared_ptr<TokenCache> cache);

  // An Authorization header value answering `challenges` for `scopes`.
  // Unauthenticated if the registry wants credentials we do not have or the
  // token endpoint rejects them. `refresh` bypasses the token cache.
  Result<std::string> Authorize(const std::vector<Challenge>& challenges,
                                const std::vector<std::string>& scopes, bool refresh = false);

  // Unauthenticated error for a request the registry answered 401 although
  // it was authorized: says which registry, as which user (never the
  // password or token), the registry's error codes, and how to log in.
  Error Rejected(const Response& resp) const;

 private:
  Result<std::string> FetchToken(const Challenge& c, const std::vector<std::string>& scopes,
                                 int64_t* expires_in);
  // " as user NAME", " with the stored identity token", or "".
  std::string AsWhom() const;

  std::shared_ptr<Transport> transport_;
  std::string registry_;
  AuthConfig creds_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<TokenCache> cache_;
};

class AuthTransport : public Transport {
 public:
  // Authorizes requests whose URL authority is `authority` for `scopes`.
  // `challenges` (from the ping) may be empty: then requests go out
  // anonymously until a 401 brings one.
  AuthTransport(std::shared_ptr<Transport> inner, std::shared_ptr<Authenticator> auth,
                std::string authority, std::vector<std::string> scopes,
                std::vector<Challenge> challenges);
  Result<Response> RoundTrip(const Request& req) override;

 private:
  std::shared_ptr<Transport> inner_;
  std::shared_ptr<Authenticator> auth_;
  std::string authority_;
  std::vector<std::string> scopes_;
  std::mutex mu_;
  std::vector<Challenge> challenges_;  // guarded by mu_
};

}  // namespace strata::registry
