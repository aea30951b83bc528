// Interop of the store and of our archives with real clients: skopeo and
// umoci read the store as an OCI layout; podman loads and runs our
// docker-archive and oci-archive; skopeo and podman write archives that we
// load. Each test skips when its tool is not installed.
#include <regex>

#include "oci/archive.h"
#include "tests/oci/archive_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using strata::testing::HaveTool;
using strata::testing::RunCommand;
using ::testing::HasSubstr;

constexpr char kPodmanRun[] =
    "podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 ";

std::string Quote(const fs::path& p) { return fmt::format("'{}'", p.string()); }

// "Loaded image: X" / "Loaded image(s): X" lines as podman prints them.
std::vector<std::string> LoadedNames(const std::string& output) {
  std::vector<std::string> out;
  std::regex re(R"(Loaded image(?:\(s\))?: *([^\n]+))");
  for (std::sregex_iterator it(output.begin(), output.end(), re), end; it != end; ++it) {
    std::string names = (*it)[1];
    size_t start = 0;
    while (start < names.size()) {
      size_t comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      out.push_back(names.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

class ArchiveIntegrationTest : public ::testing::Test {
 protected:
  // One runnable busybox image shared by the suite: building the rootfs is
  // the slow part.
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir(strata::testing::MakeTempDir());
    fs::path rootfs = dir_->path() / "rootfs";
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                        Quote(rootfs));
    if (r.exit_code != 0) {
      setup_error_ = "make-busybox-rootfs.sh failed: " + r.output;
      return;
    }
    fs::path tar = dir_->path() / "layer.tar";
    r = RunCommand("tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C " +
                   Quote(rootfs) + " -cf " + Quote(tar) + " .");
    if (r.exit_code != 0) {
      setup_error_ = "tar failed: " + r.output;
      return;
    }
    auto bytes = ReadFile(tar);
    auto store = Store::Open(dir_->path() / "store");
    if (!bytes || !store) {
      setup_error_ = "cannot read layer or open store";
      return;
    }
    auto md = testing::AddImage(**store, "hello:latest", {*bytes}, testing::LayerCodec::kGzip,
                                {"/bin/sh"});
    if (!md) {
      setup_error_ = md.error().message();
      return;
    }
    manifest_ = *md;
    store_ = store->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    tmp_ = strata::testing::MakeTempDir();
  }

  void RequireTools(std::initializer_list<const char*> tools) {
    for (const char* t : tools) {
      if (!HaveTool(t)) GTEST_SKIP() << t << " is not installed";
    }
  }

  std::unique_ptr<Store> NewStore(std::string_view name) {
    auto s = Store::Open(tmp_.path() / name);
    EXPECT_TRUE(s.has_value()) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }

  // podman-loads `archive`, runs `/bin/echo hi` in it and removes it again.
  void PodmanLoadAndRun(const fs::path& archive) {
    auto load = RunCommand("podman load -i " + Quote(archive));
    ASSERT_EQ(load.exit_code, 0) << load.output;
    auto names = LoadedNames(load.output);
    ASSERT_FALSE(names.empty()) << load.output;
    const std::string image = names[0];
    auto run = RunCommand(std::string(kPodmanRun) + "'" + image + "' /bin/echo hi");
    RunCommand("podman rmi -f '" + image + "'");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_THAT(run.output, HasSubstr("hi\n"));
  }

  static ScopedTempDir* dir_;
  static Store* store_;
  static Descriptor manifest_;
  static std::string setup_error_;
  ScopedTempDir tmp_;
};

ScopedTempDir* ArchiveIntegrationTest::dir_ = nullptr;
Store* ArchiveIntegrationTest::store_ = nullptr;
Descriptor ArchiveIntegrationTest::manifest_;
std::string ArchiveIntegrationTest::setup_error_;

TEST_F(ArchiveIntegrationTest, SkopeoInspectsTheStoreAsAnOciLayout) {
  RequireTools({"skopeo"});
  auto r = RunCommand("skopeo inspect oci:" + store_->root().string() + ":hello:latest");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(manifest_.digest.ToString()));
  EXPECT_THAT(r.output, HasSubstr("\"Os\": \"linux\""));
}

TEST_F(ArchiveIntegrationTest, UmociStatsAndUnpacksTheStore) {
  RequireTools({"umoci"});
  auto stat = RunCommand("umoci stat --image " + Quote(store_->root().string() + ":hello:latest"));
  ASSERT_EQ(stat.exit_code, 0) << stat.output;
  EXPECT_THAT(stat.output, HasSubstr("test layer"));
  fs::path bundle = tmp_.path() / "bundle";
  auto unpack = RunCommand("umoci unpack --image " +
                           Quote(store_->root().string() + ":hello:latest") + " " + Quote(bundle));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  EXPECT_TRUE(fs::exists(bundle / "rootfs/bin/busybox"));
  EXPECT_TRUE(fs::exists(bundle / "config.json"));
}

TEST_F(ArchiveIntegrationTest, PodmanLoadsAndRunsOurDockerArchive) {
  RequireTools({"podman", "runc"});
  fs::path archive = tmp_.path() / "hello-docker.tar";
  ASSERT_OK(SaveDockerArchive(*store_, {"hello:latest"}, archive));
  PodmanLoadAndRun(archive);
}

TEST_F(ArchiveIntegrationTest, PodmanLoadsAndRunsOurOciArchive) {
  RequireTools({"podman", "runc"});
  fs::path archive = tmp_.path() / "hello-oci.tar";
  ASSERT_OK(SaveOciArchive(*store_, {"hello:latest"}, archive));
  PodmanLoadAndRun(archive);
}

TEST_F(ArchiveIntegrationTest, SkopeoDockerArchiveLoadsAndKeepsTheImageId) {
  RequireTools({"skopeo"});
  fs::path archive = tmp_.path() / "skopeo-docker.tar";
  auto r = RunCommand("skopeo copy oci:" + store_->root().string() +
                      ":hello:latest docker-archive:" + archive.string() + ":skopeo/hello:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto dst = NewStore("dst");
  ASSERT_NE(dst, nullptr);
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst, archive));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_TRUE(loaded[0].ref.has_value());
  EXPECT_EQ(loaded[0].ref->Familiar(), "skopeo/hello:1");
  ASSERT_OK_AND_ASSIGN(auto orig, store_->LoadImage("hello:latest"));
  ASSERT_OK_AND_ASSIGN(auto img, dst->LoadImage("skopeo/hello:1"));
  EXPECT_EQ(img.config.diff_ids, orig.config.diff_ids);
  EXPECT_TRUE(dst->Fsck().ok());
  // And what we loaded is a valid OCI layout image again.
  auto inspect = RunCommand("skopeo inspect oci:" + dst->root().string() + ":skopeo/hello:1");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
}

