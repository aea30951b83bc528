// Sessions against the in-memory registry: auth challenges (Basic, Bearer,
// scopes, token reuse and expiry, rejections), bounded retries through the
// whole stack, scheme selection, login checks.
#include "registry/session.h"

#include <gtest/gtest.h>

#include "tests/registry/client_fixture.h"

namespace strata::registry {
namespace {

using namespace std::chrono_literals;
using testing::FakeRegistry;
using testing::ScriptedTransport;

class SessionTest : public testing::ClientFixture {
 protected:
  AuthConfig Alice() { return AuthConfig{"alice", "s3cret", ""}; }
  // A hook answering every manifest GET with `status` (and headers/body)
  // `times` times, then letting the registry answer.
  void FailManifestGets(int times, int status, std::vector<Header> headers = {},
                        std::string body = "") {
    registry_.hook = [=, this,
                      left = times](const Request& req) mutable -> std::optional<Result<Response>> {
      if (req.method == "GET" && req.url.find("/manifests/") != std::string::npos && left > 0) {
        --left;
        ++failed_;
        return ScriptedTransport::Deliver(req, status, body, headers);
      }
      return std::nullopt;
    };
  }
  int failed_ = 0;
};

TEST_F(SessionTest, AnonymousRegistryGetsNoAuthorizationHeader) {
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  for (const auto& r : fake_->requests()) EXPECT_EQ(r.GetHeader("Authorization"), "") << r.url;
  EXPECT_TRUE(registry_.token_requests.empty());
}

TEST_F(SessionTest, BearerChallengeFetchesATokenForServiceAndScope) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  ASSERT_EQ(registry_.token_requests.size(), 1u);
  const std::string& url = registry_.token_requests[0];
  EXPECT_TRUE(url.starts_with("https://auth.example/token?")) << url;
  EXPECT_NE(url.find("service=reg.example"), std::string::npos) << url;
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:app:pull")), std::string::npos) << url;
  auto gets = Sent("GET", "/v2/app/manifests/1");
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].GetHeader("Authorization"), "Bearer tok1");
  // The token request itself went out anonymously (no credentials configured).
  EXPECT_EQ(Sent("GET", "auth.example")[0].GetHeader("Authorization"), "");
}

TEST_F(SessionTest, BearerTokenRequestCarriesBasicCredentials) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  ServeImage("app", "1", "layer");
  client_ = NewClient({}, Alice());
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  auto token_gets = Sent("GET", "auth.example");
  ASSERT_EQ(token_gets.size(), 1u);
  EXPECT_EQ(token_gets[0].GetHeader("Authorization"), "Basic " + Base64Encode("alice:s3cret"));
}

TEST_F(SessionTest, BasicChallengeIsAnsweredWithTheCredentials) {
  registry_.auth = FakeRegistry::Auth::kBasic;
  ServeImage("app", "1", "layer");
  client_ = NewClient({}, Alice());
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  auto gets = Sent("GET", "/v2/app/");
  ASSERT_FALSE(gets.empty());
  for (const auto& r : gets)
    EXPECT_EQ(r.GetHeader("Authorization"), "Basic " + Base64Encode("alice:s3cret")) << r.url;
  EXPECT_TRUE(registry_.token_requests.empty());
}

TEST_F(SessionTest, BasicChallengeWithoutCredentialsIsUnauthenticatedNamingTheRegistry) {
  registry_.auth = FakeRegistry::Auth::kBasic;
  ServeImage("app", "1", "layer");
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.error().message().find("reg.example"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("strata login"), std::string::npos) << r.error().message();
  EXPECT_EQ(CountRequests("GET", "/manifests/"), 0);
}

TEST_F(SessionTest, ScopeNamedByAChallengeIsAddedToTheTokenRequest) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  registry_.challenge_scope = "repository:app:pull repository:shared:pull";
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  ASSERT_FALSE(registry_.token_requests.empty());
  const std::string& url = registry_.token_requests[0];
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:app:pull")), std::string::npos) << url;
  EXPECT_NE(url.find(UrlEncode("repository:shared:pull")), std::string::npos) << url;
}

TEST_F(SessionTest, TokenIsReusedAcrossRequestsAndPulls) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  auto other = OpenStore("other");
  ASSERT_OK(client_->Pull(*other, Dest(), {}));
  EXPECT_EQ(registry_.token_requests.size(), 1u);
  for (const auto& r : Sent("", "/v2/app/"))
    EXPECT_EQ(r.GetHeader("Authorization"), "Bearer tok1") << r.method << " " << r.url;
}

