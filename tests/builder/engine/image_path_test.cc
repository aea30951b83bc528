#include "builder/engine/image_path.h"

#include <sys/stat.h>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

TEST(ImagePathTest, CleanAbs) {
  EXPECT_EQ(CleanAbs("/app"), "/app");
  EXPECT_EQ(CleanAbs("app"), "/app");
  // Regression: "/app" once became "//app", and root / "/app" is the host's /app.
  EXPECT_EQ(CleanAbs("//app/"), "/app");
  EXPECT_EQ(CleanAbs("/a/./b//c/.."), "/a/b");
  EXPECT_EQ(CleanAbs("/../../etc"), "/etc");
  EXPECT_EQ(CleanAbs(""), "/");
  EXPECT_EQ(CleanAbs("."), "/");
  EXPECT_EQ(CleanAbs("/"), "/");
}

TEST(ImagePathTest, UnderNeverLeavesTheRoot) {
  fs::path root = "/tmp/some/root";
  EXPECT_EQ(Under(root, "/app"), root / "app");
  EXPECT_EQ(Under(root, "//app"), root / "app");
  EXPECT_EQ(Under(root, "/../../etc/passwd"), root / "etc/passwd");
  EXPECT_EQ(Under(root, "/"), root);
}

TEST(ImagePathTest, ResolveInRootKeepsSymlinksInside) {
  auto dir = testing::MakeTempDir();
  fs::path root = dir.path() / "root";
  ASSERT_OK(MakeDirs(root / "real"));
  testing::WriteTestFile(root / "real" / "f", "x");
  fs::create_symlink("/real", root / "abs");            // absolute: restarts at root
  fs::create_symlink("../../../../real", root / "up");  // ".." stops at root
  fs::create_symlink("/etc", root / "hostetc");         // would be the host's /etc
  fs::create_symlink("loop", root / "loop");
  ASSERT_OK_AND_ASSIGN(auto a, ResolveInRoot(root, "abs/f", false));
  EXPECT_EQ(a, root / "real" / "f");
  ASSERT_OK_AND_ASSIGN(auto b, ResolveInRoot(root, "up/f", false));
  EXPECT_EQ(b, root / "real" / "f");
  ASSERT_OK_AND_ASSIGN(auto c, ResolveInRoot(root, "hostetc/passwd", false));
  EXPECT_EQ(c, root / "etc" / "passwd");
  ASSERT_OK_AND_ASSIGN(auto d, ResolveInRoot(root, "/abs", false));
  EXPECT_EQ(d, root / "abs");  // last component not followed
  ASSERT_OK_AND_ASSIGN(auto e, ResolveInRoot(root, "/abs", true));
  EXPECT_EQ(e, root / "real");
  auto loop = ResolveInRoot(root, "loop/x", true);
  ASSERT_FALSE(loop.has_value());
  EXPECT_EQ(loop.error().code(), ErrorCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto missing, ResolveInRoot(root, "nope/deeper", true));
  EXPECT_EQ(missing, root / "nope" / "deeper");
}

TEST(ImagePathTest, ApplyChmodOctalAndSymbolic) {
  EXPECT_EQ(*ApplyChmod("755", 0644, false), 0755u);
  EXPECT_EQ(*ApplyChmod("0640", 0777, false), 0640u);
  EXPECT_EQ(*ApplyChmod("4755", 0644, false), 04755u);
  EXPECT_EQ(*ApplyChmod("u+x", 0644, false), 0744u);
  EXPECT_EQ(*ApplyChmod("u+x,g-r", 0644, false), 0704u);
  EXPECT_EQ(*ApplyChmod("a+rX", 0600, true), 0755u);
  EXPECT_EQ(*ApplyChmod("a+rX", 0600, false), 0644u);
  EXPECT_EQ(*ApplyChmod("go=", 0755, false), 0700u);
  EXPECT_EQ(*ApplyChmod("o=r", 0750, false), 0754u);
  for (const char* bad : {"", "8", "99999", "u", "z+x", "u+q", "u*x"}) {
    auto r = ApplyChmod(bad, 0644, false);
    EXPECT_FALSE(r.has_value()) << bad;
  }
}

}  // namespace
}  // namespace strata::builder
