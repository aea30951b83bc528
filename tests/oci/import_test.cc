#include "oci/import.h"

#include <unistd.h>

#include "oci/snapshots.h"
#include "oci/unpack.h"
#include "oci/util/file_util.h"
#include "tests/oci/layer_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::oci::testing::DescribeTree;
using ::strata::oci::testing::MakeRichTree;
using ::strata::oci::testing::ReadLayerTar;
using ::strata::testing::MakeTempDir;
using ::strata::testing::RunCommand;
using ::strata::testing::WriteTestFile;

class ImportTest : public ::testing::Test {
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

TEST_F(ImportTest, DirectoryBecomesOneLayerImageWithBaseConfig) {
  WriteTestFile(Dir("rootfs/bin/sh"), "#!", 0755);
  ImportOptions opts;
  opts.created = 1700000000;
  ASSERT_OK_AND_ASSIGN(ImportResult r, ImportRootfs(*store_, Dir("rootfs"), opts));
  EXPECT_EQ(r.manifest.media_type, media_type::kImageManifest);
  ASSERT_OK_AND_ASSIGN(Image image, store_->LoadImage(r.manifest));
  ASSERT_EQ(image.manifest.layers.size(), 1u);
  EXPECT_EQ(image.manifest.layers[0].media_type, media_type::kLayerTarGzip);
  EXPECT_EQ(image.config.os, "linux");
  EXPECT_EQ(image.config.architecture, Platform::Host().architecture);
  EXPECT_EQ(image.config.created, "2023-11-14T22:13:20Z");
  EXPECT_EQ(image.config.config.GetEnv("PATH"),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  ASSERT_EQ(image.config.history.size(), 1u);
  EXPECT_EQ(image.config.history[0].created_by, "strata import");
  ASSERT_EQ(image.config.diff_ids.size(), 1u);
  EXPECT_EQ(image.config.diff_ids[0], r.layer.diff_id);
}

TEST_F(ImportTest, ImportThenUnpackRoundTripsTheTree) {
  MakeRichTree(Dir("rootfs"));
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    ImportOptions opts;
    opts.layer.compress.compression = c;
    ASSERT_OK_AND_ASSIGN(ImportResult r, ImportRootfs(*store_, Dir("rootfs"), opts));
    ASSERT_OK_AND_ASSIGN(Image image, store_->LoadImage(r.manifest));
    fs::path out = Dir(std::string("out-") + std::string(CompressionName(c)));
    ASSERT_OK(UnpackImage(*store_, image, out, {.allow_devices = true}));
    EXPECT_EQ(DescribeTree(out), DescribeTree(Dir("rootfs"))) << CompressionName(c);
  }
}

TEST_F(ImportTest, SourceDateEpochMakesImportsReproducible) {
  WriteTestFile(Dir("a/etc/os-release"), "ID=test\n");
  sleep(1);
  WriteTestFile(Dir("b/etc/os-release"), "ID=test\n");
  ImportOptions opts;
  opts.layer.tar.source_date_epoch = 1000000000;
  opts.created = 1800000000;  // later than the epoch: clamped too
  ASSERT_OK_AND_ASSIGN(ImportResult a, ImportRootfs(*store_, Dir("a"), opts));
  opts.created = 1900000000;
  ASSERT_OK_AND_ASSIGN(ImportResult b, ImportRootfs(*store_, Dir("b"), opts));
  EXPECT_EQ(a.manifest.digest, b.manifest.digest);
  ASSERT_OK_AND_ASSIGN(Image image, store_->LoadImage(a.manifest));
  EXPECT_EQ(image.config.created, "2001-09-09T01:46:40Z");
}

TEST_F(ImportTest, TarballsKeepTheirBytes) {
  WriteTestFile(Dir("src/hello.txt"), "hello");
  ASSERT_EQ(RunCommand(fmt::format("tar -C {} -cf {} . && gzip -k {} && zstd -q {}",
                                   Dir("src").string(), Dir("rootfs.tar").string(),
                                   Dir("rootfs.tar").string(), Dir("rootfs.tar").string()))
                .exit_code,
            0);
  ASSERT_OK_AND_ASSIGN(std::string tar, ReadFile(Dir("rootfs.tar")));
  for (const char* name : {"rootfs.tar", "rootfs.tar.gz", "rootfs.tar.zst"}) {
    ASSERT_OK_AND_ASSIGN(ImportResult r, ImportRootfs(*store_, Dir(name), {}));
    EXPECT_EQ(r.layer.diff_id, Digest::Of(tar)) << name;
    EXPECT_EQ(ReadLayerTar(*store_, r.layer.descriptor), tar) << name;
    ASSERT_OK_AND_ASSIGN(Image image, store_->LoadImage(r.manifest));
    fs::path out = Dir(std::string("out-") + name);
    ASSERT_OK(UnpackImage(*store_, image, out, {}));
    ASSERT_OK_AND_ASSIGN(std::string hello, ReadFile(out / "hello.txt"));
    EXPECT_EQ(hello, "hello");
  }
}

TEST_F(ImportTest, NonTarFileIsInvalidArgument) {
  WriteTestFile(Dir("notes.txt"), std::string(1000, 'n'));
  auto r = ImportRootfs(*store_, Dir("notes.txt"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("not a tar"));
}

TEST_F(ImportTest, MissingSourceIsNotFound) {
  auto r = ImportRootfs(*store_, Dir("nope"), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace strata::oci
