#include "registry/auth.h"

#include <gtest/gtest.h>

#include "tests/registry/fakes.h"
#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScriptedTransport;

TEST(ChallengeTest, ParsesBearerWithQuotedParams) {
  ASSERT_OK_AND_ASSIGN(
      auto cs,
      ParseChallenges(
          R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")"));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].Param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(cs[0].Param("service"), "registry.docker.io");
  EXPECT_EQ(cs[0].Param("scope"), "repository:library/busybox:pull");
}

TEST(ChallengeTest, ParsesSeveralChallengesAndEscapes) {
  ASSERT_OK_AND_ASSIGN(
      auto cs,
      ParseChallenges(
          R"(Basic realm="a \"quoted\", realm", Bearer realm="https://t/x?a=b,c", error=insufficient_scope)"));
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].Param("realm"), R"(a "quoted", realm)");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].Param("realm"), "https://t/x?a=b,c");
  EXPECT_EQ(cs[1].Param("error"), "insufficient_scope");
}

TEST(ChallengeTest, SchemeAndKeysAreCaseInsensitive) {
  ASSERT_OK_AND_ASSIGN(auto cs, ParseChallenges(R"(BASIC Realm="r")"));
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].Param("realm"), "r");
}

TEST(ChallengeTest, RejectsMalformedHeaders) {
  EXPECT_FALSE(ParseChallenges(R"(realm="x")"));
  EXPECT_FALSE(ParseChallenges(R"(Bearer realm="unterminated)"));
}

TEST(ScopeTest, BuildsRepositoryScopes) {
  EXPECT_EQ(RepositoryScope("library/busybox", "pull"), "repository:library/busybox:pull");
  EXPECT_EQ(RepositoryScope("org/app", "pull,push"), "repository:org/app:pull,push");
}

Challenge BearerChallenge() {
  Challenge c;
  c.scheme = "bearer";
  c.params = {{"realm", "https://auth.example/token"}, {"service", "reg.example"}};
  return c;
}

TEST(AuthenticatorTest, FetchesTokenByGetWithBasicCredentialsAndCachesIt) {
  auto clock = std::make_shared<FakeClock>();
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    return ScriptedTransport::Deliver(req, 200, R"({"token":"tok-1","expires_in":300})");
  });
  Authenticator auth(fake, "reg.example", AuthConfig{"alice", "s3cret", ""}, clock, nullptr);
  std::vector<std::string> scopes = {RepositoryScope("a/b", "pull,push"),
                                     RepositoryScope("c", "pull")};
  ASSERT_OK_AND_ASSIGN(std::string h, auth.Authorize({BearerChallenge()}, scopes));
  EXPECT_EQ(h, "Bearer tok-1");
  auto reqs = fake->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].url,
            "https://auth.example/token?service=reg.example&scope=repository%3Aa%2Fb%3Apull%2Cpush"
            "&scope=repository%3Ac%3Apull");
  EXPECT_EQ(reqs[0].GetHeader("Authorization"), "Basic " + Base64Encode("alice:s3cret"));

  // Cached until it expires.
  ASSERT_OK(auth.Authorize({BearerChallenge()}, scopes));
  EXPECT_EQ(fake->requests().size(), 1u);
  clock->Sleep(301s);
  ASSERT_OK(auth.Authorize({BearerChallenge()}, scopes));
  EXPECT_EQ(fake->requests().size(), 2u);
}

TEST(AuthenticatorTest, AnonymousTokenAndAccessTokenField) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    return ScriptedTransport::Deliver(req, 200, R"({"access_token":"anon"})");
  });
  Authenticator auth(fake, "reg.example", AuthConfig{}, std::make_shared<FakeClock>(), nullptr);
  ASSERT_OK_AND_ASSIGN(std::string h, auth.Authorize({BearerChallenge()}, {"repository:x:pull"}));
  EXPECT_EQ(h, "Bearer anon");
  EXPECT_EQ(fake->requests()[0].GetHeader("Authorization"), "");
}

