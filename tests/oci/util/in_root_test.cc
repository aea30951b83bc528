#include "oci/util/in_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

class RootDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = testing::MakeTempDir();
    root_path_ = tmp_.path() / "root";
    outside_ = tmp_.path() / "outside";
    ASSERT_OK(MakeDirs(root_path_));
    testing::WriteTestFile(outside_ / "victim", "original");
    auto r = RootDir::Open(root_path_);
    ASSERT_OK(r);
    root_ = std::move(*r);
  }

  ScopedTempDir tmp_;
  fs::path root_path_;
  fs::path outside_;
  RootDir root_;
};

TEST_F(RootDirTest, MakeDirsCreatesEveryComponent) {
  ASSERT_OK(root_.MakeDirs("/a/b/c"));
  EXPECT_TRUE(fs::is_directory(root_path_ / "a" / "b" / "c"));
  ASSERT_OK(root_.MakeDirs("a/b/c"));  // idempotent
}

TEST_F(RootDirTest, AbsoluteLinkInAParentResolvesInsideTheRoot) {
  fs::create_symlink(outside_, root_path_ / "x");
  ASSERT_OK_AND_ASSIGN(auto at, root_.Parent("x/victim", /*create_parents=*/true));
  int fd = ::openat(at.dir.get(), at.name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  ::close(fd);
  // The write landed at <root><outside>/victim, never in the real outside dir.
  EXPECT_TRUE(fs::exists(root_path_ / outside_.relative_path() / "victim"));
  EXPECT_EQ(*ReadFile(outside_ / "victim"), "original");
}

TEST_F(RootDirTest, DotDotChainsAndRootLinksAreClamped) {
  fs::create_symlink("../../../../../../../../" + outside_.relative_path().string(),
                     root_path_ / "rel");
  fs::create_symlink("/", root_path_ / "slash");
  ASSERT_OK(root_.MakeDirs("rel/new"));
  ASSERT_OK(root_.MakeDirs("slash/" + outside_.relative_path().string() + "/new2"));
  ASSERT_OK(root_.MakeDirs("../../../escaped"));
  EXPECT_FALSE(fs::exists(outside_ / "new"));
  EXPECT_FALSE(fs::exists(outside_ / "new2"));
  EXPECT_FALSE(fs::exists(tmp_.path().parent_path() / "escaped"));
  EXPECT_TRUE(fs::is_directory(root_path_ / outside_.relative_path() / "new"));
  EXPECT_TRUE(fs::is_directory(root_path_ / "escaped"));
}

TEST_F(RootDirTest, AFileInThePathIsAClearError) {
  testing::WriteTestFile(root_path_ / "file", "x");
  auto r = root_.MakeDirs("file/sub");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("/file"));
}

TEST_F(RootDirTest, DanglingLinkTargetsAreCreatedInsideTheRoot) {
  fs::create_symlink("/nonexistent/target", root_path_ / "dangling");
  fs::create_symlink("loop2", root_path_ / "loop1");
  fs::create_symlink("loop1", root_path_ / "loop2");
  ASSERT_OK(root_.MakeDirs("dangling/sub"));
  EXPECT_TRUE(fs::is_directory(root_path_ / "nonexistent" / "target" / "sub"));
  EXPECT_FALSE(fs::exists("/nonexistent"));
  auto r = root_.MakeDirs("loop1/sub");
  ASSERT_FALSE(r);
}

TEST_F(RootDirTest, ParentOfTheRootItselfIsRefused) {
  EXPECT_EQ(root_.Parent("/", true).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(root_.Parent("a/..", true).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(root_.Parent("missing/x", false).error().code(), ErrorCode::kNotFound);
}

TEST_F(RootDirTest, RemoveTreeAtNeverFollowsLinks) {
  ASSERT_OK(MakeDirs(root_path_ / "d" / "e"));
  testing::WriteTestFile(root_path_ / "d" / "e" / "f", "x");
  fs::create_symlink(outside_, root_path_ / "d" / "link");
  ::chmod((root_path_ / "d" / "e").c_str(), 0500);
  ASSERT_OK(RemoveTreeAt(root_.fd(), "d"));
  EXPECT_FALSE(fs::exists(root_path_ / "d"));
  EXPECT_EQ(*ReadFile(outside_ / "victim"), "original");
  ASSERT_OK(RemoveTreeAt(root_.fd(), "absent"));
}

}  // namespace
}  // namespace strata
