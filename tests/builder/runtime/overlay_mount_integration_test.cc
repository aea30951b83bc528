// OverlayMount against the real kernel (root required; skipped otherwise).
#include "builder/runtime/overlay_mount.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;

constexpr long kOverlayfsMagic = 0x794c7630;

bool IsMountPoint(const std::filesystem::path& p) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // field 5 is the mount point
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 5 && fields >> f; ++i) {
    }
    if (f == p.string()) return true;
  }
  return false;
}

std::string Slurp(const std::filesystem::path& p) { return ReadFile(p).value_or("<missing>"); }

class OverlayMountIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for mount(2)";
    dir_ = MakeTempDir();
    for (const char* d : {"upper", "work", "merged"}) {
      std::filesystem::create_directories(dir_.path() / d);
    }
  }
  std::filesystem::path P(std::string_view rel) { return dir_.path() / rel; }
  ScopedTempDir dir_;
};

TEST_F(OverlayMountIntegrationTest, TopMostLowerWinsAndWritesGoToUpper) {
  WriteTestFile(P("top/shared"), "top");
  WriteTestFile(P("bottom/shared"), "bottom");
  WriteTestFile(P("bottom/only-bottom"), "b");
  WriteTestFile(P("bottom/gone"), "g");
  {
    ASSERT_OK_AND_ASSIGN(
        auto m, OverlayMount::Mount({{P("top"), P("bottom")}, P("upper"), P("work"), P("merged")}));
    EXPECT_TRUE(m.mounted());
    struct statfs sf;
    ASSERT_EQ(::statfs(P("merged").c_str(), &sf), 0);
    EXPECT_EQ(sf.f_type, kOverlayfsMagic);
    EXPECT_EQ(Slurp(P("merged/shared")), "top");
    EXPECT_EQ(Slurp(P("merged/only-bottom")), "b");
    WriteTestFile(P("merged/new"), "n");
    ASSERT_EQ(::unlink(P("merged/gone").c_str()), 0);
  }
  // Unmounted on scope exit; the diff is in the upper dir.
  EXPECT_FALSE(IsMountPoint(P("merged")));
  EXPECT_EQ(Slurp(P("upper/new")), "n");
  struct stat st;
  ASSERT_EQ(::lstat(P("upper/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(Slurp(P("bottom/gone")), "g");  // lower untouched
}

TEST_F(OverlayMountIntegrationTest, ManyLowerDirsBeyondOnePage) {
  std::vector<std::filesystem::path> lowers;
  const std::string pad(120, 'x');
  for (int i = 0; i < 80; ++i) {
    auto d = P(fmt::format("layers/{:03d}-{}", i, pad));
    WriteTestFile(d / fmt::format("f{}", i), std::to_string(i));
    WriteTestFile(d / "who", std::to_string(i));
    lowers.push_back(d);
  }
  std::reverse(lowers.begin(), lowers.end());  // top-most (79) first
  OverlayOptions o{lowers, P("upper"), P("work"), P("merged")};
  auto classic = OverlayMountData(o);
  ASSERT_FALSE(classic.has_value());  // would not fit in mount(2)'s page
  EXPECT_EQ(classic.error().code(), ErrorCode::kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(auto m, OverlayMount::Mount(o));
  EXPECT_EQ(Slurp(P("merged/who")), "79");
  EXPECT_EQ(Slurp(P("merged/f0")), "0");
  EXPECT_EQ(Slurp(P("merged/f79")), "79");
  ASSERT_OK(m.Unmount());
  EXPECT_FALSE(m.mounted());
  EXPECT_FALSE(IsMountPoint(P("merged")));
}

TEST_F(OverlayMountIntegrationTest, LowersWithoutUpperAreReadOnly) {
  WriteTestFile(P("a/x"), "a");
  WriteTestFile(P("b/y"), "b");
  ASSERT_OK_AND_ASSIGN(auto m, OverlayMount::Mount({{P("a"), P("b")}, {}, {}, P("merged")}));
  EXPECT_EQ(Slurp(P("merged/x")), "a");
  EXPECT_EQ(Slurp(P("merged/y")), "b");
  int fd = ::open(P("merged/z").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);
}

TEST_F(OverlayMountIntegrationTest, SingleLowerWithoutUpperIsAReadOnlyView) {
  WriteTestFile(P("only/file"), "content");
  ASSERT_OK_AND_ASSIGN(auto m, OverlayMount::Mount({{P("only")}, {}, {}, P("merged")}));
  EXPECT_EQ(Slurp(P("merged/file")), "content");
  EXPECT_NE(::unlink(P("merged/file").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_TRUE(IsMountPoint(P("merged")));
  ASSERT_OK(m.Unmount());
  EXPECT_FALSE(IsMountPoint(P("merged")));
  EXPECT_EQ(Slurp(P("only/file")), "content");
}

TEST_F(OverlayMountIntegrationTest, MoveTransfersOwnership) {
  WriteTestFile(P("l1/a"), "1");
  WriteTestFile(P("l2/b"), "2");
  OverlayMount outer;
  {
    ASSERT_OK_AND_ASSIGN(
        auto m, OverlayMount::Mount({{P("l1"), P("l2")}, P("upper"), P("work"), P("merged")}));
    outer = std::move(m);
    EXPECT_FALSE(m.mounted());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  }
  EXPECT_TRUE(IsMountPoint(P("merged")));
  EXPECT_EQ(Slurp(P("merged/b")), "2");
  ASSERT_OK(outer.Unmount());
  EXPECT_FALSE(IsMountPoint(P("merged")));
}

TEST_F(OverlayMountIntegrationTest, BusyMountIsDetachedLazily) {
  WriteTestFile(P("l1/a"), "1");
  WriteTestFile(P("l2/b"), "2");
  ASSERT_OK_AND_ASSIGN(
      auto m, OverlayMount::Mount({{P("l1"), P("l2")}, P("upper"), P("work"), P("merged")}));
  // An open file inside the mount keeps it busy.
  int keep = ::open(P("merged/a").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(keep, 0);
  auto s = m.Unmount();
  EXPECT_FALSE(s.has_value());  // reported: plain umount kept failing with EBUSY
  EXPECT_FALSE(m.mounted());
  EXPECT_FALSE(IsMountPoint(P("merged")));  // but gone from the namespace
  char c;
  EXPECT_EQ(::read(keep, &c, 1), 1);  // the open file still works after detach
  ::close(keep);
}

TEST_F(OverlayMountIntegrationTest, MissingLowerFailsWithKernelMessage) {
  auto r = OverlayMount::Mount({{P("nope"), P("nope2")}, P("upper"), P("work"), P("merged")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound) << r.error().message();
  EXPECT_FALSE(IsMountPoint(P("merged")));
}

}  // namespace
}  // namespace strata::builder
