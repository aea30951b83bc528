#include "oci/layer_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/layer_writer.h"
#include "oci/util/file_util.h"
#include "tests/oci/layer_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::oci::testing::DescribeTree;
using ::strata::oci::testing::MakeRichTree;
using ::strata::oci::testing::StringSource;
using ::strata::testing::MakeTempDir;
using ::strata::testing::TestData;
using ::strata::testing::WriteTestFile;

class LayerReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }

  LayerInfo Commit(const fs::path& dir, Compression c = Compression::kGzip,
                   bool overlay_upper = false) {
    LayerWriterOptions opts;
    opts.compress.compression = c;
    opts.tar.overlay_upper = overlay_upper;
    auto r = CommitLayer(*store_, dir, opts);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return r.value_or(LayerInfo{});
  }

  fs::path NewDir(std::string_view name) {
    fs::path p = tmp_.path() / name;
    fs::create_directories(p);
    return p;
  }

  // Applies a testdata tarball (compression from its magic) onto a fresh
  // "root" inside a fresh "jail"; returns the result.
  Result<ApplyResult> ApplyTestTar(std::string_view name, const ApplyOptions& opts = {}) {
    auto data = ReadFile(TestData(std::string("layers/") + std::string(name)));
    if (!data) return Unexpected(data.error());
    Compression c = DetectCompression(data->substr(0, 4));
    StringSource src(*data);
    return ApplyTar(&src, c, Root(), opts, name);
  }
  fs::path Jail() { return tmp_.path() / "jail"; }
  fs::path Root() {
    fs::create_directories(Jail() / "a/b/root");
    return Jail() / "a/b/root";
  }

  ScopedTempDir tmp_ = MakeTempDir();
  std::unique_ptr<Store> store_;
};

