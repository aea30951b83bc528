// Integration tests of the layer pipeline against real components: umoci
// (a real OCI client) unpacks an image strata imported, and the kernel's
// overlayfs mounts a chain of strata snapshots.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/import.h"
#include "oci/reference.h"
#include "oci/snapshots.h"
#include "oci/unpack.h"
#include "oci/util/file_util.h"
#include "tests/oci/layer_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::oci::testing::DescribeTree;
using ::strata::oci::testing::MakeImage;
using ::strata::oci::testing::MakeRichTree;
using ::strata::testing::HaveTool;
using ::strata::testing::MakeTempDir;
using ::strata::testing::RunCommand;
using ::strata::testing::WriteTestFile;

// Unmounts (lazily) on scope exit.
class ScopedMount {
 public:
  explicit ScopedMount(fs::path target) : target_(std::move(target)) {}
  ~ScopedMount() { ::umount2(target_.c_str(), MNT_DETACH); }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;

 private:
  fs::path target_;
};

class LayerIntegrationTest : public ::testing::Test {
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

TEST_F(LayerIntegrationTest, UmociUnpacksAnImportedImage) {
  if (!HaveTool("umoci")) GTEST_SKIP() << "umoci not installed";
  fs::path rootfs = Dir("rootfs");
  auto mk = RunCommand(
      fmt::format("{}/tools/make-busybox-rootfs.sh {}", STRATA_SOURCE_DIR, rootfs.string()));
  if (mk.exit_code != 0) {
    // No busybox-static here: a synthetic tree exercises the same paths.
    fs::remove_all(rootfs);
  }
  MakeRichTree(rootfs / "rich");  // every entry type, xattrs, owners, long names
  // gzip only: umoci 0.4 refuses tar+zstd layers ("blob is not correct
  // mediatype"); strata's zstd path is covered by the unit round trips.
  for (Compression c : {Compression::kGzip, Compression::kNone}) {
    ImportOptions opts;
    opts.layer.compress.compression = c;
    opts.created = 1700000000;
    ASSERT_OK_AND_ASSIGN(ImportResult r, ImportRootfs(*store_, rootfs, opts));
    std::string tag = std::string("imported-") + std::string(CompressionName(c));
    ASSERT_OK_AND_ASSIGN(Reference ref, Reference::Parse(tag + ":latest"));
    ASSERT_OK(store_->Tag(ref, r.manifest));
    fs::path bundle = Dir(tag + "-bundle");
    auto u = RunCommand(fmt::format("umoci unpack --image {}:{} {}", store_->root().string(),
                                    RefNameAnnotation(ref), bundle.string()));
    ASSERT_EQ(u.exit_code, 0) << u.output;
    EXPECT_EQ(DescribeTree(bundle / "rootfs"), DescribeTree(rootfs)) << CompressionName(c);
    ASSERT_OK_AND_ASSIGN(std::string config, ReadFile(bundle / "config.json"));
    EXPECT_THAT(config, ::testing::HasSubstr("PATH=/usr/local/sbin"));
  }
}

TEST_F(LayerIntegrationTest, OverlayMountOfThreeLayerChainWithDeletions) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount overlayfs";
  // Layer 1: a base. Layer 2: overwrites one file, deletes another, deletes a
  // directory. Layer 3: makes /var/cache opaque with new content, adds a file.
  WriteTestFile(Dir("l1/etc/keep"), "keep");
  WriteTestFile(Dir("l1/etc/changed"), "v1");
  WriteTestFile(Dir("l1/etc/deleted"), "bye");
  WriteTestFile(Dir("l1/opt/tool/bin"), "tool");
  WriteTestFile(Dir("l1/var/cache/old1"), "o");
  WriteTestFile(Dir("l1/var/cache/sub/old2"), "o");
  WriteTestFile(Dir("l2/etc/changed"), "v2");
  ASSERT_EQ(::mknod(Dir("l2/etc/deleted").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  ASSERT_EQ(::mknod(Dir("l2/opt").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  WriteTestFile(Dir("l3/var/cache/new"), "n");
  ASSERT_EQ(::setxattr(Dir("l3/var/cache").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  WriteTestFile(Dir("l3/top"), "top");
  ASSERT_OK_AND_ASSIGN(
      Image image, MakeImage(*store_, {Dir("l1"), Dir("l2"), Dir("l3")}, /*overlay_upper=*/true));

  ASSERT_OK_AND_ASSIGN(auto lower, PrepareLowerDirs(*store_, image, {}));
  ASSERT_EQ(lower.size(), 3u);
  fs::create_directories(Dir("upper"));
  fs::create_directories(Dir("work"));
  fs::create_directories(Dir("merged"));
  std::string data = fmt::format("lowerdir={},upperdir={},workdir={}", LowerDirOption(lower),
                                 Dir("upper").string(), Dir("work").string());
  ASSERT_EQ(::mount("overlay", Dir("merged").c_str(), "overlay", 0, data.c_str()), 0)
      << strerror(errno) << " " << data;
  ScopedMount mounted(Dir("merged"));
  fs::path m = Dir("merged");
  EXPECT_EQ(*ReadFile(m / "etc/keep"), "keep");
  EXPECT_EQ(*ReadFile(m / "etc/changed"), "v2");
  EXPECT_FALSE(fs::exists(m / "etc/deleted"));
  EXPECT_FALSE(fs::exists(m / "opt"));
  EXPECT_TRUE(fs::exists(m / "var/cache/new"));
  EXPECT_FALSE(fs::exists(m / "var/cache/old1"));
  EXPECT_FALSE(fs::exists(m / "var/cache/sub"));
  EXPECT_EQ(*ReadFile(m / "top"), "top");

  // The merged view equals the flattened unpack of the same image.
  ASSERT_OK(UnpackImage(*store_, image, Dir("flat"), {}));
  EXPECT_EQ(DescribeTree(m), DescribeTree(Dir("flat")));
}

}  // namespace
}  // namespace strata::oci
