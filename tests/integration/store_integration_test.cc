// The store under the strata binary: what a user sees when the store is
// damaged (corrupt index.json, corrupt base layer blob, half-deleted
// snapshots), with a real busybox base and RUN through runc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include <nlohmann/json.hpp>

#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

class StoreIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlayfs, runc)";
    static int counter = 0;
    owner_ = fs::path("/tmp") /
             fmt::format("strata-store-it-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(owner_));
    root_ = owner_ / "store";
    auto rootfs = owner_ / "busybox-rootfs";
    auto r =
        RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " + Q(rootfs));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("import " + Q(rootfs) + " busybox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  // stdout and stderr together.
  CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args + " 2>&1");
  }

  fs::path Context(const std::string& name, const std::string& dockerfile) {
    fs::path c = owner_ / name;
    testing::WriteTestFile(c / "Dockerfile", dockerfile);
    return c;
  }

  // The digest of busybox's only layer blob.
  std::string BaseLayer() {
    auto r = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) +
                        " inspect busybox 2>/dev/null");
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.output;
    return j["manifest"]["layers"][0]["digest"].get<std::string>();
  }
  fs::path BlobPath(const std::string& digest) {
    return root_ / "blobs" / "sha256" / digest.substr(7);
  }

  fs::path owner_;
  fs::path root_;
};

// A corrupt index.json is reported as such by every command; build stops
// instead of going to docker.io for "busybox".
TEST_F(StoreIntegrationTest, CorruptIndexJsonIsReportedByEveryCommandAndBuildDoesNotPull) {
  auto ctx = Context("c", "FROM busybox\nRUN true\n");
  testing::WriteTestFile(root_ / "index.json", "{\"schemaVersion\": 2, \"manifests\": [");
  const std::string want = (root_ / "index.json").string() + " is corrupt";
  for (const std::string& cmd :
       {std::string("build -q ") + Q(ctx), std::string("build -q --pull always ") + Q(ctx),
        std::string("images"), std::string("inspect busybox"), std::string("tag busybox b:2"),
        std::string("rmi busybox"), std::string("save busybox -o ") + Q(owner_ / "x.tar"),
        std::string("prune"), std::string("fsck")}) {
    auto r = Strata(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(cmd == "fsck" ? "corrupt" : want)) << cmd;
    EXPECT_THAT(r.output, Not(HasSubstr("docker.io"))) << cmd;
    EXPECT_THAT(r.output, Not(HasSubstr("not found"))) << cmd;
  }
}

// A build whose base's snapshot exists never reads the base's layer blob: it
// must still notice that the blob is corrupt (same size, other bytes), name
// it, and fail; fsck reports it.
TEST_F(StoreIntegrationTest, BuildOnACorruptBaseLayerFailsEvenWithItsSnapshot) {
  auto ctx = Context("c", "FROM busybox\nRUN echo one > /one\n");
  auto r = Strata("build -q " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;  // snapshot of the base exists now
  std::string layer = BaseLayer();
  fs::path blob = BlobPath(layer);
  ASSERT_EQ(::chmod(blob.c_str(), 0644), 0);
  {
    int fd = ::open(blob.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(::fstat(fd, &st), 0);
    char c = 0;
    ASSERT_EQ(::pread(fd, &c, 1, st.st_size / 2), 1);
    c = static_cast<char>(c ^ 0x55);
    ASSERT_EQ(::pwrite(fd, &c, 1, st.st_size / 2), 1);
    ::close(fd);
  }
  ::chmod(blob.c_str(), 0444);
  for (const char* flags : {"", "--no-cache "}) {
    r = Strata(std::string("build -q ") + flags + Q(ctx));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr(layer));
    EXPECT_THAT(r.output, HasSubstr("corrupt"));
  }
  r = Strata("fsck");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(layer));
  // A truncated blob is caught by the cheap size check.
  ASSERT_EQ(::truncate(blob.c_str(), 10), 0);
  r = Strata("build -q " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(layer));
  EXPECT_THAT(r.output, HasSubstr("corrupt"));
}

// What a prune killed in the middle of deleting a snapshot in place left: the
// snapshot's name with part of its files. The next build must not trust it
// (its RUN sees every file), and fsck must not call the store ok.
TEST_F(StoreIntegrationTest, HalfDeletedSnapshotIsNeitherUsedNorCalledOk) {
  auto ctx = Context("c", "FROM busybox\nRUN ls /bin | wc -l > /count\n");
  auto r = Strata("build -q -t one " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("unpack one " + Q(owner_ / "u1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_OK_AND_ASSIGN(std::string want, ReadFile(owner_ / "u1" / "count"));
  // The base's snapshot: the only one holding bin/busybox.
  fs::path half;
  for (const auto& e : fs::recursive_directory_iterator(root_ / "snapshots")) {
    if (e.path().filename() == "busybox" && e.path().parent_path().filename() == "bin") {
      half = e.path().parent_path();
    }
  }
  ASSERT_FALSE(half.empty());
  int removed = 0;
  std::vector<fs::path> victims;
  for (const auto& e : fs::directory_iterator(half)) {
    if (e.path().filename() != "busybox" && removed++ % 2 == 0) victims.push_back(e.path());
  }
  for (const auto& v : victims) fs::remove(v);
  // Older strata trusted the name alone, and wrote no proof of completeness;
  // drop ours too, as an in-place delete could have.
  for (const auto& e : fs::directory_iterator(root_ / "snapshots")) {
    fs::remove(e.path() / "snapshot.json");
  }
  r = Strata("fsck");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("incomplete"));
  r = Strata("build -q --no-cache -t two " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("unpack two " + Q(owner_ / "u2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(owner_ / "u2" / "count"));
  EXPECT_EQ(got, want);
  r = Strata("fsck --repair");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Strata("fsck");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Prune with a tagged image whose manifest blob is corrupt deletes nothing
// and names the image.
TEST_F(StoreIntegrationTest, PruneWithACorruptManifestDeletesNothing) {
  auto ctx = Context("c", "FROM busybox\nRUN echo a > /a\n");
  auto r = Strata("build -q -t app " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("rmi busybox");  // app's blobs are only reachable through app
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto inspect =
      RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " inspect app 2>/dev/null");
  auto j = nlohmann::json::parse(inspect.output, nullptr, false);
  ASSERT_TRUE(j.is_object());
  std::string manifest = j["digest"].get<std::string>();
  size_t blobs_before = 0;
  for (auto it = fs::directory_iterator(root_ / "blobs/sha256"); it != fs::directory_iterator();
       ++it)
    ++blobs_before;
  fs::path mpath = BlobPath(manifest);
  ::chmod(mpath.c_str(), 0644);
  testing::WriteTestFile(mpath, "{\"schemaVersion\": 2, \"layers\": [");
  r = Strata("prune");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("app:latest"));
  EXPECT_THAT(r.output, HasSubstr(manifest));
  size_t blobs_after = 0;
  for (auto it = fs::directory_iterator(root_ / "blobs/sha256"); it != fs::directory_iterator();
       ++it)
    ++blobs_after;
  EXPECT_EQ(blobs_after, blobs_before);
}

}  // namespace
}  // namespace strata