TEST_F(LayerReaderTest, RoundTripKeepsEveryAttribute) {
  fs::path src = NewDir("src");
  MakeRichTree(src);
  for (Compression c : {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    LayerInfo info = Commit(src, c);
    fs::path dst = NewDir(std::string("dst-") + std::string(CompressionName(c)));
    ApplyOptions opts;
    opts.allow_devices = true;
    ASSERT_OK_AND_ASSIGN(ApplyResult r,
                         ApplyLayer(*store_, info.descriptor, info.diff_id, dst, opts));
    EXPECT_EQ(r.diff_id, info.diff_id);
    EXPECT_EQ(DescribeTree(dst), DescribeTree(src)) << CompressionName(c);
  }
}

TEST_F(LayerReaderTest, FlattenedFormAppliesWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make an overlay upper dir";
  fs::path lower = NewDir("lower");
  WriteTestFile(lower / "gone", "g");
  WriteTestFile(lower / "stay", "s");
  WriteTestFile(lower / "opq/old", "o");
  WriteTestFile(lower / "opq/sub/older", "o");
  fs::path upper = NewDir("upper");
  ASSERT_EQ(::mknod((upper / "gone").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  WriteTestFile(upper / "opq/new", "n");
  ASSERT_EQ(::setxattr((upper / "opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  LayerInfo l1 = Commit(lower);
  LayerInfo l2 = Commit(upper, Compression::kGzip, /*overlay_upper=*/true);

  fs::path dst = NewDir("flat");
  ASSERT_OK(ApplyLayer(*store_, l1.descriptor, l1.diff_id, dst, {}));
  ASSERT_OK(ApplyLayer(*store_, l2.descriptor, l2.diff_id, dst, {}));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dst / "gone")));
  EXPECT_TRUE(fs::exists(dst / "stay"));
  EXPECT_FALSE(fs::exists(dst / "opq/old"));
  EXPECT_FALSE(fs::exists(dst / "opq/sub"));
  EXPECT_TRUE(fs::exists(dst / "opq/new"));
  EXPECT_FALSE(fs::exists(dst / ".wh.gone"));
  EXPECT_FALSE(fs::exists(dst / "opq/.wh..wh..opq"));
  char v[8];
  EXPECT_LT(::getxattr((dst / "opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 0);
}

TEST_F(LayerReaderTest, OverlayFormWritesOverlayWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod and trusted.* xattrs";
  fs::path upper = NewDir("upper");
  ASSERT_EQ(::mknod((upper / "gone").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  WriteTestFile(upper / "opq/new", "n");
  ASSERT_EQ(::setxattr((upper / "opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  LayerInfo l = Commit(upper, Compression::kZstd, /*overlay_upper=*/true);
  fs::path snap = NewDir("snap");
  ASSERT_OK(ApplyLayer(*store_, l.descriptor, l.diff_id, snap, {.form = ApplyForm::kOverlay}));
  struct stat st;
  ASSERT_EQ(::lstat((snap / "gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(0, 0));
  char v[8];
  ASSERT_EQ(::getxattr((snap / "opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_TRUE(fs::exists(snap / "opq/new"));
  EXPECT_FALSE(fs::exists(snap / ".wh.gone"));
  EXPECT_FALSE(fs::exists(snap / "opq/.wh..wh..opq"));
  // Written back from the snapshot, the layer is the same layer.
  LayerInfo again = Commit(snap, Compression::kZstd, /*overlay_upper=*/true);
  EXPECT_EQ(again.diff_id, l.diff_id);
}

TEST_F(LayerReaderTest, WhiteoutsOnlyHideLowerLayers) {
  fs::path root = Root();
  WriteTestFile(root / "d/old", "lower");
  WriteTestFile(root / "gone", "lower");
  ASSERT_OK(ApplyTestTar("same_layer_whiteout.tar"));
  ASSERT_OK_AND_ASSIGN(std::string keep, ReadFile(root / "keep"));
  EXPECT_EQ(keep, "this layer");
  EXPECT_TRUE(fs::exists(root / "d/new"));
  EXPECT_FALSE(fs::exists(root / "d/old"));
  EXPECT_FALSE(fs::exists(root / "gone"));
}

TEST_F(LayerReaderTest, RefusesDotDotPaths) {
  for (auto name : {"dotdot.tar", "dotdot_nested.tar"}) {
    auto r = ApplyTestTar(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(r.error().message(), ::testing::HasSubstr(".."));
  }
  EXPECT_FALSE(fs::exists(Jail() / "a/b/escaped-dotdot"));
  EXPECT_FALSE(fs::exists(Jail() / "a/escaped-nested"));
  EXPECT_FALSE(fs::exists(Jail() / "a/b/escaped-nested"));
}

TEST_F(LayerReaderTest, RefusesAbsolutePathsAndNamesLayerAndEntry) {
  auto r = ApplyTestTar("absolute.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("layer absolute.tar"));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("entry \"/escaped-absolute\""));
  EXPECT_FALSE(fs::exists("/escaped-absolute"));
}

TEST_F(LayerReaderTest, SymlinkedParentsResolveInsideTheRoot) {
  ASSERT_OK(ApplyTestTar("symlink_parent.tar"));
  EXPECT_FALSE(fs::exists(Jail() / "escaped-symlink"));
  EXPECT_FALSE(fs::exists(Jail() / "a/escaped-symlink"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "escaped-symlink"));
  // "up" -> ../../.. is clamped at the root, as a chroot would.
  EXPECT_TRUE(fs::is_regular_file(Root() / "escaped-symlink"));

  ASSERT_OK(ApplyTestTar("symlink_abs_parent.tar"));
  EXPECT_FALSE(fs::exists("/escaped-abs-symlink"));
  EXPECT_TRUE(fs::is_regular_file(Root() / "escaped-abs-symlink"));
}

TEST_F(LayerReaderTest, RefusesHardlinksOutsideOrNotYetExtracted) {
  for (auto name : {"hardlink_outside.tar", "hardlink_unseen.tar"}) {
    auto r = ApplyTestTar(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
    EXPECT_THAT(r.error().message(), ::testing::HasSubstr("entry \"h\""));
  }
  EXPECT_FALSE(fs::exists(Root() / "h"));
}

TEST_F(LayerReaderTest, DevicesOnlyWhenAllowed) {
  auto r = ApplyTestTar("device.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("dev/null"));
  EXPECT_FALSE(fs::exists(Root() / "dev/null"));
  if (::geteuid() != 0) return;
  ASSERT_OK(ApplyTestTar("device.tar", {.allow_devices = true}));
  struct stat st;
  ASSERT_EQ(::lstat((Root() / "dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(1, 3));
}

TEST_F(LayerReaderTest, DecompressionBombStopsAtTheLimit) {
  auto r = ApplyTestTar("bomb.tar.gz", {.max_uncompressed_bytes = 1 << 20});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("limit of 1048576 bytes"));
  // With room for it, the same tarball applies.
  ASSERT_OK_AND_ASSIGN(ApplyResult ok, ApplyTestTar("bomb.tar.gz"));
  EXPECT_EQ(fs::file_size(Root() / "zeros"), 8u << 20);
  EXPECT_GT(ok.uncompressed_size, 8u << 20);
}

TEST_F(LayerReaderTest, RefusesWhiteoutsOfDotAndDotDot) {
  WriteTestFile(Jail() / "a/precious", "p");
  for (auto name : {"whiteout_dotdot.tar", "whiteout_dot.tar"}) {
    auto r = ApplyTestTar(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(fs::exists(Jail() / "a/precious"));
  EXPECT_TRUE(fs::exists(Root()));
}

TEST_F(LayerReaderTest, DiffIdMismatchIsDataLoss) {
  fs::path src = NewDir("src");
  WriteTestFile(src / "f", "x");
  LayerInfo info = Commit(src);
  auto r = ApplyLayer(*store_, info.descriptor, Digest::Of("something else"), NewDir("dst"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(info.descriptor.digest.ToString()));
}

TEST_F(LayerReaderTest, CompressionMustMatchTheMagicBytes) {
  fs::path src = NewDir("src");
  WriteTestFile(src / "f", "x");
  LayerInfo info = Commit(src, Compression::kZstd);
  Descriptor lying = info.descriptor;
  lying.media_type = std::string(media_type::kLayerTarGzip);
  auto r = ApplyLayer(*store_, lying, info.diff_id, NewDir("dst"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("declared gzip but the data is zstd"));
}

TEST_F(LayerReaderTest, CorruptBlobIsDataLoss) {
  fs::path src = NewDir("src");
  WriteTestFile(src / "f", std::string(100000, 'x'));
  LayerInfo info = Commit(src, Compression::kNone);
  // Flip a byte in the stored tar (inside the file data: still a valid tar).
  fs::path blob = store_->BlobPath(info.descriptor.digest);
  ::chmod(blob.c_str(), 0644);
  int fd = ::open(blob.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "y", 1, 5000), 1);
  ::close(fd);
  auto r = ApplyLayer(*store_, info.descriptor, {}, NewDir("dst"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
}

TEST_F(LayerReaderTest, NotATarIsInvalidArgument) {
  StringSource src(std::string(2048, 'j'));
  auto r = ApplyTar(&src, Compression::kNone, Root(), {}, "junk");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(LayerReaderTest, ReplacesEntriesOfAnotherType) {
  fs::path root = Root();
  WriteTestFile(root / "was-file/x", "dir now");  // lower: a directory
  WriteTestFile(root / "was-dir", "file");        // lower: a file
  fs::path l2 = NewDir("l2");
  WriteTestFile(l2 / "was-file", "now a file");
  WriteTestFile(l2 / "was-dir/y", "now a dir");
  LayerInfo info = Commit(l2);
  ASSERT_OK(ApplyLayer(*store_, info.descriptor, info.diff_id, root, {}));
  EXPECT_TRUE(fs::is_regular_file(root / "was-file"));
  EXPECT_TRUE(fs::is_regular_file(root / "was-dir/y"));
}

}  // namespace
}  // namespace strata::oci
