#include "registry/transport.h"

#include <gtest/gtest.h>

#include "oci/manifest.h"
#include "registry/client.h"
#include "registry/errors.h"
#include "tests/registry/fakes.h"
#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

using testing::ScriptedTransport;

TEST(UrlTest, ResolvesLocations) {
  const std::string base = "http://127.0.0.1:5000/v2/app/blobs/uploads/";
  EXPECT_EQ(*ResolveLocation(base, "/v2/app/blobs/uploads/abc?_state=x"),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?_state=x");
  EXPECT_EQ(*ResolveLocation(base, "https://s3.example/bucket/x"), "https://s3.example/bucket/x");
  EXPECT_EQ(*ResolveLocation(base, "abc"), "http://127.0.0.1:5000/v2/app/blobs/uploads/abc");
  EXPECT_EQ(AppendQuery("http://h/u?_state=1", "digest", "sha256:ab"),
            "http://h/u?_state=1&digest=sha256%3Aab");
  EXPECT_EQ(AppendQuery("http://h/u", "mount", "a"), "http://h/u?mount=a");
  EXPECT_FALSE(Url::Parse("no-scheme/x"));
}

TEST(RedirectTransportTest, DropsAuthorizationWhenTheHostChanges) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    if (req.url == "https://reg/v2/a/blobs/sha256:1")
      return ScriptedTransport::Deliver(req, 307, "", {{"Location", "/redirected"}});
    if (req.url == "https://reg/redirected")
      return ScriptedTransport::Deliver(req, 302, "", {{"Location", "https://cdn.example/blob"}});
    return ScriptedTransport::Deliver(req, 200, "bytes");
  });
  RedirectTransport t(fake);
  Request req;
  req.url = "https://reg/v2/a/blobs/sha256:1";
  req.SetHeader("Authorization", "Bearer secret");
  req.SetHeader("Range", "bytes=3-");
  std::string body;
  req.on_body = [&](std::string_view c) {
    body += c;
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body, "bytes");
  auto reqs = fake->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].GetHeader("Authorization"), "Bearer secret");  // same host
  EXPECT_EQ(reqs[2].url, "https://cdn.example/blob");
  EXPECT_EQ(reqs[2].GetHeader("Authorization"), "");
  EXPECT_EQ(reqs[2].GetHeader("Range"), "bytes=3-");
}

TEST(RedirectTransportTest, BoundsTheNumberOfHops) {
  auto fake = std::make_shared<ScriptedTransport>([](const Request& req) {
    return ScriptedTransport::Deliver(req, 302, "", {{"Location", "/loop"}});
  });
  RedirectTransport t(fake, 3);
  Request req;
  req.url = "https://reg/loop";
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(fake->requests().size(), 4u);
}

TEST(RegistryErrorsTest, KeepsProtocolCodesAndMapsStatus) {
  Response resp;
  resp.status = 404;
  resp.body =
      R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})";
  Error e = ResponseError("resolve localhost:5000/app:1", resp);
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.message(),
            "resolve localhost:5000/app:1: HTTP 404: MANIFEST_UNKNOWN: manifest unknown");
  resp.status = 400;
  resp.body = R"({"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]})";
  EXPECT_EQ(ResponseError("x", resp).code(), ErrorCode::kFailedPrecondition);
  resp.status = 503;
  resp.body = "<html>";
  EXPECT_EQ(ResponseError("x", resp).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(ResponseError("x", resp).message(), "x: HTTP 503");
  resp.status = 401;
  EXPECT_EQ(ResponseError("x", resp).code(), ErrorCode::kUnauthenticated);
  resp.status = 403;
  EXPECT_EQ(ResponseError("x", resp).code(), ErrorCode::kPermissionDenied);
}

TEST(PlatformSelectionTest, PicksTheMatchingManifest) {
  ASSERT_OK_AND_ASSIGN(auto index, oci::Index::Parse(R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
       "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
       "platform":{"os":"linux","architecture":"arm","variant":"v7"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
       "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
       "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
       "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333",
       "platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
       "digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444",
       "platform":{"os":"unknown","architecture":"unknown"}}
    ]})"));
  ASSERT_OK_AND_ASSIGN(auto amd64, oci::Platform::Parse("linux/amd64"));
  EXPECT_EQ(*SelectPlatform(index, amd64), 2u);
  ASSERT_OK_AND_ASSIGN(auto arm64, oci::Platform::Parse("linux/arm64"));
  EXPECT_EQ(*SelectPlatform(index, arm64), 1u);
  ASSERT_OK_AND_ASSIGN(auto armv7, oci::Platform::Parse("linux/arm/v7"));
  EXPECT_EQ(*SelectPlatform(index, armv7), 0u);
  ASSERT_OK_AND_ASSIGN(auto s390x, oci::Platform::Parse("linux/s390x"));
  auto none = SelectPlatform(index, s390x);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(none.error().message().find("linux/amd64"), std::string::npos);
}

}  // namespace
}  // namespace strata::registry
