#include "oci/snapshots.h"

#include <chrono>
#include <thread>

#include <fcntl.h>
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

TEST_F(SnapshotsStoreTest, ScratchDirsAreDotNamedAndRemovedWithTheirOwner) {
  fs::path path;
  {
    ASSERT_OK_AND_ASSIGN(auto scratch, MakeSnapshotScratchDir(*store_, ".run-"));
    path = scratch.path();
    EXPECT_EQ(path.parent_path(), store_->SnapshotsDir());
    EXPECT_TRUE(path.filename().string().starts_with(".run-"));
    EXPECT_TRUE(fs::is_directory(path));
  }
  EXPECT_FALSE(fs::exists(path));
  for (const char* bad : {"run-", ".a/b", ""}) {
    auto r = MakeSnapshotScratchDir(*store_, bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(SnapshotsStoreTest, PreparesEachLayerOnceTopFirst) {
  WriteTestFile(Dir("l1/base"), "1");
  WriteTestFile(Dir("l2/mid"), "2");
  WriteTestFile(Dir("l3/top"), "3");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2"), Dir("l3")}));
  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  auto chain = ChainIds(image.config.diff_ids);
  ASSERT_EQ(lower.size(), 3u);
  EXPECT_EQ(lower[0], SnapshotLowerDir(*store_, chain[2]));
  EXPECT_EQ(lower[2], SnapshotLowerDir(*store_, chain[0]));
  EXPECT_EQ(lower[0].parent_path().filename().string(), chain[2].hex());
  EXPECT_TRUE(fs::exists(SnapshotPath(*store_, chain[2]) / "snapshot.json"));
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

// What an interrupted in-place delete (or an older strata) leaves under a
// chainID name: the name and part of the content, no proof of completeness.
// It must never be used as the layer; the layer is unpacked again.
TEST_F(SnapshotsStoreTest, UnmarkedSnapshotDirectoryIsNeverUsed) {
  for (const char* f : {"a", "b", "c"}) WriteTestFile(Dir(std::string("l1/") + f), f);
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  Digest chain = ChainIds(image.config.diff_ids)[0];
  WriteTestFile(SnapshotPath(*store_, chain) / "a", "a");
  WriteTestFile(SnapshotPath(*store_, chain) / "fs" / "a", "a");
  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  ASSERT_EQ(lower.size(), 1u);
  for (const char* f : {"a", "b", "c"}) EXPECT_TRUE(fs::exists(lower[0] / f)) << f;
  EXPECT_OK(FindSnapshot(*store_, chain));
  EXPECT_EQ(SnapshotNames(), std::vector<std::string>{chain.hex()});  // no trash left
}

TEST_F(SnapshotsStoreTest, FindSnapshotTellsMissingFromIncomplete) {
  Digest chain = Digest::Of("x");
  EXPECT_EQ(FindSnapshot(*store_, chain).error().code(), ErrorCode::kNotFound);
  WriteTestFile(SnapshotPath(*store_, chain) / "fs" / "f", "x");
  EXPECT_EQ(FindSnapshot(*store_, chain).error().code(), ErrorCode::kDataLoss);
  // A marker for another chain is no proof either.
  WriteTestFile(SnapshotPath(*store_, chain) / "snapshot.json",
                R"({"version":1,"chainID":")" + Digest::Of("y").ToString() + R"("})");
  auto r = FindSnapshot(*store_, chain);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(chain.ToString()));
}

TEST_F(SnapshotsStoreTest, AdoptMovesTheDirectoryIntoPlaceWithProof) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  Digest chain = ChainIds(image.config.diff_ids)[0];
  WriteTestFile(store_->SnapshotsDir() / ".run-x" / "upper" / "f", "1");
  ASSERT_OK_AND_ASSIGN(auto lower,
                       AdoptSnapshot(*store_, store_->SnapshotsDir() / ".run-x/upper", chain,
                                     image.manifest.layers[0], image.config.diff_ids[0]));
  EXPECT_EQ(lower, SnapshotLowerDir(*store_, chain));
  EXPECT_TRUE(fs::exists(lower / "f"));
  EXPECT_FALSE(fs::exists(store_->SnapshotsDir() / ".run-x/upper"));
  ASSERT_OK_AND_ASSIGN(auto marker, ReadFile(SnapshotPath(*store_, chain) / "snapshot.json"));
  EXPECT_THAT(marker, ::testing::HasSubstr(chain.ToString()));
  EXPECT_THAT(marker, ::testing::HasSubstr(image.manifest.layers[0].digest.ToString()));
  // A second adoption of the same chain keeps the first; the new dir stays
  // with its owner.
  WriteTestFile(store_->SnapshotsDir() / ".copy-y" / "fs" / "other", "2");
  ASSERT_OK_AND_ASSIGN(auto again,
                       AdoptSnapshot(*store_, store_->SnapshotsDir() / ".copy-y/fs", chain,
                                     image.manifest.layers[0], image.config.diff_ids[0]));
  EXPECT_EQ(again, lower);
  EXPECT_FALSE(fs::exists(lower / "other"));
  EXPECT_TRUE(fs::exists(store_->SnapshotsDir() / ".copy-y/fs/other"));
}

TEST_F(SnapshotsStoreTest, AdoptReplacesAnIncompleteSnapshot) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  Digest chain = ChainIds(image.config.diff_ids)[0];
  WriteTestFile(SnapshotPath(*store_, chain) / "fs" / "partial", "p");
  WriteTestFile(Dir("up/f"), "1");
  ASSERT_OK_AND_ASSIGN(
      auto lower,
      AdoptSnapshot(*store_, Dir("up"), chain, image.manifest.layers[0], image.config.diff_ids[0]));
  EXPECT_TRUE(fs::exists(lower / "f"));
  EXPECT_FALSE(fs::exists(lower / "partial"));
}

TEST_F(SnapshotsStoreTest, SweepKeepsOnlyCompleteKeptSnapshotsAndRemovesLeftovers) {
  WriteTestFile(Dir("l1/f"), "1");
  WriteTestFile(Dir("l2/g"), "2");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2")}));
  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  auto chain = ChainIds(image.config.diff_ids);
  Digest incomplete = Digest::Of("half");
  WriteTestFile(SnapshotPath(*store_, incomplete) / "fs" / "f", "x");
  WriteTestFile(store_->SnapshotsDir() / ".trash-abc" / "fs" / "f", "x");
  WriteTestFile(store_->SnapshotsDir() / ".tmp-abc" / "fs" / "f", "x");
  WriteTestFile(store_->SnapshotsDir() / ".run-abc" / "upper" / "f", "x");
  SnapshotCheck check = CheckSnapshots(*store_);
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_THAT(check.problems[0], ::testing::HasSubstr(incomplete.hex()));
  EXPECT_EQ(check.leftovers.size(), 3u);
  std::unordered_set<std::string> keep = {chain[0].hex(), incomplete.hex()};
  ASSERT_OK_AND_ASSIGN(auto sweep, SweepSnapshots(*store_, &keep));
  EXPECT_EQ(sweep.removed, 2);  // chain[1] (not kept) and the incomplete one
  EXPECT_EQ(sweep.leftovers, 3);
  EXPECT_EQ(SnapshotNames(), std::vector<std::string>{chain[0].hex()});
  EXPECT_TRUE(CheckSnapshots(*store_).problems.empty());
}

// Overwrites byte `at` of a stored (read-only) blob in place.
void CorruptBlob(const fs::path& blob, off_t at) {
  ASSERT_EQ(::chmod(blob.c_str(), 0644), 0);
  int fd = ::open(blob.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, at), 1);
  c = static_cast<char>(c ^ 0x55);
  ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
  ::close(fd);
}

