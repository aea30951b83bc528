// BuildKit's CSV option strings (tools/strata/buildkit_options.h).
#include "tools/strata/buildkit_options.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(BuildkitOptionsTest, SplitsOnCommasOutsideQuotes) {
  auto f = SplitCsvFields(R"(type=image,"name=a,b",x="")", "--output");
  ASSERT_FALSE(f);  // a quote inside an unquoted field, as encoding/csv says
  auto g = SplitCsvFields(R"(type=image,"name=a,b","say ""hi""",)", "--output");
  ASSERT_OK(g);
  EXPECT_THAT(*g, ElementsAre("type=image", "name=a,b", "say \"hi\"", ""));
}

TEST(BuildkitOptionsTest, QuoteErrorsNameTheValue) {
  auto open = SplitCsvFields(R"(type=tar,"dest=x)", "--output");
  ASSERT_FALSE(open);
  EXPECT_THAT(open.error().message(), HasSubstr("--output type=tar,\"dest=x: unterminated quote"));
  auto after = SplitCsvFields(R"("a=b"c)", "--output");
  ASSERT_FALSE(after);
  EXPECT_THAT(after.error().message(), HasSubstr("unexpected text after a quoted field"));
}

TEST(BuildkitOptionsTest, KeysAreTrimmedAndLowerCasedUpToTheFirstDot) {
  auto kv = ParseKeyValueFields(" Type =tar,DEST=x,Annotation.Org.Key=V", "-o");
  ASSERT_OK(kv);
  EXPECT_THAT(*kv,
              ElementsAre(Pair("type", "tar"), Pair("dest", "x"), Pair("annotation.Org.Key", "V")));
  auto bad = ParseKeyValueFields("type=tar,oops", "-o");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("field \"oops\" is not KEY=VALUE"));
  auto empty = ParseKeyValueFields("=x", "-o");
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.error().message(), HasSubstr("has an empty key"));
}

TEST(BuildkitOptionsTest, BooleansAsGoParsesThem) {
  EXPECT_EQ(ParseBoolOption("-o", "push", "true").value(), true);
  EXPECT_EQ(ParseBoolOption("-o", "push", "1").value(), true);
  EXPECT_EQ(ParseBoolOption("-o", "push", "False").value(), false);
  auto bad = ParseBoolOption("-o", "push", "yes");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("-o push=yes: want true or false"));
}

}  // namespace
}  // namespace strata::cli
