#include "oci/util/file_util.h"

#include <sys/stat.h>

#include "tests/testing/test_util.h"

namespace strata {
namespace {

using ::strata::testing::MakeTempDir;

TEST(FileUtilTest, WriteFileAtomicReplacesContentAndMode) {
  auto dir = MakeTempDir();
  auto p = dir.path() / "f";
  ASSERT_OK(WriteFileAtomic(p, "one"));
  ASSERT_OK(WriteFileAtomic(p, "two", 0600));
  ASSERT_OK_AND_ASSIGN(auto s, ReadFile(p));
  EXPECT_EQ(s, "two");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temp files left behind.
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1);
}

TEST(FileUtilTest, ReadFileMissingIsNotFound) {
  auto dir = MakeTempDir();
  auto r = ReadFile(dir.path() / "nope");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("nope"));
}

TEST(FileUtilTest, RemoveAllHandlesReadOnlyDirsAndSymlinks) {
  auto dir = MakeTempDir();
  auto outside = MakeTempDir();
  ::strata::testing::WriteTestFile(outside.path() / "keep", "x");
  auto d = dir.path() / "a" / "b";
  ASSERT_OK(MakeDirs(d));
  ::strata::testing::WriteTestFile(d / "f", "x");
  std::filesystem::create_directory_symlink(outside.path(), dir.path() / "a" / "link");
  ::chmod(d.c_str(), 0555);
  ASSERT_OK(RemoveAll(dir.path() / "a"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "a"));
  EXPECT_TRUE(std::filesystem::exists(outside.path() / "keep"));
}

TEST(FileUtilTest, ScopedTempDirRemovesOnDestruction) {
  std::filesystem::path p;
  {
    auto d = MakeTempDir();
    p = d.path();
    ::strata::testing::WriteTestFile(p / "x" / "y", "z");
  }
  EXPECT_FALSE(std::filesystem::exists(p));
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST(AtomicFileTest, AppearsOnlyOnCommit) {
  auto dir = testing::MakeTempDir();
  auto p = dir.path() / "out.tar";
  ASSERT_OK(WriteFileAtomic(p, "old"));
  {
    ASSERT_OK_AND_ASSIGN(auto f, AtomicFile::Create(p, 0640));
    ASSERT_OK(f.Write("new ", 4));
    ASSERT_OK(WriteAll(f.fd(), "bytes", 5));
    ASSERT_OK_AND_ASSIGN(auto before, ReadFile(p));
    EXPECT_EQ(before, "old");
    ASSERT_OK(f.Commit());
    auto again = f.Commit();
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(auto after, ReadFile(p));
  EXPECT_EQ(after, "new bytes");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(AtomicFileTest, AbandonedLeavesTheOldFileAndNoTemp) {
  auto dir = testing::MakeTempDir();
  auto p = dir.path() / "f";
  ASSERT_OK(WriteFileAtomic(p, "old"));
  {
    ASSERT_OK_AND_ASSIGN(auto f, AtomicFile::Create(p));
    ASSERT_OK(f.Write("partial", 7));
  }
  ASSERT_OK_AND_ASSIGN(auto s, ReadFile(p));
  EXPECT_EQ(s, "old");
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace strata
