#include "oci/unpack.h"

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

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }
  fs::path Dir(std::string_view name) { return tmp_.path() / name; }
  ScopedTempDir tmp_ = MakeTempDir();
  std::unique_ptr<Store> store_;
};

TEST_F(UnpackTest, RefusesANonEmptyTarget) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  WriteTestFile(Dir("target/existing"), "x");
  auto s = UnpackImage(*store_, image, Dir("target"), {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(Dir("target/f")));
  WriteTestFile(Dir("file-target"), "x");
  s = UnpackImage(*store_, image, Dir("file-target"), {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(UnpackTest, CreatesTheTargetOrUsesAnEmptyOne) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  ASSERT_OK(UnpackImage(*store_, image, Dir("new/deep"), {}));
  EXPECT_TRUE(fs::exists(Dir("new/deep/f")));
  fs::create_directories(Dir("empty"));
  ASSERT_OK(UnpackImage(*store_, image, Dir("empty"), {}));
  EXPECT_TRUE(fs::exists(Dir("empty/f")));
}

TEST_F(UnpackTest, FlattensLayersAndResolvesWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make overlay upper dirs";
  WriteTestFile(Dir("l1/etc/a"), "a1");
  WriteTestFile(Dir("l1/etc/b"), "b1");
  WriteTestFile(Dir("l1/var/cache/x"), "x");
  WriteTestFile(Dir("l2/etc/a"), "a2");                                      // overwrite
  ASSERT_EQ(::mknod(Dir("l2/etc/b").c_str(), S_IFCHR, ::makedev(0, 0)), 0);  // delete
  WriteTestFile(Dir("l3/var/cache/y"), "y");
  ASSERT_EQ(::setxattr(Dir("l3/var/cache").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2"), Dir("l3")}, true));
  ASSERT_OK(UnpackImage(*store_, image, Dir("out"), {}));
  ASSERT_OK_AND_ASSIGN(std::string a, ReadFile(Dir("out/etc/a")));
  EXPECT_EQ(a, "a2");
  EXPECT_FALSE(fs::exists(fs::symlink_status(Dir("out/etc/b"))));
  EXPECT_FALSE(fs::exists(Dir("out/var/cache/x")));
  EXPECT_TRUE(fs::exists(Dir("out/var/cache/y")));
  for (auto it = fs::recursive_directory_iterator(Dir("out"));
       it != fs::recursive_directory_iterator(); ++it) {
    EXPECT_FALSE(it->path().filename().string().starts_with(".wh.")) << it->path();
  }
}

TEST_F(UnpackTest, ErrorsNameTheImageAndLayer) {
  WriteTestFile(Dir("l1/f"), "1");
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1")}));
  image.config.diff_ids[0] = Digest::Of("wrong");
  auto s = UnpackImage(*store_, image, Dir("out"), {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(s.error().message(), ::testing::HasSubstr("layer 1/1"));
  EXPECT_THAT(s.error().message(),
              ::testing::HasSubstr(image.manifest.layers[0].digest.ToString()));
}

TEST_F(UnpackTest, AFailedLayerLeavesTheTargetAsItWas) {
  WriteTestFile(Dir("l1/base"), "1");
  WriteTestFile(Dir("l2/top"), std::string(100000, 't'));
  ASSERT_OK_AND_ASSIGN(Image image, MakeImage(*store_, {Dir("l1"), Dir("l2")}));
  // Flip a byte of the second layer's blob.
  fs::path blob = store_->BlobPath(image.manifest.layers[1].digest);
  ASSERT_EQ(::chmod(blob.c_str(), 0644), 0);
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(blob));
  bytes[bytes.size() / 2] ^= 0x55;
  ASSERT_OK(WriteFileAtomic(blob, bytes));

  auto s = UnpackImage(*store_, image, Dir("new/out"), {});
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().message(), ::testing::HasSubstr("layer 2/2"));
  EXPECT_THAT(s.error().message(), ::testing::HasSubstr("is corrupt"));
  EXPECT_FALSE(fs::exists(Dir("new/out"))) << "created by the call, removed on failure";
  EXPECT_TRUE(fs::is_directory(Dir("new")));

  fs::create_directories(Dir("empty"));
  s = UnpackImage(*store_, image, Dir("empty"), {});
  ASSERT_FALSE(s.has_value());
  EXPECT_TRUE(fs::is_directory(Dir("empty")));
  EXPECT_TRUE(fs::is_empty(Dir("empty")));
}

}  // namespace
}  // namespace strata::oci
