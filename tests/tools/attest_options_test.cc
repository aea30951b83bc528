#include "tools/strata/attest_options.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using ::testing::HasSubstr;

TEST(AttestOptionsTest, BooleansAndModes) {
  auto none = ParseAttestOptions("", "", "");
  ASSERT_OK(none);
  EXPECT_FALSE(none->any());
  auto off = ParseAttestOptions("false", "0", "");
  ASSERT_OK(off);
  EXPECT_FALSE(off->any());
  auto on = ParseAttestOptions("true", "1", "");
  ASSERT_OK(on);
  EXPECT_TRUE(on->sbom);
  EXPECT_TRUE(on->provenance);
  EXPECT_FALSE(on->provenance_max);
  auto max = ParseAttestOptions("", "mode=max,builder-id=https://ci.example/run", "buildkit");
  ASSERT_OK(max);
  EXPECT_TRUE(max->provenance_max);
  EXPECT_EQ(max->builder_id, "https://ci.example/run");
  EXPECT_TRUE(max->buildkit_format);
  auto min = ParseAttestOptions("", "mode=min", "oci");
  ASSERT_OK(min);
  EXPECT_TRUE(min->provenance);
  EXPECT_FALSE(min->buildkit_format);
}

TEST(AttestOptionsTest, RefusesWhatItDoesNotImplementByName) {
  auto gen = ParseAttestOptions("generator=docker/scout-sbom-indexer:1", "", "");
  ASSERT_FALSE(gen.has_value());
  EXPECT_EQ(gen.error().code(), ErrorCode::kUnimplemented);
  EXPECT_THAT(gen.error().message(), HasSubstr("generator"));
  auto mode = ParseAttestOptions("", "mode=full", "");
  ASSERT_FALSE(mode.has_value());
  EXPECT_THAT(mode.error().message(), HasSubstr("mode=full"));
  auto key = ParseAttestOptions("", "reproducible=true", "");
  ASSERT_FALSE(key.has_value());
  EXPECT_THAT(key.error().message(), HasSubstr("reproducible"));
  auto fmt = ParseAttestOptions("true", "", "cosign");
  ASSERT_FALSE(fmt.has_value());
  EXPECT_THAT(fmt.error().message(), HasSubstr("cosign"));
  auto alone = ParseAttestOptions("", "", "buildkit");
  ASSERT_FALSE(alone.has_value());
  auto word = ParseAttestOptions("yes", "", "");
  ASSERT_FALSE(word.has_value());
  EXPECT_THAT(word.error().message(), HasSubstr("--sbom"));
}

}  // namespace
}  // namespace strata::cli
