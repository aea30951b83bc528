#include "oci/util/path.h"

#include "tests/testing/test_util.h"

namespace strata {
namespace {

TEST(PathTest, CleanPathIsGoPathClean) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "."},  {".", "."},      {"./a//b/../c/", "a/c"}, {"/../a", "/a"},    {"a/../..", ".."},
      {"/", "/"}, {"//a//", "/a"}, {"../../x", "../../x"},  {"a/./b/.", "a/b"}, {"/a/b/..", "/a"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(CleanPath(in), want) << in;
}

TEST(PathTest, NormalizeInsideStaysInTheRoot) {
  EXPECT_EQ(NormalizeInside("a/./b//c"), "a/b/c");
  EXPECT_EQ(NormalizeInside("../x", "dir"), "x");
  EXPECT_EQ(NormalizeInside("a/.."), "");
  EXPECT_EQ(NormalizeInside(".."), std::nullopt);
  EXPECT_EQ(NormalizeInside("/etc/passwd"), std::nullopt);
  EXPECT_EQ(NormalizeInside("../../x", "dir"), std::nullopt);
}

TEST(PathTest, CleanEntryPathRefusesEscapes) {
  EXPECT_EQ(*CleanEntryPath("./usr//bin/"), "usr/bin");
  EXPECT_EQ(*CleanEntryPath("./"), "");
  EXPECT_EQ(CleanEntryPath("/etc").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CleanEntryPath("a/../b").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SplitPath("/a//b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(JoinPath({"a", "b"}), "a/b");
}

}  // namespace
}  // namespace strata