TEST_F(SessionTest, ExpiredTokenIsFetchedAgain) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  registry_.token_expires_in = 120;
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Resolve(Dest()));
  clock_->Sleep(100s);  // still valid (renewed 10 s before expiry)
  ASSERT_OK(client_->Resolve(Dest()));
  EXPECT_EQ(registry_.token_requests.size(), 1u);
  clock_->Sleep(20s);  // past expiry
  ASSERT_OK(client_->Resolve(Dest()));
  EXPECT_EQ(registry_.token_requests.size(), 2u);
  auto gets = Sent("GET", "/manifests/1");
  ASSERT_EQ(gets.size(), 3u);
  EXPECT_EQ(gets[2].GetHeader("Authorization"), "Bearer tok2");
}

TEST_F(SessionTest, TokenTheRegistryStopsAcceptingIsRefreshedOnce) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  ServeImage("app", "1", "layer");
  ASSERT_OK(client_->Resolve(Dest()));
  // The registry forgets tok1 (revoked); the 401 brings a fresh token.
  int seen = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.GetHeader("Authorization") == "Bearer tok1" &&
        req.url.find("/manifests/") != std::string::npos) {
      ++seen;
      return ScriptedTransport::Deliver(
          req, 401, R"({"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]})",
          {{"WWW-Authenticate",
            R"(Bearer realm="https://auth.example/token",service="reg.example",scope="repository:app:pull")"}});
    }
    return std::nullopt;
  };
  ASSERT_OK(client_->Resolve(Dest()));
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(registry_.token_requests.size(), 2u);
  EXPECT_EQ(Sent("GET", "/manifests/1").back().GetHeader("Authorization"), "Bearer tok2");
}

TEST_F(SessionTest, UnauthorizedAfterAFreshTokenIsAClearErrorNamingTheRegistry) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  registry_.reject_tokens = true;
  ServeImage("app", "1", "layer");
  client_ = NewClient({}, Alice());
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("authentication failed for registry reg.example as user alice"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("UNAUTHORIZED"), std::string::npos) << m;
  EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
  EXPECT_EQ(m.find("tok"), std::string::npos) << m;
  // One token, one refresh: no loop.
  EXPECT_EQ(registry_.token_requests.size(), 2u);
  EXPECT_EQ(CountRequests("GET", "/manifests/1"), 2);
}

TEST_F(SessionTest, WrongPasswordAtTheTokenEndpointIsUnauthenticatedWithoutTheSecret) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  ServeImage("app", "1", "layer");
  client_ = NewClient({}, AuthConfig{"alice", "wrong", ""});
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.error().message().find("alice"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find("wrong"), std::string::npos) << r.error().message();
}

TEST_F(SessionTest, DeniedIsPermissionDeniedWithTheCodeAndTheRef) {
  ServeImage("app", "1", "layer");
  FailManifestGets(
      100, 403, {},
      R"({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})");
  auto r = client_->puller().Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(r.error().http_status(), 403);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kDenied));
  EXPECT_NE(r.error().message().find("reg.example/app:1"), std::string::npos);
  EXPECT_NE(r.error().message().find("DENIED: requested access"), std::string::npos);
  EXPECT_EQ(failed_, 1);  // not retried
}

TEST_F(SessionTest, ServerErrorsAreRetriedWithBackoffThenSucceed) {
  auto img = ServeImage("app", "1", "layer");
  FailManifestGets(2, 503);
  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);
  EXPECT_EQ(CountRequests("GET", "/manifests/1"), 3);
  ASSERT_EQ(clock_->sleeps().size(), 2u);
  // Exponential backoff with jitter in [backoff/2, backoff]: 200 ms, then 400 ms.
  EXPECT_GE(clock_->sleeps()[0], 100ms);
  EXPECT_LE(clock_->sleeps()[0], 200ms);
  EXPECT_GE(clock_->sleeps()[1], 200ms);
  EXPECT_LE(clock_->sleeps()[1], 400ms);
}

TEST_F(SessionTest, TooManyRequestsHonoursRetryAfter) {
  ServeImage("app", "1", "layer");
  FailManifestGets(1, 429, {{"Retry-After", "7"}},
                   R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  ASSERT_EQ(clock_->sleeps().size(), 1u);
  EXPECT_EQ(clock_->sleeps()[0], 7s);
}

TEST_F(SessionTest, TooManyRequestsCodeIsRetriedWhateverTheStatus) {
  // Some registries throttle with another status; the code decides.
  ServeImage("app", "1", "layer");
  FailManifestGets(1, 403, {{"Retry-After", "2"}},
                   R"({"errors":[{"code":"TOOMANYREQUESTS","message":"rate limit"}]})");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(failed_, 1);
  ASSERT_EQ(clock_->sleeps().size(), 1u);
  EXPECT_EQ(clock_->sleeps()[0], 2s);
}

TEST_F(SessionTest, RetryAfterBeyondTheBudgetGivesUpWithTheCode) {
  ServeImage("app", "1", "layer");
  FailManifestGets(100, 429, {{"Retry-After", "3600"}},
                   R"({"errors":[{"code":"TOOMANYREQUESTS","message":"come back tomorrow"}]})");
  ClientOptions options;
  options.retry.max_total = 60s;
  client_ = NewClient(options);
  auto r = client_->puller().Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kTooManyRequests));
  EXPECT_NE(r.error().message().find("TOOMANYREQUESTS"), std::string::npos);
  Clock::Duration slept{};
  for (auto d : clock_->sleeps()) slept += d;
  EXPECT_LE(slept, 60s);
}