TEST_F(SnapshotsStoreTest, VerifyLayerBlobCatchesCorruptionBehindASnapshot) {
  WriteTestFile(Dir("l1/f"), std::string(100000, 'x'));
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  ASSERT_OK(PrepareLowerDirs(*store_, image, {}));
  const Descriptor& layer = image.manifest.layers[0];
  Digest chain = ChainIds(image.config.diff_ids)[0];
  // A memo is only made once the blob's ctime is older than the coarse
  // file-time clock's tick (see VerifyLayerBlob).
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ASSERT_OK(VerifyLayerBlob(*store_, layer, chain));
  // Memoized next to the snapshot...
  EXPECT_TRUE(fs::exists(SnapshotPath(*store_, chain) / "verified.json"));
  ASSERT_OK(VerifyLayerBlob(*store_, layer, chain));
  // ...but a same-size rewrite of the blob is still caught (its ctime moved).
  CorruptBlob(store_->BlobPath(layer.digest), layer.size / 2);
  auto r = VerifyLayerBlob(*store_, layer, chain);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(layer.digest.ToString()));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("corrupt"));
}

TEST_F(SnapshotsStoreTest, VerifyLayerBlobChecksSizeAndPresence) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  Descriptor layer = image.manifest.layers[0];
  Digest chain = ChainIds(image.config.diff_ids)[0];
  ASSERT_EQ(::truncate(store_->BlobPath(layer.digest).c_str(), layer.size - 1), 0);
  auto r = VerifyLayerBlob(*store_, layer, chain);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(layer.digest.ToString()));
  ASSERT_EQ(::unlink(store_->BlobPath(layer.digest).c_str()), 0);
  EXPECT_EQ(VerifyLayerBlob(*store_, layer, chain).error().code(), ErrorCode::kNotFound);
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
