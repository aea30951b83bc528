#include "oci/snapshots.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/util/file_util.h"
#include "tests/oci/layer_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::oci::testing::MakeImage;
using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;

Digest D(std::string_view s) { return *Digest::Parse(s); }

TEST(ChainIdTest, FollowsTheImageSpec) {
  // Values computed with sha256sum: printf 'sha256:<a> sha256:<b>' | sha256sum.
  Digest a = Digest::Of("a");
  Digest b = Digest::Of("b");
  Digest c = Digest::Of("c");
  std::vector<Digest> ids = {a, b, c};
  auto chain = ChainIds(ids);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0], a);
  EXPECT_EQ(chain[1], D("sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"));
  EXPECT_EQ(chain[2], D("sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106"));
  EXPECT_EQ(ChainId(ids), chain[2]);
}

TEST(SnapshotsTest, LowerDirOptionJoinsWithColons) {
  EXPECT_EQ(LowerDirOption({"/s/c", "/s/b", "/s/a"}), "/s/c:/s/b:/s/a");
}

class SnapshotsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }
  fs::path Dir(std::string_view name) { return tmp_.path() / name; }
  std::vector<std::string> SnapshotNames() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(store_->SnapshotsDir())) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  ScopedTempDir tmp_ = MakeTempDir();
  std::unique_ptr<Store> store_;
};

TEST_F(SnapshotsStoreTest, PreparesEachLayerOnceTopFirst) {
  WriteTestFile(Dir("l1/base"), "1");
  WriteTestFile(Dir("l2/mid"), "2");
  WriteTestFile(Dir("l3/top"), "3");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2"), Dir("l3")}));
  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  auto chain = ChainIds(image.config.diff_ids);
  ASSERT_EQ(lower.size(), 3u);
  EXPECT_EQ(lower[0], SnapshotPath(*store_, chain[2]));
  EXPECT_EQ(lower[2], SnapshotPath(*store_, chain[0]));
  EXPECT_EQ(lower[0].filename().string(), chain[2].hex());
  EXPECT_TRUE(fs::exists(lower[0] / "top"));
  EXPECT_FALSE(fs::exists(lower[0] / "base"));  // a snapshot holds its own layer only
  EXPECT_TRUE(fs::exists(lower[2] / "base"));
  struct stat st;
  ASSERT_EQ(::stat(lower[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(SnapshotNames().size(), 3u);  // no temp dirs left

  // A second preparation reuses the snapshots as they are.
  WriteTestFile(lower[1] / "marker", "m");
  ASSERT_OK_AND_ASSIGN(auto again, PrepareLowerDirs(*store_, image, {}));
  EXPECT_EQ(again, lower);
  EXPECT_TRUE(fs::exists(lower[1] / "marker"));
}

TEST_F(SnapshotsStoreTest, SharedBaseSharesSnapshots) {
  WriteTestFile(Dir("base/b"), "b");
  WriteTestFile(Dir("x/x"), "x");
  WriteTestFile(Dir("y/y"), "y");
  ASSERT_OK_AND_ASSIGN(Image one, MakeImage(*store_, {Dir("base"), Dir("x")}));
  ASSERT_OK_AND_ASSIGN(Image two, MakeImage(*store_, {Dir("base"), Dir("y")}));
  ASSERT_OK_AND_ASSIGN(auto l1, PrepareLowerDirs(*store_, one, {}));
  ASSERT_OK_AND_ASSIGN(auto l2, PrepareLowerDirs(*store_, two, {}));
  EXPECT_EQ(l1[1], l2[1]);
  EXPECT_NE(l1[0], l2[0]);
  EXPECT_EQ(SnapshotNames().size(), 3u);
}

TEST_F(SnapshotsStoreTest, FailedLayerLeavesNoSnapshot) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  Digest wrong = Digest::Of("not the diff id");
  auto r = EnsureSnapshot(*store_, wrong, image.manifest.layers[0], wrong, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("snapshot " + wrong.ToString()));
  EXPECT_TRUE(SnapshotNames().empty());
}

TEST_F(SnapshotsStoreTest, MismatchedLayerCountIsInvalidArgument) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  image.config.diff_ids.push_back(Digest::Of("extra"));
  auto r = PrepareLowerDirs(*store_, image, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SnapshotsStoreTest, SnapshotsAreInOverlayForm) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for overlay whiteouts";
  WriteTestFile(Dir("l1/gone"), "g");
  fs::create_directories(Dir("l2"));
  ASSERT_EQ(::mknod(Dir("l2/gone").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2")}, true));
  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  struct stat st;
  ASSERT_EQ(::lstat((lower[0] / "gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(0, 0));
}

}  // namespace
}  // namespace strata::oci
