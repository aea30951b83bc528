#include "registry/errors.h"

#include <gtest/gtest.h>

#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

Response Failed(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(ProtocolCodeTest, EverySpecCodeRoundTrips) {
  const std::vector<std::pair<std::string, ProtocolCode>> table = {
      {"BLOB_UNKNOWN", ProtocolCode::kBlobUnknown},
      {"BLOB_UPLOAD_INVALID", ProtocolCode::kBlobUploadInvalid},
      {"BLOB_UPLOAD_UNKNOWN", ProtocolCode::kBlobUploadUnknown},
      {"DIGEST_INVALID", ProtocolCode::kDigestInvalid},
      {"MANIFEST_BLOB_UNKNOWN", ProtocolCode::kManifestBlobUnknown},
      {"MANIFEST_INVALID", ProtocolCode::kManifestInvalid},
      {"MANIFEST_UNKNOWN", ProtocolCode::kManifestUnknown},
      {"NAME_INVALID", ProtocolCode::kNameInvalid},
      {"NAME_UNKNOWN", ProtocolCode::kNameUnknown},
      {"SIZE_INVALID", ProtocolCode::kSizeInvalid},
      {"UNAUTHORIZED", ProtocolCode::kUnauthorized},
      {"DENIED", ProtocolCode::kDenied},
      {"UNSUPPORTED", ProtocolCode::kUnsupported},
      {"TOOMANYREQUESTS", ProtocolCode::kTooManyRequests},
  };
  for (const auto& [name, code] : table) {
    EXPECT_EQ(ParseProtocolCode(name), code) << name;
    EXPECT_EQ(ProtocolCodeName(code), name);
  }
  EXPECT_EQ(ParseProtocolCode("manifest_unknown"), ProtocolCode::kUnknown);
  EXPECT_EQ(ParseProtocolCode("QUOTA_EXCEEDED"), ProtocolCode::kUnknown);
  EXPECT_EQ(ProtocolCodeName(ProtocolCode::kUnknown), "UNKNOWN");
}

TEST(RegistryErrorTest, KeepsStatusCodesAndAnUnknownCodeVerbatim) {
  RegistryError e("push blob sha256:ab to reg/app",
                  Failed(400, R"({"errors":[{"code":"SIZE_INVALID","message":"too short"},)"
                              R"({"code":"QUOTA_EXCEEDED","message":"over quota"}]})"));
  EXPECT_EQ(e.http_status(), 400);
  EXPECT_TRUE(e.Has(ProtocolCode::kSizeInvalid));
  EXPECT_FALSE(e.Has(ProtocolCode::kDigestInvalid));
  ASSERT_EQ(e.entries().size(), 2u);
  EXPECT_EQ(e.entries()[1].code, ProtocolCode::kUnknown);
  EXPECT_EQ(e.entries()[1].raw, "QUOTA_EXCEEDED");
  EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(e.message(),
            "push blob sha256:ab to reg/app: HTTP 400: SIZE_INVALID: too short; "
            "QUOTA_EXCEEDED: over quota");
  RegistryError wrapped = e.Wrap("push app:1");
  EXPECT_EQ(wrapped.http_status(), 400);
  EXPECT_TRUE(wrapped.Has(ProtocolCode::kSizeInvalid));
  EXPECT_TRUE(wrapped.message().starts_with("push app:1: push blob"));
}

TEST(RegistryErrorTest, CodesDecideTheCategoryBeforeTheStatus) {
  auto code_of = [](int status, std::string_view code) {
    return RegistryError("x",
                         Failed(status, fmt::format(R"({{"errors":[{{"code":"{}"}}]}})", code)))
        .code();
  };
  EXPECT_EQ(code_of(400, "TOOMANYREQUESTS"), ErrorCode::kUnavailable);
  EXPECT_EQ(code_of(400, "DENIED"), ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_of(400, "UNAUTHORIZED"), ErrorCode::kUnauthenticated);
  EXPECT_EQ(code_of(400, "UNSUPPORTED"), ErrorCode::kUnimplemented);
  EXPECT_EQ(code_of(400, "BLOB_UPLOAD_UNKNOWN"), ErrorCode::kNotFound);
  EXPECT_EQ(code_of(404, "DIGEST_INVALID"), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of(400, "MANIFEST_INVALID"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(502, "MANIFEST_INVALID"), ErrorCode::kUnavailable);
}

TEST(RegistryErrorTest, BodyWithoutRegistryJsonFallsBackToTheStatus) {
  RegistryError e("x", Failed(404, "<html>not found</html>"));
  EXPECT_FALSE(e.HasProtocolCodes());
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.message(), "x: HTTP 404");
  RegistryError local(Error(ErrorCode::kUnavailable, "connection refused"));
  EXPECT_EQ(local.http_status(), 0);
  EXPECT_FALSE(local.HasProtocolCodes());
  EXPECT_EQ(ToResult(RegistryResult<int>(std::unexpected(local))).error().message(),
            "connection refused");
}

}  // namespace
}  // namespace strata::registry
