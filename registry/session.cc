#include "registry/session.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "oci/media_types.h"

namespace strata::registry {

namespace mt = oci::media_type;

void ClientOptions::AddInsecureFromEnvironment() {
  const char* v = std::getenv("STRATA_INSECURE_REGISTRIES");
  if (v == nullptr) return;
  std::string_view s(v);
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) insecure_registries.insert(std::string(item));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

bool ClientOptions::IsInsecure(const std::string& host) const {
  return !tls_verify || insecure_registries.contains(host);
}

std::string Session::Named(std::string_view reference) const {
  return fmt::format("{}{}{}", Where(), reference.starts_with("sha") ? "@" : ":", reference);
}

RegistryResult<Response> Session::Send(const Request& req, std::string_view what,
                                       std::initializer_list<int> ok) const {
  auto resp = transport->RoundTrip(req);
  if (!resp) return std::unexpected(RegistryError(resp.error().Wrap(what)));
  if (std::find(ok.begin(), ok.end(), resp->status) == ok.end())
    return std::unexpected(RegistryError(what, *resp));
  return std::move(*resp);
}

void Session::Backoff(int retry_number) const { clock->Sleep(retry.BackoffFor(retry_number)); }

SessionFactory::SessionFactory(std::shared_ptr<Transport> base,
                               std::shared_ptr<const CredentialStore> credentials,
                               ClientOptions options, std::shared_ptr<Clock> clock)
    : credentials_(std::move(credentials)),
      options_(std::move(options)),
      clock_(std::move(clock)),
      tokens_(std::make_shared<TokenCache>()) {
  redirect_ = std::make_shared<RedirectTransport>(std::move(base));
  retrying_ = std::make_shared<RetryTransport>(redirect_, options_.retry, clock_);
}

RegistryResult<std::shared_ptr<Session>> SessionFactory::Open(
    const std::string& domain, const std::string& repo, std::vector<std::string> scopes,
    const std::optional<AuthConfig>& auth_override) {
  const std::string authority = RegistryApiHost(domain);
  const bool may_use_http =
      options_.IsInsecure(domain) || options_.IsInsecure(authority) || IsLocalhost(authority);

  auto ping = [&](Transport& t, const std::string& scheme) {
    Request req;
    req.url = scheme + "://" + authority + "/v2/";
    req.max_body = 1 << 20;
    return t.RoundTrip(req);
  };
  // The first https attempt is not retried: a plain-http registry refuses it.
  std::string scheme = "https";
  Result<Response> pong = ping(*redirect_, scheme);
  if (!pong && pong.error().code() == ErrorCode::kUnavailable) {
    if (may_use_http) scheme = "http";
    pong = ping(*retrying_, scheme);
  }
  if (!pong) return std::unexpected(pong.error().Wrap(fmt::format("registry {}", domain)));
  std::vector<Challenge> challenges;
  if (pong->status == 401) {
    challenges = ChallengesFrom(*pong);
  } else if (pong->status != 200) {
    return std::unexpected(RegistryError(fmt::format("registry {}: ping", domain), *pong));
  }

  AuthConfig creds;
  if (auth_override) {
    creds = *auth_override;
  } else if (credentials_) {
    STRATA_ASSIGN_OR_RETURN(creds, credentials_->Lookup(domain, repo));
  }
  auto authenticator =
      std::make_shared<Authenticator>(retrying_, domain, std::move(creds), clock_, tokens_);
  auto session = std::make_shared<Session>();
  session->domain = domain;
  session->base = scheme + "://" + authority;
  session->repo = repo;
  session->transport = std::make_shared<AuthTransport>(
      retrying_, std::move(authenticator), authority, std::move(scopes), std::move(challenges));
  session->clock = clock_;
  session->retry = options_.retry;
  return session;
}

std::string ManifestAccept(std::string_view first) {
  std::string out = fmt::format("{}, {}, {}, {}", mt::kImageManifest, mt::kImageIndex,
                                mt::kDockerManifest, mt::kDockerManifestList);
  return first.empty() ? out : fmt::format("{}, {}", first, out);
}

void Emit(ProgressSink* sink, ProgressEvent::Kind kind, const oci::Digest& d, int64_t size,
          int64_t bytes, std::string detail) {
  if (sink == nullptr) return;
  sink->OnEvent(ProgressEvent{kind, d, size, bytes, std::move(detail)});
}

RegistryResult<void> RunParallel(int jobs, size_t n,
                                 const std::function<RegistryResult<void>(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<RegistryError> first;
  auto worker = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      RegistryResult<void> s = fn(i);
      if (!s) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = s.error();
        failed = true;
      }
    }
  };
  size_t threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), n);
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::jthread> pool;
    for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  }
  if (first) return std::unexpected(*first);
  return {};
}

std::vector<oci::Descriptor> BlobsOf(const oci::Manifest& m) {
  std::vector<oci::Descriptor> blobs = {m.config};
  for (const auto& l : m.layers) {
    bool dup = std::any_of(blobs.begin(), blobs.end(),
                           [&](const oci::Descriptor& b) { return b.digest == l.digest; });
    if (!dup) blobs.push_back(l);
  }
  return blobs;
}

bool IsLocalhost(std::string_view authority) {
  std::string_view host = authority;
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

}  // namespace strata::registry
