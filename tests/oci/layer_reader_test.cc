#include "oci/layer_reader.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
using ::strata::oci::testing::CharDevice;
using ::strata::oci::testing::DescribeTree;
using ::strata::oci::testing::Dir;
using ::strata::oci::testing::Fifo;
using ::strata::oci::testing::File;
using ::strata::oci::testing::Hardlink;
using ::strata::oci::testing::MakeRichTree;
using ::strata::oci::testing::MakeTar;
using ::strata::oci::testing::PutLayer;
using ::strata::oci::testing::SetMtime;
using ::strata::oci::testing::StringSource;
using ::strata::oci::testing::Symlink;
using ::strata::oci::testing::TarSpec;
using ::strata::testing::MakeTempDir;
using ::strata::testing::TestData;
using ::strata::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

// A small tmpfs mounted on a fresh directory for the scope; skips the test
// when mounting is not permitted.
class ScopedTmpfs {
 public:
  explicit ScopedTmpfs(fs::path dir, std::string_view size) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    std::string opts = fmt::format("size={}", size);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~ScopedTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  ScopedTmpfs(const ScopedTmpfs&) = delete;
  ScopedTmpfs& operator=(const ScopedTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  uint64_t FreeBytes() const {
    struct statvfs st;
    if (::statvfs(dir_.c_str(), &st) != 0) return 0;
    return uint64_t{st.f_bavail} * st.f_frsize;
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

std::string Repeat(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131) % 251);
  return s;
}

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
  // Applies an in-memory tar (uncompressed) onto `root` (default Root()).
  Result<ApplyResult> ApplySpecs(const std::vector<TarSpec>& specs, const ApplyOptions& opts = {},
                                 const fs::path& root = {}) {
    StringSource src(MakeTar(specs));
    return ApplyTar(&src, Compression::kNone, root.empty() ? Root() : root, opts, "test.tar");
  }
  // Everything under the root's parents and the sandbox, except the root.
  std::string Outside() {
    Root();
    return DescribeTree(Sandbox().parent_path()) + "|" + ListOutsideRoot();
  }
  std::string ListOutsideRoot() {
    std::string out;
    for (auto it = fs::recursive_directory_iterator(Jail());
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->path() == Root()) {
        it.disable_recursion_pending();
        continue;
      }
      out += it->path().string() + "\n";
    }
    return out;
  }
  // A directory outside the root that hostile layers aim at.
  fs::path Sandbox() {
    fs::path p = tmp_.path() / "outside/sandbox";
    if (!fs::exists(p)) {
      WriteTestFile(p / "victim", "precious");
      WriteTestFile(p / "dir/file", "also precious");
      fs::create_symlink("victim", p / "link");
    }
    return p;
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

// Rootless snapshots: overlayfs with userxattr reads user.overlay.opaque,
// so the applier writes that marker when told to, and not the trusted one.
TEST_F(LayerReaderTest, OverlayFormWritesTheOpaqueMarkerItIsGiven) {
  fs::path upper = NewDir("upper");
  WriteTestFile(upper / "opq/new", "n");
  if (::setxattr((upper / "opq").c_str(), "user.overlay.opaque", "y", 1, 0) != 0) {
    GTEST_SKIP() << "no user xattrs here";
  }
  LayerInfo l = Commit(upper, Compression::kGzip, /*overlay_upper=*/true);
  fs::path snap = NewDir("snap");
  ASSERT_OK(ApplyLayer(*store_, l.descriptor, l.diff_id, snap,
                       {.form = ApplyForm::kOverlay, .opaque_xattr = "user.overlay.opaque"}));
  char v[8];
  ASSERT_EQ(::getxattr((snap / "opq").c_str(), "user.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_LT(::getxattr((snap / "opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 0);
  EXPECT_TRUE(fs::exists(snap / "opq/new"));
  EXPECT_FALSE(fs::exists(snap / "opq/.wh..wh..opq"));
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

TEST_F(LayerReaderTest, CreatesMissingDirectoriesWhereASymlinkPointsInsideTheRoot) {
  // As containerd's archive.Apply and moby's pkg/archive do: the parent is
  // resolved inside the root, then created there.
  ASSERT_OK(
      ApplySpecs({Symlink("a", "/b/c"), File("a/file", "through a"), Symlink("up", "../../../x"),
                  File("up/deep/f", "through up"), Symlink("c1", "c2"), Symlink("c2", "/./end/"),
                  File("c1/g", "through a chain")}));
  ASSERT_OK_AND_ASSIGN(std::string f, ReadFile(Root() / "b/c/file"));
  EXPECT_EQ(f, "through a");
  EXPECT_TRUE(fs::is_symlink(Root() / "a"));
  EXPECT_TRUE(fs::is_regular_file(Root() / "x/deep/f"));
  EXPECT_TRUE(fs::is_regular_file(Root() / "end/g"));
  EXPECT_FALSE(fs::exists(Jail() / "x"));
  EXPECT_FALSE(fs::exists(Jail() / "a/x"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "x"));
  EXPECT_FALSE(fs::exists("/b/c/file"));
  // Created directories belong to the layer: an opaque marker keeps them.
  ASSERT_OK(ApplySpecs({Symlink("l", "/new/dir"), File("l/f", "x"), File("new/.wh..wh..opq")}));
  EXPECT_TRUE(fs::is_regular_file(Root() / "new/dir/f"));
}

TEST_F(LayerReaderTest, SymlinkLoopsAreAnError) {
  auto r = ApplySpecs({Symlink("loop", "loop2"), Symlink("loop2", "/loop"), File("loop/f", "x")});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("entry \"loop/f\""));
  EXPECT_THAT(r.error().message(), HasSubstr("symbolic links"));
}

TEST_F(LayerReaderTest, AbsoluteHardlinkTargetsAreInsideTheRoot) {
  ASSERT_OK(
      ApplySpecs({Dir("etc/", 0755), File("etc/passwd", "root:x:0:0"), Hardlink("h", "/etc/passwd"),
                  Symlink("l", "/etc"), Hardlink("h2", "l/passwd")}));
  struct stat a, b, c;
  ASSERT_EQ(::lstat((Root() / "etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(::lstat((Root() / "h").c_str(), &b), 0);
  ASSERT_EQ(::lstat((Root() / "h2").c_str(), &c), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_ino, c.st_ino);
  EXPECT_EQ(a.st_nlink, 3u);
  // A lower layer's file is a valid target too (as in containerd and moby).
  ASSERT_OK(ApplySpecs({Hardlink("h3", "/etc/passwd")}));
  ASSERT_EQ(::lstat((Root() / "h3").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(LayerReaderTest, HardlinkToADirectoryOrAMissingPathNamesTheEntryAndLayer) {
  fs::path sandbox = Sandbox();
  const std::string before = Outside();
  struct Case {
    std::vector<TarSpec> specs;
    std::string why;
  };
  const Case cases[] = {
      {{Dir("d/"), Hardlink("h", "d")}, "is a directory"},
      {{Hardlink("h", "/nowhere")}, "does not exist"},
      // The host path of a real file means that path inside the root.
      {{Hardlink("h", (sandbox / "victim").string())}, "does not exist"},
      {{Symlink("l", sandbox.string()), Hardlink("h", "l/victim")}, "does not exist"},
  };
  for (const auto& c : cases) {
    fs::path root = tmp_.path() / "roots" / std::to_string(&c - cases);
    fs::create_directories(root);
    auto r = ApplySpecs(c.specs, {}, root);
    ASSERT_FALSE(r.has_value()) << c.why;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(r.error().message(), HasSubstr("layer test.tar: entry \"h\""));
    EXPECT_THAT(r.error().message(), HasSubstr(c.why));
    EXPECT_TRUE(fs::is_empty(root)) << "rolled back";
  }
  EXPECT_EQ(Outside(), before);
}

TEST_F(LayerReaderTest, HardlinksToDevicesFollowTheDeviceRules) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod";
  fs::path root = Root();
  ASSERT_EQ(::mknod((root / "null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
  auto r = ApplySpecs({Hardlink("n", "/null")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(r.error().message(), HasSubstr("entry \"n\""));
  EXPECT_FALSE(fs::exists(root / "n"));
  ASSERT_OK(ApplySpecs({Hardlink("n", "/null")}, {.allow_devices = true}));
  // In overlay form a link to a whiteout would be a second whiteout.
  fs::path snap = NewDir("snap");
  r = ApplySpecs({File(".wh.gone"), Hardlink("also-gone", "gone")},
                 {.form = ApplyForm::kOverlay, .allow_devices = true}, snap);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("overlay whiteout"));
  EXPECT_TRUE(fs::is_empty(snap));
}

TEST_F(LayerReaderTest, SkipDevicesLeavesDeviceEntriesOutAndKeepsTheRest) {
  fs::path snap = NewDir("snap");
  ASSERT_OK(ApplySpecs({Dir("dev/"), CharDevice("dev/null"), File("dev/keep", "k")},
                       {.form = ApplyForm::kOverlay, .skip_devices = true}, snap));
  EXPECT_FALSE(fs::exists(fs::symlink_status(snap / "dev/null")));
  EXPECT_TRUE(fs::exists(snap / "dev/keep"));
  // Without it, and without allow_devices, a device is refused by name.
  fs::path other = NewDir("other");
  auto r = ApplySpecs({CharDevice("null")}, {.form = ApplyForm::kOverlay}, other);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(r.error().message(), HasSubstr("entry \"null\""));
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

TEST_F(LayerReaderTest, SizeLimitErrorNamesTheLimitTheLayerAndHowToRaiseIt) {
  fs::path src = NewDir("src");
  WriteTestFile(src / "zeros", std::string(4 << 20, '\0'));
  LayerInfo info = Commit(src);
  fs::path dst = NewDir("dst");
  auto r = ApplyLayer(*store_, info.descriptor, info.diff_id, dst,
                      {.max_uncompressed_bytes = uint64_t{1} << 20});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("layer " + info.descriptor.digest.ToString()));
  EXPECT_THAT(r.error().message(), HasSubstr("1 MiB"));
  EXPECT_THAT(r.error().message(), HasSubstr("--max-layer-size"));
  EXPECT_THAT(r.error().message(), HasSubstr("STRATA_MAX_LAYER_SIZE"));
  EXPECT_THAT(r.error().message(), Not(HasSubstr("corrupt")));
  EXPECT_TRUE(fs::is_empty(dst));
}

TEST(ByteSizeTest, ParsesBinarySuffixes) {
  struct Case {
    std::string_view text;
    uint64_t want;
  };
  for (const Case& c : std::initializer_list<Case>{{"4096", 4096},
                                                   {"1b", 1},
                                                   {"10k", 10240},
                                                   {"10K", 10240},
                                                   {"10KB", 10240},
                                                   {"10KiB", 10240},
                                                   {"512M", uint64_t{512} << 20},
                                                   {"512mi", uint64_t{512} << 20},
                                                   {"64G", uint64_t{64} << 30},
                                                   {"64GiB", uint64_t{64} << 30},
                                                   {"1t", uint64_t{1} << 40},
                                                   {"2Ti", uint64_t{2} << 40}}) {
    auto v = ParseByteSize(c.text);
    ASSERT_TRUE(v.has_value()) << c.text;
    EXPECT_EQ(*v, c.want) << c.text;
  }
  for (std::string_view bad : {"", "G", "1.5G", "-1", "0", "0G", "1x", "1GG", "1 G", "1Gx",
                               "99999999999999999999", "16777216T"}) {
    auto v = ParseByteSize(bad);
    ASSERT_FALSE(v.has_value()) << bad;
    EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(FormatByteSize(uint64_t{64} << 30), "64 GiB");
  EXPECT_EQ(FormatByteSize(1536), "1536 bytes");
  EXPECT_EQ(FormatByteSize(uint64_t{3} << 20), "3 MiB");
}

TEST_F(LayerReaderTest, FailureInAnEmptyDirectoryLeavesItEmpty) {
  // A stream cut short in the middle of the last file's data.
  std::string tar = MakeTar({Dir("d/", 0555), File("d/a", "a"), Symlink("l", "/deep/er"),
                             File("l/b", "b"), File("big", Repeat(100000))});
  tar.resize(tar.size() - 50000);
  StringSource src(tar);
  auto r = ApplyTar(&src, Compression::kNone, Root(), {}, "cut.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("layer cut.tar is corrupt"));
  EXPECT_TRUE(fs::is_empty(Root())) << DescribeTree(Root());
}

TEST_F(LayerReaderTest, FailureOnATreeRemovesWhatTheLayerCreated) {
  fs::path root = Root();
  WriteTestFile(root / "keep", "lower");
  WriteTestFile(root / "d/old", "lower");
  WriteTestFile(root / "replaced", "lower");
  const std::string lower = DescribeTree(root);
  std::string tar = MakeTar({File("d/new", "new"), File("fresh/x", "x"), File("replaced", "upper"),
                             File("d/big", Repeat(100000))});
  tar.resize(tar.size() - 50000);
  StringSource src(tar);
  auto r = ApplyTar(&src, Compression::kNone, root, {}, "cut.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(fs::exists(root / "d/new"));
  EXPECT_FALSE(fs::exists(root / "fresh"));
  EXPECT_FALSE(fs::exists(root / "d/big"));
  // What the layer replaced is gone with it (documented); the rest is as before.
  EXPECT_FALSE(fs::exists(root / "replaced"));
  fs::path expected = NewDir("expected");
  WriteTestFile(expected / "keep", "lower");
  WriteTestFile(expected / "d/old", "lower");
  EXPECT_EQ(DescribeTree(root, false), DescribeTree(expected, false));
}

TEST_F(LayerReaderTest, NoSpaceLeftRemovesThePartialFile) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  ScopedTmpfs small(tmp_.path() / "small", "1m");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << small.error();
  const uint64_t free_before = small.FreeBytes();
  std::vector<TarSpec> specs = {File("a", Repeat(100000)), File("dir/b", Repeat(100000)),
                                File("huge", Repeat(2 << 20))};
  fs::path fresh = tmp_.path() / "small/fresh";
  fs::create_directories(fresh);
  auto r = ApplySpecs(specs, {}, fresh);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr("No space left"));
  EXPECT_THAT(r.error().message(), HasSubstr("entry \"huge\""));
  EXPECT_TRUE(fs::is_empty(fresh)) << DescribeTree(fresh);
  EXPECT_GE(small.FreeBytes() + 8192, free_before);

  // Onto an existing tree: the lower file stays, the layer's files go.
  fs::path tree = tmp_.path() / "small/tree";
  WriteTestFile(tree / "lower", "lower");
  r = ApplySpecs(specs, {}, tree);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(fs::exists(tree / "lower"));
  EXPECT_FALSE(fs::exists(tree / "a"));
  EXPECT_FALSE(fs::exists(tree / "dir"));
  EXPECT_FALSE(fs::exists(tree / "huge"));
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
  fs::path dst = NewDir("dst");
  auto r = ApplyLayer(*store_, info.descriptor, {}, dst, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(
      r.error().message(),
      HasSubstr(fmt::format("layer {} is corrupt: digest mismatch: expected {}, got sha256:",
                            info.descriptor.digest, info.descriptor.digest)));
  // Found only at the end of the stream: the applied entries are removed.
  EXPECT_TRUE(fs::is_empty(dst));
}

TEST_F(LayerReaderTest, AFlippedByteNamesTheCorruptBlob) {
  std::vector<TarSpec> specs;
  for (int i = 0; i < 8; ++i) {
    specs.push_back(Dir(fmt::format("dir{}/", i), 0755));
    specs.push_back(File(fmt::format("dir{}/file", i), Repeat(3000 + i)));
  }
  for (bool gzip : {true, false}) {
    const std::string good = MakeTar(specs, gzip);
    // Bytes spread over the blob (headers, data, padding, the gzip header
    // and trailer), each time in a blob of its own.
    std::vector<size_t> positions = {0,
                                     1,
                                     3,
                                     10,
                                     100,
                                     148,
                                     156,
                                     345,
                                     512,
                                     600,
                                     1024,
                                     good.size() - 8,
                                     good.size() - 4,
                                     good.size() - 1};
    for (size_t pos = 2048; pos < good.size(); pos += good.size() / 23) positions.push_back(pos);
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    for (size_t pos : positions) {
      if (pos >= good.size()) continue;
      std::string bad = good;
      bad[pos] = static_cast<char>(bad[pos] ^ 0x20);
      Descriptor d = PutLayer(*store_, bad, gzip);
      // The store holds the bad bytes under the good bytes' name.
      Descriptor lying = d;
      lying.digest = Digest::Of(good);
      fs::path blob = store_->BlobPath(lying.digest);
      fs::remove(blob);
      fs::copy_file(store_->BlobPath(d.digest), blob);
      fs::path dst = NewDir(fmt::format("dst-{}-{}", gzip, pos));
      auto r = ApplyLayer(*store_, lying, {}, dst, {});
      ASSERT_FALSE(r.has_value()) << pos;
      const std::string& m = r.error().message();
      EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << m;
      EXPECT_THAT(m,
                  HasSubstr(fmt::format("layer {} is corrupt: digest mismatch: expected {}, got {}",
                                        lying.digest, lying.digest, d.digest)))
          << "byte " << pos << (gzip ? " of the gzip blob" : " of the tar");
      EXPECT_THAT(m, Not(HasSubstr("without a name")));
      EXPECT_TRUE(fs::is_empty(dst)) << pos;
      fs::remove(blob);
    }
  }
}

TEST_F(LayerReaderTest, AMalformedTarUnderItsRightDigestIsCorruptWithItsReason) {
  std::string tar = MakeTar({File("a", "a"), File("b", "b")});
  tar[1024 + 148] ^= 0x11;  // the second header's checksum field
  Descriptor d = PutLayer(*store_, tar, /*gzip=*/false);
  fs::path dst = NewDir("dst");
  auto r = ApplyLayer(*store_, d, {}, dst, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr(fmt::format("layer {} is corrupt: ", d.digest)));
  EXPECT_THAT(r.error().message(), Not(HasSubstr("digest mismatch")));
  EXPECT_THAT(r.error().message(), Not(HasSubstr("without a name")));
  EXPECT_TRUE(fs::is_empty(dst));
}

TEST_F(LayerReaderTest, NotATarIsInvalidArgument) {
  StringSource src(std::string(2048, 'j'));
  auto r = ApplyTar(&src, Compression::kNone, Root(), {}, "junk");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

// Layers that try to reach outside the root through symlinks of their own:
// whatever each one does inside the root, the sandbox outside it (and the
// directories around the root) must stay byte for byte as they were.
TEST_F(LayerReaderTest, HostileLayersChangeNothingOutsideTheRoot) {
  const std::string sb = Sandbox().string();
  const std::string before = Outside();
  const std::string victim = sb + "/victim";
  const std::vector<std::pair<std::string, std::vector<TarSpec>>> layers = {
      {"symlink to / then entries through it",
       {Symlink("r", "/"), File("r" + sb + "/victim", "overwritten"), Dir("r" + sb + "/dir/", 0777),
        File("r" + sb + "/new", "new")}},
      {"symlink to the sandbox then entries through it",
       {Symlink("s", sb), File("s/victim", "overwritten"), Dir("s/dir/", 0700).WithMtime(1),
        File("s/dir/file", "overwritten"), Symlink("s/link", "/etc/shadow"), Fifo("s/fifo"),
        Hardlink("s/hard", "s/victim")}},
      {"../ chains",
       {Symlink("u", "../../../../../../../../.." + sb), File("u/victim", "overwritten"),
        Symlink("v", "u/../../../../../../../../../" + sb + "/dir"),
        File("v/file", "overwritten")}},
      {"a symlink chain",
       {Symlink("c1", "c2"), Symlink("c2", "c3/."), Symlink("c3", sb),
        File("c1/victim", "overwritten"), File("c1/dir/file", "overwritten")}},
      {"a symlink replaced by a later entry of the same layer",
       {Symlink("x", victim), File("x", "replaces the symlink, never writes through it", 0777),
        Dir("y/"), Symlink("y", sb), File("y/victim", "overwritten"), Symlink("z", sb + "/dir"),
        Dir("z/", 0777)}},
      {"whiteouts through a symlink",
       {Symlink("w", sb), File("w/.wh.victim"), File("w/.wh.dir"), File("w/dir/.wh..wh..opq"),
        Symlink("wv", victim), File(".wh.wv")}},
      {"chmod, xattrs and times on symlink entries",
       {Symlink("m", victim).WithMode(0777).WithMtime(1),
        Symlink("m2", sb + "/dir")
            .WithMode(0777)
            .WithXattr("trusted.evil", "1")
            .WithXattr("security.evil", "1"),
        Symlink("m3", victim).WithXattr("user.evil", "1")}},
      {"hardlinks to host paths", {Hardlink("h1", victim)}},
      {"hardlinks through a symlink", {Symlink("hs", sb), Hardlink("h2", "hs/victim")}},
  };
  for (ApplyForm form : {ApplyForm::kFlattened, ApplyForm::kOverlay}) {
    for (const auto& [what, specs] : layers) {
      // A lower layer in place: the same symlinks, so later entries meet them.
      fs::path root = Root();
      fs::remove_all(root);
      fs::create_directories(root);
      fs::create_symlink(sb, root / "lower-link");
      std::vector<TarSpec> with_lower = specs;
      with_lower.push_back(File("lower-link/victim", "overwritten"));
      with_lower.push_back(File("lower-link/.wh.dir"));
      auto r = ApplySpecs(with_lower, {.form = form});
      // Some are refused (a hardlink to a host path does not exist in the
      // root, user.* xattrs do not go on symlinks); none may escape.
      EXPECT_EQ(Outside(), before) << what << (r ? "" : ": " + r.error().message());
      EXPECT_FALSE(fs::exists("/etc/overwritten"));
    }
  }
}

TEST_F(LayerReaderTest, DirectoryMetadataIsNotAppliedThroughALaterSymlink) {
  fs::path root = Root();
  fs::create_directories(root / "other/sub");
  ::chmod((root / "other/sub").c_str(), 0755);
  SetMtime(root / "other/sub", 1600000000);
  // "d/sub" gets mode 0700, then "d" becomes a symlink to "other": the mode
  // is for the directory the layer wrote, not for other/sub.
  ASSERT_OK(ApplySpecs({Dir("d/", 0755), Dir("d/sub/", 0700).WithMtime(1), Symlink("d", "other")}));
  struct stat st;
  ASSERT_EQ(::stat((root / "other/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
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
