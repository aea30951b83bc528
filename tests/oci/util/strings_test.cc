#include "oci/util/strings.h"

#include "tests/testing/test_util.h"

namespace strata {
namespace {

TEST(StringsTest, LowerAndEqualsIgnoreCase) {
  EXPECT_EQ(Lower("FROM Ubuntu AS Build"), "from ubuntu as build");
  EXPECT_TRUE(EqualsIgnoreCase("Bearer", "bEARER"));
  EXPECT_FALSE(EqualsIgnoreCase("Bearer", "Basic"));
  EXPECT_FALSE(EqualsIgnoreCase("a", "ab"));
}

TEST(StringsTest, TrimTakesEveryAsciiSpace) {
  EXPECT_EQ(Trim(" \t\r\n\v\fx y \n"), "x y");
  EXPECT_EQ(TrimLeft("  x "), "x ");
  EXPECT_EQ(TrimRight("  x "), "  x");
  EXPECT_EQ(Trim("   "), "");
}

TEST(StringsTest, SplitKeepsEmptyFieldsSplitWhitespaceDropsThem) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string_view>{""}));
  EXPECT_EQ(SplitWhitespace("  a \t b\nc  "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(Join({}, ","), "");
}

TEST(StringsTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("64G"), uint64_t{64} << 30);
  EXPECT_EQ(*ParseByteSize("512MiB"), uint64_t{512} << 20);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  for (const char* bad : {"", "0", "G", "1x", "-1", "99999999999999999999999", "16777216T"}) {
    auto v = ParseByteSize(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(FormatByteSize(uint64_t{3} << 20), "3 MiB");
  EXPECT_EQ(FormatByteSize(1000), "1000 bytes");
}

}  // namespace
}  // namespace strata