TEST_F(SessionTest, ConnectionResetIsRetried) {
  ServeImage("app", "1", "layer");
  int resets = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.url.ends_with("/manifests/1") && resets++ < 2)
      return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
    return std::nullopt;
  };
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(CountRequests("GET", "/manifests/1"), 3);
}

TEST_F(SessionTest, GivesUpAfterMaxAttemptsWithAClearError) {
  ServeImage("app", "1", "layer");
  FailManifestGets(100, 502);
  ClientOptions options;
  options.retry.max_attempts = 3;
  client_ = NewClient(options);
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("resolve reg.example/app:1: HTTP 502"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(failed_, 3);
  EXPECT_EQ(clock_->sleeps().size(), 2u);
}

TEST_F(SessionTest, LocalhostFallsBackToPlainHttp) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) -> Result<Response> {
    if (req.url.starts_with("https://"))
      return MakeError(ErrorCode::kUnavailable, "SSL: wrong version number");
    if (req.url.ends_with("/manifests/1"))
      return ScriptedTransport::Deliver(req, 404, R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})");
    return ScriptedTransport::Deliver(req, 200, "{}");
  });
  Client client(fake, nullptr, ClientOptions{}, clock_);
  auto r = client.Resolve(Ref("127.0.0.1:5000/app:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);  // reached over http
  auto sent = fake->requests();
  ASSERT_GE(sent.size(), 3u);
  EXPECT_EQ(sent[0].url, "https://127.0.0.1:5000/v2/");
  EXPECT_EQ(sent[1].url, "http://127.0.0.1:5000/v2/");
  EXPECT_EQ(sent.back().url, "http://127.0.0.1:5000/v2/app/manifests/1");
}

TEST_F(SessionTest, RemoteRegistryNeverFallsBackToHttpUnlessInsecure) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) -> Result<Response> {
    if (req.url.starts_with("https://"))
      return MakeError(ErrorCode::kUnavailable, "connection refused");
    return ScriptedTransport::Deliver(req, 200, "{}");
  });
  ClientOptions options;
  options.retry.max_attempts = 1;
  Client secure(fake, nullptr, options, clock_);
  auto r = secure.Resolve(Ref("reg.example/app:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("registry reg.example"), std::string::npos);
  for (const auto& req : fake->requests()) EXPECT_TRUE(req.url.starts_with("https://"));

  options.insecure_registries = {"reg.example"};
  Client insecure(fake, nullptr, options, clock_);
  (void)insecure.Resolve(Ref("reg.example/app:1"));
  EXPECT_EQ(fake->requests().back().url, "http://reg.example/v2/app/manifests/1");
}

TEST_F(SessionTest, CheckLoginAcceptsGoodCredentialsAndRejectsBadOnes) {
  registry_.auth = FakeRegistry::Auth::kBasic;
  EXPECT_OK(client_->CheckLogin("reg.example", Alice()));
  auto bad = client_->CheckLogin("reg.example", AuthConfig{"alice", "nope", ""});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(bad.error().message().find("reg.example"), std::string::npos);
  EXPECT_EQ(bad.error().message().find("nope"), std::string::npos);
}

TEST_F(SessionTest, CheckLoginWithBearerFetchesATokenWithTheCredentials) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  EXPECT_OK(client_->CheckLogin("reg.example", Alice()));
  ASSERT_EQ(registry_.token_requests.size(), 1u);
  EXPECT_EQ(Sent("GET", "auth.example")[0].GetHeader("Authorization"),
            "Basic " + Base64Encode("alice:s3cret"));
  EXPECT_FALSE(client_->CheckLogin("reg.example", AuthConfig{"alice", "nope", ""}));
}

TEST_F(SessionTest, InsecureRegistriesComeFromTheEnvironment) {
  ::setenv("STRATA_INSECURE_REGISTRIES", " a.example:5000, b.example ,", 1);
  ClientOptions options;
  options.AddInsecureFromEnvironment();
  ::unsetenv("STRATA_INSECURE_REGISTRIES");
  EXPECT_EQ(options.insecure_registries, (std::set<std::string>{"a.example:5000", "b.example"}));
  EXPECT_TRUE(options.IsInsecure("b.example"));
  EXPECT_FALSE(options.IsInsecure("c.example"));
  EXPECT_TRUE(IsLocalhost("127.0.0.1:5000"));
  EXPECT_TRUE(IsLocalhost("[::1]:5000"));
  EXPECT_FALSE(IsLocalhost("reg.example"));
}

}  // namespace
}  // namespace strata::registry