TEST(AuthenticatorTest, UsesOAuth2PostWithIdentityToken) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    return ScriptedTransport::Deliver(req, 200, R"({"access_token":"oauth","expires_in":60})");
  });
  Authenticator auth(fake, "reg.example", AuthConfig{"", "", "refresh-xyz"},
                     std::make_shared<FakeClock>(), nullptr);
  ASSERT_OK_AND_ASSIGN(std::string h, auth.Authorize({BearerChallenge()}, {"repository:x:pull"}));
  EXPECT_EQ(h, "Bearer oauth");
  auto req = fake->requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.GetHeader("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_NE(req.body.find("grant_type=refresh_token"), std::string::npos);
  EXPECT_NE(req.body.find("refresh_token=refresh-xyz"), std::string::npos);
  EXPECT_NE(req.body.find("service=reg.example"), std::string::npos);
  EXPECT_NE(req.body.find("scope=repository%3Ax%3Apull"), std::string::npos);
}

TEST(AuthenticatorTest, FallsBackToPasswordGrantWhenGetIsNotSupported) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    if (req.method == "GET") return ScriptedTransport::Deliver(req, 405, "");
    return ScriptedTransport::Deliver(req, 200, R"({"access_token":"pw"})");
  });
  Authenticator auth(fake, "reg.example", AuthConfig{"u", "p", ""}, std::make_shared<FakeClock>(),
                     nullptr);
  ASSERT_OK_AND_ASSIGN(std::string h, auth.Authorize({BearerChallenge()}, {}));
  EXPECT_EQ(h, "Bearer pw");
  EXPECT_NE(fake->requests()[1].body.find("grant_type=password"), std::string::npos);
}

TEST(AuthenticatorTest, RejectedTokenRequestIsUnauthenticatedWithoutSecrets) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    return ScriptedTransport::Deliver(req, 401, R"({"details":"bad password s3cret-pw"})");
  });
  Authenticator auth(fake, "reg.example", AuthConfig{"alice", "s3cret-pw", ""},
                     std::make_shared<FakeClock>(), nullptr);
  auto r = auth.Authorize({BearerChallenge()}, {"repository:x:pull"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(r.error().message().find("s3cret-pw"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("reg.example"), std::string::npos);
}

TEST(AuthenticatorTest, BasicChallengeNeedsCredentials) {
  Challenge basic;
  basic.scheme = "basic";
  auto fake = std::make_shared<ScriptedTransport>(
      [](const Request& req) { return ScriptedTransport::Deliver(req, 500, ""); });
  Authenticator anon(fake, "reg", AuthConfig{}, std::make_shared<FakeClock>(), nullptr);
  auto r = anon.Authorize({basic}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  Authenticator user(fake, "reg", AuthConfig{"u", "p", ""}, std::make_shared<FakeClock>(), nullptr);
  ASSERT_OK_AND_ASSIGN(std::string h, user.Authorize({basic}, {}));
  EXPECT_EQ(h, "Basic dTpw");
  EXPECT_TRUE(fake->requests().empty());
}

TEST(AuthTransportTest, AnswersA401ChallengeOnceAndOnlyForItsHost) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    if (req.url.starts_with("https://auth.example/"))
      return ScriptedTransport::Deliver(req, 200, R"({"token":"T"})");
    if (req.GetHeader("Authorization") != "Bearer T")
      return ScriptedTransport::Deliver(
          req, 401, "",
          {{"WWW-Authenticate", R"(Bearer realm="https://auth.example/token",service="svc")"}});
    return ScriptedTransport::Deliver(req, 200, "ok");
  });
  auto auth = std::make_shared<Authenticator>(fake, "reg", AuthConfig{},
                                              std::make_shared<FakeClock>(), nullptr);
  AuthTransport t(fake, auth, "reg:5000", {"repository:a:pull"}, {});
  Request req;
  req.url = "https://reg:5000/v2/a/manifests/latest";
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 200);
  // Second request: token attached up front.
  ASSERT_OK_AND_ASSIGN(r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 200);
  auto reqs = fake->requests();
  ASSERT_EQ(reqs.size(), 4u);  // 401, token, retry, authorized
  EXPECT_EQ(reqs[3].GetHeader("Authorization"), "Bearer T");
  // Another host never sees the token.
  Request other;
  other.url = "https://elsewhere/blob";
  ASSERT_OK(t.RoundTrip(other));
  EXPECT_EQ(fake->requests().back().GetHeader("Authorization"), "");
}

}  // namespace
}  // namespace strata::registry