TEST_F(ArchiveIntegrationTest, SkopeoOciArchiveLoadsWithSameManifest) {
  RequireTools({"skopeo"});
  fs::path archive = tmp_.path() / "skopeo-oci.tar";
  auto r = RunCommand("skopeo copy oci:" + store_->root().string() +
                      ":hello:latest oci-archive:" + archive.string() + ":skopeo-hello:2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto dst = NewStore("dst");
  ASSERT_NE(dst, nullptr);
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst, archive));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_TRUE(loaded[0].ref.has_value());
  EXPECT_EQ(loaded[0].ref->Familiar(), "skopeo-hello:2");
  ASSERT_OK_AND_ASSIGN(auto img, dst->LoadImage("skopeo-hello:2"));
  ASSERT_OK_AND_ASSIGN(auto orig, store_->LoadImage("hello:latest"));
  EXPECT_EQ(img.config.diff_ids, orig.config.diff_ids);
  EXPECT_TRUE(dst->Fsck().ok());
}

TEST_F(ArchiveIntegrationTest, PodmanSavedArchivesLoad) {
  RequireTools({"podman", "runc"});
  fs::path ours = tmp_.path() / "ours.tar";
  ASSERT_OK(SaveDockerArchive(*store_, {"hello:latest"}, ours));
  auto load = RunCommand("podman load -i " + Quote(ours));
  ASSERT_EQ(load.exit_code, 0) << load.output;
  auto names = LoadedNames(load.output);
  ASSERT_FALSE(names.empty()) << load.output;
  const std::string image = names[0];
  for (const char* format : {"docker-archive", "oci-archive"}) {
    SCOPED_TRACE(format);
    fs::path archive = tmp_.path() / (std::string("podman-") + format + ".tar");
    auto save = RunCommand(std::string("podman save --format ") + format + " -o " + Quote(archive) +
                           " '" + image + "'");
    ASSERT_EQ(save.exit_code, 0) << save.output;
    auto dst = NewStore(std::string("dst-") + format);
    ASSERT_NE(dst, nullptr);
    ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst, archive));
    ASSERT_FALSE(loaded.empty());
    ASSERT_OK_AND_ASSIGN(auto img, dst->LoadImage(loaded[0].descriptor.digest.ToString()));
    ASSERT_OK_AND_ASSIGN(auto orig, store_->LoadImage("hello:latest"));
    EXPECT_EQ(img.config.diff_ids, orig.config.diff_ids);
    EXPECT_TRUE(dst->Fsck().ok());
  }
  RunCommand("podman rmi -f '" + image + "'");
}

TEST_F(ArchiveIntegrationTest, CliSaveAndLoadFollowTheContract) {
  const std::string strata = STRATA_BINARY;
  for (const char* format : {"docker-archive", "oci-archive"}) {
    SCOPED_TRACE(format);
    fs::path archive = tmp_.path() / (std::string(format) + ".tar");
    auto save = RunCommand(strata + " --root " + Quote(store_->root()) + " save hello:latest -o " +
                           Quote(archive) + " --format " + format);
    ASSERT_EQ(save.exit_code, 0) << save.output;
    EXPECT_EQ(save.output, "");
    fs::path root = tmp_.path() / (std::string("cli-") + format);
    auto load = RunCommand(strata + " --root " + Quote(root) + " load -i " + Quote(archive));
    ASSERT_EQ(load.exit_code, 0) << load.output;
    EXPECT_EQ(load.output, "Loaded image: hello:latest\n");
    auto inspect = RunCommand(strata + " --root " + Quote(root) + " inspect hello:latest");
    EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  }
  // Default format is docker-archive.
  fs::path def = tmp_.path() / "default.tar";
  ASSERT_EQ(RunCommand(strata + " --root " + Quote(store_->root()) + " save hello:latest -o " +
                       Quote(def))
                .exit_code,
            0);
  EXPECT_TRUE(testing::ReadTarFiles(def).count("manifest.json"));
  // Errors: exit 1 with "strata: ..." for a bad archive, 2 for bad usage.
  ASSERT_OK(WriteFileAtomic(tmp_.path() / "junk.tar", "not a tar"));
  auto bad = RunCommand(strata + " --root " + Quote(tmp_.path() / "cli-junk") + " load -i " +
                        Quote(tmp_.path() / "junk.tar"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("strata: load "));
  auto usage = RunCommand(strata + " --root " + Quote(store_->root()) +
                          " save hello:latest -o x.tar --format zip");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

}  // namespace
}  // namespace strata::oci
