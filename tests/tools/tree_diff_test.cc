#include "tools/strata/tree_diff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

class TreeDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    a_ = dir_.path() / "a";
    b_ = dir_.path() / "b";
    for (const auto& root : {a_, b_}) {
      fs::create_directories(root / "etc");
      File(root / "etc/x", "same");
      File(root / "etc/y", "same");
      fs::create_symlink("/etc/x", root / "link");
    }
  }
  static void File(const fs::path& p, const std::string& content) {
    std::ofstream(p) << content;
    ::chmod(p.c_str(), 0644);
    struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
    ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
  // Directory (and link) mtimes change as entries are made: pin them last.
  void PinDirs() {
    for (const auto& root : {a_, b_}) {
      struct timespec lt[2] = {{1700000000, 0}, {1700000000, 0}};
      ::utimensat(AT_FDCWD, (root / "link").c_str(), lt, AT_SYMLINK_NOFOLLOW);
      for (const auto& d : {root / "etc", root}) {
        struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
        ::utimensat(AT_FDCWD, d.c_str(), ts, 0);
      }
    }
  }
  std::optional<std::string> Diff() {
    PinDirs();
    auto ta = ScanTree(a_);
    auto tb = ScanTree(b_);
    EXPECT_TRUE(ta.has_value() && tb.has_value());
    return FirstDifference(*ta, *tb);
  }
  ScopedTempDir dir_;
  fs::path a_, b_;
};

TEST_F(TreeDiffTest, EqualTreesHaveNoDifference) { EXPECT_EQ(Diff(), std::nullopt); }

TEST_F(TreeDiffTest, NamesTheFirstDifferingFileAndHow) {
  File(b_ / "etc/y", "other");
  File(b_ / "etc/x", "diff!");
  EXPECT_EQ(Diff(), "/etc/x: content differs");
}

TEST_F(TreeDiffTest, ModeOwnerMtimeXattrAndPresence) {
  ::chmod((b_ / "etc/x").c_str(), 0600);
  EXPECT_EQ(Diff(), "/etc/x: mode 0644 vs 0600");
  ::chmod((b_ / "etc/x").c_str(), 0644);
  struct timespec ts[2] = {{1700000001, 0}, {1700000001, 0}};
  ::utimensat(AT_FDCWD, (b_ / "etc/y").c_str(), ts, 0);
  EXPECT_EQ(Diff(), "/etc/y: mtime 1700000000.000000000 vs 1700000001.000000000");
  File(b_ / "etc/y", "same");
  if (::setxattr((a_ / "etc/x").c_str(), "user.k", "v", 1, 0) == 0) {
    EXPECT_EQ(Diff(), "/etc/x: xattr user.k differs");
    ::removexattr((a_ / "etc/x").c_str(), "user.k");
  }
  if (::geteuid() == 0) {
    ASSERT_EQ(::lchown((b_ / "etc/x").c_str(), 1, 2), 0);
    EXPECT_EQ(Diff(), "/etc/x: owner 0:0 vs 1:2");
    ASSERT_EQ(::lchown((b_ / "etc/x").c_str(), 0, 0), 0);
  }
  File(a_ / "etc/z", "extra");
  EXPECT_EQ(Diff(), "/etc/z: only in the first build");
  fs::remove(a_ / "etc/z");
  fs::remove(b_ / "link");
  fs::create_symlink("/etc/y", b_ / "link");
  EXPECT_EQ(Diff(), "/link: link target /etc/x vs /etc/y");
}

TEST_F(TreeDiffTest, NeverFollowsSymlinksOutOfTheTree) {
  // A link to a directory outside: listed as a link, not walked.
  fs::create_directories(dir_.path() / "outside/deep");
  fs::create_directory_symlink(dir_.path() / "outside", a_ / "out");
  fs::create_directory_symlink(dir_.path() / "outside", b_ / "out");
  auto t = ScanTree(a_);
  ASSERT_OK(t);
  EXPECT_EQ(t->at("out").type, 'l');
  EXPECT_FALSE(t->count("out/deep"));
}

}  // namespace
}  // namespace strata::cli
