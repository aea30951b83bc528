#include "registry/auth.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "oci/util/strings.h"
#include "registry/errors.h"

namespace strata::registry {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string WithoutQuery(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

}  // namespace

Result<std::vector<Challenge>> ParseChallenges(std::string_view s) {
  std::vector<Challenge> out;
  size_t pos = 0;
  const size_t n = s.size();
  while (pos < n) {
    while (pos < n && (IsSpace(s[pos]) || s[pos] == ',')) ++pos;
    if (pos >= n) break;
    size_t start = pos;
    while (pos < n && !IsSpace(s[pos]) && s[pos] != ',' && s[pos] != '=') ++pos;
    std::string token(s.substr(start, pos - start));
    if (token.empty())
      return MakeError(ErrorCode::kInvalidArgument, "malformed WWW-Authenticate at offset {}", pos);
    size_t after = pos;
    while (after < n && IsSpace(s[after])) ++after;
    if (after < n && s[after] == '=') {
      if (out.empty())
        return MakeError(ErrorCode::kInvalidArgument, "WWW-Authenticate parameter before a scheme");
      pos = after + 1;
      while (pos < n && IsSpace(s[pos])) ++pos;
      std::string value;
      if (pos < n && s[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < n) {
          char c = s[pos++];
          if (c == '\\' && pos < n) {
            value += s[pos++];
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value += c;
          }
        }
        if (!closed)
          return MakeError(ErrorCode::kInvalidArgument,
                           "unterminated quoted string in WWW-Authenticate");
      } else {
        size_t vstart = pos;
        while (pos < n && !IsSpace(s[pos]) && s[pos] != ',') ++pos;
        value = std::string(s.substr(vstart, pos - vstart));
      }
      out.back().params[Lower(token)] = std::move(value);
    } else {
      Challenge c;
      c.scheme = Lower(token);
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<Challenge> ChallengesFrom(const Response& resp) {
  std::vector<Challenge> out;
  for (const auto& h : resp.GetHeaders("WWW-Authenticate")) {
    if (auto cs = ParseChallenges(h)) out.insert(out.end(), cs->begin(), cs->end());
  }
  return out;
}

std::string RepositoryScope(std::string_view repository, std::string_view actions) {
  return fmt::format("repository:{}:{}", repository, actions);
}

std::optional<std::string> TokenCache::Get(const std::string& key, Clock::TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(key);
  if (it == tokens_.end()) return std::nullopt;
  if (now >= it->second.second) {
    tokens_.erase(it);
    return std::nullopt;
  }
  return it->second.first;
}

void TokenCache::Put(const std::string& key, std::string token, Clock::TimePoint expires) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[key] = {std::move(token), expires};
}

void TokenCache::Erase(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.erase(key);
}

Authenticator::Authenticator(std::shared_ptr<Transport> transport, std::string registry,
                             AuthConfig creds, std::shared_ptr<Clock> clock,
                             std::shared_ptr<TokenCache> cache)
    : transport_(std::move(transport)),
      registry_(std::move(registry)),
      creds_(std::move(creds)),
      clock_(std::move(clock)),
      cache_(std::move(cache)) {
  if (!cache_) cache_ = std::make_shared<TokenCache>();
}

Result<std::string> Authenticator::Authorize(const std::vector<Challenge>& challenges,
                                             const std::vector<std::string>& scopes, bool refresh) {
  const Challenge* bearer = nullptr;
  const Challenge* basic = nullptr;
  for (const auto& c : challenges) {
    if (c.scheme == "bearer" && bearer == nullptr) bearer = &c;
    if (c.scheme == "basic" && basic == nullptr) basic = &c;
  }
  if (bearer != nullptr) {
    std::vector<std::string> all = scopes;
    if (std::string extra = bearer->Param("scope"); !extra.empty()) all.push_back(extra);
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    // Tokens are cached per credentials (a hash of them: the cache never
    // holds a secret), so a token fetched with one password never answers
    // for another (login checks a new password on a client that has a token).
    const std::string who =
        oci::Digest::Of(creds_.username + '\0' + creds_.password + '\0' + creds_.identity_token)
            .hex();
    std::string key = bearer->Param("realm") + "|" + bearer->Param("service") + "|" + who + "|";
    for (const auto& s : all) key += s + " ";
    if (!refresh) {
      if (auto t = cache_->Get(key, clock_->Now())) return "Bearer " + *t;
    }
    int64_t expires_in = 60;
    STRATA_ASSIGN_OR_RETURN(std::string token, FetchToken(*bearer, all, &expires_in));
    // Renew a little early so a token never expires in flight.
    auto ttl = std::chrono::seconds(std::max<int64_t>(expires_in, 60) - 10);
    cache_->Put(key, token, clock_->Now() + ttl);
    return "Bearer " + token;
  }
  if (basic != nullptr) {
    if (creds_.username.empty())
      return MakeError(
          ErrorCode::kUnauthenticated,
          "registry {} requires authentication: no credentials found (strata login {})", registry_,
          registry_);
    return "Basic " + Base64Encode(creds_.username + ":" + creds_.password);
  }
  return MakeError(ErrorCode::kUnauthenticated,
                   "registry {} requires authentication with an unsupported scheme", registry_);
}

std::string Authenticator::AsWhom() const {
  if (!creds_.username.empty()) return fmt::format(" as user {}", creds_.username);
  if (!creds_.identity_token.empty()) return " with the stored identity token";
  return "";
}

Error Authenticator::Rejected(const Response& resp) const {
  std::string codes;
  for (const auto& e : ParseRegistryErrors(resp.body)) {
    codes += fmt::format("{}{}", codes.empty() ? ": " : "; ", e.raw);
    if (!e.message.empty()) codes += ": " + e.message;
  }
  if (creds_.empty())
    return Error(ErrorCode::kUnauthenticated,
                 fmt::format("authentication required by registry {} (HTTP {}{}): no credentials "
                             "found for it; log in with `strata login {}`",
                             registry_, resp.status, codes, registry_));
  return Error(ErrorCode::kUnauthenticated,
               fmt::format("authentication failed for registry {}{} (HTTP {}{}); check the "
                           "credentials or log in again with `strata login {}`",
                           registry_, AsWhom(), resp.status, codes, registry_));
}

Result<std::string> Authenticator::FetchToken(const Challenge& c,
                                              const std::vector<std::string>& scopes,
                                              int64_t* expires_in) {
  const std::string realm = c.Param("realm");
  const std::string service = c.Param("service");
  auto url = Url::Parse(realm);
  if (!url || (url->scheme != "https" && url->scheme != "http"))
    return MakeError(ErrorCode::kUnauthenticated,
                     "registry {}: bearer challenge without a valid realm", registry_);
  const std::string endpoint = WithoutQuery(realm);

  auto post_form = [&](std::string grant) {
    Request req;
    req.method = "POST";
    req.url = realm;
    req.SetHeader("Content-Type", "application/x-www-form-urlencoded");
    std::string body = "grant_type=" + grant + "&client_id=strata";
    if (!service.empty()) body += "&service=" + UrlEncode(service);
    if (!scopes.empty()) {
      std::string joined;
      for (const auto& s : scopes) joined += (joined.empty() ? "" : " ") + s;
      body += "&scope=" + UrlEncode(joined);
    }
    if (grant == "refresh_token") {
      body += "&refresh_token=" + UrlEncode(creds_.identity_token);
    } else {
      body += "&username=" + UrlEncode(creds_.username) + "&password=" + UrlEncode(creds_.password);
    }
    req.body = std::move(body);
    return transport_->RoundTrip(req);
  };

  Result<Response> resp = [&]() -> Result<Response> {
    if (!creds_.identity_token.empty()) return post_form("refresh_token");
    Request req;
    req.url = realm;
    if (!service.empty()) req.url = AppendQuery(req.url, "service", service);
    for (const auto& s : scopes) req.url = AppendQuery(req.url, "scope", s);
    if (!creds_.username.empty())
      req.SetHeader("Authorization",
                    "Basic " + Base64Encode(creds_.username + ":" + creds_.password));
    auto r = transport_->RoundTrip(req);
    if (r && (r->status == 404 || r->status == 405) && !creds_.username.empty())
      return post_form("password");
    return r;
  }();
  if (!resp)
    return std::unexpected(resp.error().Wrap(fmt::format("token for registry {}", registry_)));
  if (resp->status == 401 || resp->status == 403) {
    if (creds_.empty())
      return MakeError(ErrorCode::kUnauthenticated,
                       "authentication required by registry {}: its token endpoint {} rejected "
                       "the anonymous request (HTTP {}); log in with `strata login {}`",
                       registry_, endpoint, resp->status, registry_);
    return MakeError(ErrorCode::kUnauthenticated,
                     "authentication failed for registry {}{}: its token endpoint {} rejected "
                     "the credentials (HTTP {}); check them or log in again with `strata login {}`",
                     registry_, AsWhom(), endpoint, resp->status, registry_);
  }
  if (resp->status != 200) {
    return Unexpected(ResponseError(
        fmt::format("token endpoint {} for registry {}", endpoint, registry_), *resp));
  }
  auto j = nlohmann::json::parse(resp->body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string())
      token = j["access_token"].get<std::string>();
    if (j.contains("expires_in") && j["expires_in"].is_number_integer())
      *expires_in = j["expires_in"].get<int64_t>();
  }
  if (token.empty())
    return MakeError(ErrorCode::kUnauthenticated,
                     "token endpoint {} for registry {} returned no token", endpoint, registry_);
  return token;
}

AuthTransport::AuthTransport(std::shared_ptr<Transport> inner, std::shared_ptr<Authenticator> auth,
                             std::string authority, std::vector<std::string> scopes,
                             std::vector<Challenge> challenges)
    : inner_(std::move(inner)),
      auth_(std::move(auth)),
      authority_(std::move(authority)),
      scopes_(std::move(scopes)),
      challenges_(std::move(challenges)) {}

Result<Response> AuthTransport::RoundTrip(const Request& req) {
  auto url = Url::Parse(req.url);
  if (!url || url->authority != authority_) return inner_->RoundTrip(req);
  std::vector<Challenge> challenges;
  {
    std::lock_guard<std::mutex> lock(mu_);
    challenges = challenges_;
  }
  Request authed = req;
  if (!challenges.empty()) {
    STRATA_ASSIGN_OR_RETURN(std::string header, auth_->Authorize(challenges, scopes_));
    authed.SetHeader("Authorization", std::move(header));
  }
  STRATA_ASSIGN_OR_RETURN(Response resp, inner_->RoundTrip(authed));
  if (resp.status != 401) return resp;
  std::vector<Challenge> fresh = ChallengesFrom(resp);
  if (fresh.empty()) return Unexpected(auth_->Rejected(resp));
  {
    std::lock_guard<std::mutex> lock(mu_);
    challenges_ = fresh;
  }
  STRATA_ASSIGN_OR_RETURN(std::string header, auth_->Authorize(fresh, scopes_, /*refresh=*/true));
  authed.SetHeader("Authorization", std::move(header));
  STRATA_ASSIGN_OR_RETURN(resp, inner_->RoundTrip(authed));
  if (resp.status == 401) return Unexpected(auth_->Rejected(resp));
  return resp;
}

}  // namespace strata::registry
