#include "tools/strata/git_cli.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

constexpr std::string_view kLsRemote =
    "1111111111111111111111111111111111111111\tHEAD\n"
    "2222222222222222222222222222222222222222\trefs/heads/main\n"
    "3333333333333333333333333333333333333333\trefs/heads/v1\n"
    "4444444444444444444444444444444444444444\trefs/tags/v1\n"
    "5555555555555555555555555555555555555555\trefs/tags/v1^{}\n"
    "6666666666666666666666666666666666666666\trefs/tags/light\n";

TEST(PickRefTest, EmptyIsHead) {
  auto r = PickRef(kLsRemote, "");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, "HEAD");
  EXPECT_EQ(r->second, std::string(40, '1'));
}

TEST(PickRefTest, BranchByShortName) {
  auto r = PickRef(kLsRemote, "main");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, "refs/heads/main");
  EXPECT_EQ(r->second, std::string(40, '2'));
}

TEST(PickRefTest, AnnotatedTagIsPeeledAndWinsOverABranchOfTheSameName) {
  auto r = PickRef(kLsRemote, "v1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, "refs/tags/v1");
  EXPECT_EQ(r->second, std::string(40, '5'));  // the commit, not the tag object
}

TEST(PickRefTest, LightweightTagAndFullRefName) {
  EXPECT_EQ(PickRef(kLsRemote, "light")->second, std::string(40, '6'));
  auto r = PickRef(kLsRemote, "refs/heads/v1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->second, std::string(40, '3'));
}

TEST(PickRefTest, UnknownRefIsNone) {
  EXPECT_FALSE(PickRef(kLsRemote, "nope").has_value());
  EXPECT_FALSE(PickRef(kLsRemote, "heads/main").has_value());
  EXPECT_FALSE(PickRef("", "main").has_value());
}

}  // namespace
}  // namespace strata::cli
