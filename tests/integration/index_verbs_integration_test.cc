// Image indexes under the strata binary (issue 15, the store and the verbs):
// an amd64 image and an arm64 image (Debian's busybox-static for each,
// tools/make-busybox-rootfs.sh --arch arm64) pushed separately to a real
// docker-registry, merged by `strata manifest create` behind a counting proxy
// (no layer blob is downloaded), checked by skopeo and podman (the arm64
// image runs under QEMU when a binfmt handler is registered); then every verb
// on the merged index in a store, and the errors for unknown and missing
// platforms.
#include <unistd.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "oci/util/file_util.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::registry::testing::FaultProxy;
using ::strata::registry::testing::ProxyAction;
using ::strata::registry::testing::ProxyRequest;
using ::strata::registry::testing::RegistryProcess;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

class IndexVerbsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (import keeps owners)";
    static int counter = 0;
    dir_ = fs::path("/tmp") /
           fmt::format("strata-mp-it-{}-{}-{}", ::getpid(), ++counter,
                       std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(dir_);
    ASSERT_OK(MakeDirs(dir_));
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                        Q(dir_ / "rootfs-amd64") + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh --arch arm64 " +
                   Q(dir_ / "rootfs-arm64") + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Two "machines", each with its own store and its own architecture.
    r = Strata("amd", "import --platform linux/amd64 " + Q(dir_ / "rootfs-amd64") + " app:amd64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("arm", "import --platform linux/arm64 " + Q(dir_ / "rootfs-arm64") + " app:arm64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override {
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  // stdout and stderr together, in store `store` (a dir under dir_).
  CommandResult Strata(const std::string& store, const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(dir_ / store) +
                      " --tls-verify=false " + args + " 2>&1");
  }
  // stdout only.
  CommandResult StrataOut(const std::string& store, const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(dir_ / store) +
                      " --tls-verify=false " + args + " 2>/dev/null");
  }
  std::string LayerOf(const std::string& store, const std::string& ref) {
    auto j = nlohmann::json::parse(StrataOut(store, "inspect " + ref).output, nullptr, false);
    EXPECT_TRUE(j.is_object());
    return j.is_object() ? j["manifest"]["layers"][0]["digest"].get<std::string>() : "";
  }
  // Pushes app:amd64 and app:arm64 from their machines to host/app.
  void PushBoth(const std::string& host) {
    auto r = Strata("amd", "push app:amd64 " + host + "/app:amd64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("arm", "push app:arm64 " + host + "/app:arm64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // The platforms of an index document, "os/arch" each.
  static std::vector<std::string> Platforms(const std::string& raw) {
    std::vector<std::string> out;
    auto j = nlohmann::json::parse(raw, nullptr, false);
    if (!j.is_object() || !j.contains("manifests")) return out;
    for (const auto& m : j["manifests"]) {
      out.push_back(m["platform"]["os"].get<std::string>() + "/" +
                    m["platform"]["architecture"].get<std::string>());
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(IndexVerbsIntegrationTest, MergeOfSeparatelyPushedImagesNeverDownloadsALayer) {
  RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::mutex mu;
  std::vector<std::string> blob_gets;
  FaultProxy proxy(reg.port(), [&](const ProxyRequest& r) {
    if (r.method == "GET" && r.target.find("/blobs/sha256:") != std::string::npos) {
      std::lock_guard<std::mutex> lock(mu);
      blob_gets.push_back(r.target);
    }
    return ProxyAction::Forward();
  });
  const std::string host = "127.0.0.1:" + std::to_string(proxy.port());
  PushBoth(host);
  const std::string amd_layer = LayerOf("amd", "app:amd64");
  const std::string arm_layer = LayerOf("arm", "app:arm64");
  {
    std::lock_guard<std::mutex> lock(mu);
    blob_gets.clear();
  }
  // A third machine with an empty store merges them, into the same
  // repository and into another one (cross-repository mounts).
  auto r = Strata("merge", "manifest create " + host + "/app:multi " + host + "/app:amd64 " + host +
                               "/app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("merge", "manifest create -t " + host + "/release/app:1 " + host + "/app:amd64 " +
                          host + "/app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("mounted"));
  {
    std::lock_guard<std::mutex> lock(mu);
    // The configs are read (they state the platform); no layer ever is.
    for (const auto& g : blob_gets) {
      EXPECT_EQ(g.find(amd_layer), std::string::npos) << g;
      EXPECT_EQ(g.find(arm_layer), std::string::npos) << g;
    }
    EXPECT_LE(blob_gets.size(), 4u) << ::testing::PrintToString(blob_gets);
  }
  // The merged store has no layers.
  EXPECT_FALSE(fs::exists(dir_ / "merge/blobs/sha256" / amd_layer.substr(7)));

  const std::string direct = reg.host();
  for (const std::string repo : {"app:multi", "release/app:1"}) {
    auto raw =
        RunCommand("skopeo inspect --raw --tls-verify=false docker://" + direct + "/" + repo);
    ASSERT_EQ(raw.exit_code, 0) << raw.output;
    EXPECT_EQ(Platforms(raw.output), (std::vector<std::string>{"linux/amd64", "linux/arm64"}))
        << raw.output;
  }
  // skopeo copies every platform of it.
  auto copy = RunCommand("skopeo copy --all --src-tls-verify=false docker://" + direct +
                         "/release/app:1 oci:" + (dir_ / "layout").string() + ":x 2>&1");
  EXPECT_EQ(copy.exit_code, 0) << copy.output;
  // strata manifest inspect, remote.
  auto ins = StrataOut("merge", "manifest inspect " + direct + "/release/app:1");
  ASSERT_EQ(ins.exit_code, 0) << ins.output;
  auto j = nlohmann::json::parse(ins.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << ins.output;
  EXPECT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][1]["platform"], "linux/arm64");
  auto raw = StrataOut("merge", "manifest inspect --raw " + direct + "/release/app:1");
  EXPECT_EQ(Platforms(raw.output), (std::vector<std::string>{"linux/amd64", "linux/arm64"}));

  // podman pulls the arm64 image by platform; it runs under QEMU when a
  // binfmt handler for aarch64 is registered (strata binfmt is part B's).
  const std::string tag = direct + "/release/app:1";
  auto pull =
      RunCommand("podman pull -q --tls-verify=false --platform linux/arm64 " + tag + " 2>&1");
  ASSERT_EQ(pull.exit_code, 0) << pull.output;
  auto arch = RunCommand("podman image inspect --format '{{.Architecture}}' " + tag + " 2>&1");
  EXPECT_THAT(arch.output, HasSubstr("arm64"));
  if (fs::exists("/proc/sys/fs/binfmt_misc/qemu-aarch64")) {
    auto run = RunCommand(
        "podman run --rm --platform linux/arm64 --runtime runc --ulimit nofile=1024:1024 "
        "--ulimit nproc=1024:1024 --network none " +
        tag + " uname -m 2>&1");
    EXPECT_THAT(run.output, HasSubstr("aarch64"));
  }
  (void)RunCommand("podman rmi -f " + tag + " >/dev/null 2>&1");

  // pull --all-platforms makes the local index complete; it pushes whole.
  r = Strata("full", "pull --all-platforms " + direct + "/release/app:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "full/blobs/sha256" / arm_layer.substr(7)));
  r = Strata("full", "push " + direct + "/release/app:1 " + direct + "/copy/app:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  raw = RunCommand("skopeo inspect --raw --tls-verify=false docker://" + direct + "/copy/app:1");
  EXPECT_EQ(Platforms(raw.output), (std::vector<std::string>{"linux/amd64", "linux/arm64"}));
}

TEST_F(IndexVerbsIntegrationTest, EveryVerbUnderstandsALocalIndex) {
  // Both images into one store (as one machine with both would have them).
  auto r = Strata("arm", "save --format oci-archive -o " + Q(dir_ / "arm.tar") + " app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "load -i " + Q(dir_ / "arm.tar"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "manifest create app:multi app:amd64 app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string dry_run = StrataOut("amd",
                                        "manifest create --dry-run --local x:y "
                                        "app:amd64 app:arm64")
                                  .output;
  EXPECT_THAT(dry_run, HasSubstr("\"linux\""));

  // images: the index line names its platforms; plain images keep their shape.
  auto images = StrataOut("amd", "images");
  EXPECT_THAT(images.output, HasSubstr("[index: linux/amd64,linux/arm64]"));
  auto fmt_out = StrataOut("amd", "images --format '{{.Tag}} {{.Platforms}}'");
  EXPECT_THAT(fmt_out.output, HasSubstr("multi linux/amd64,linux/arm64"));

  // inspect: the index; --platform one child in the image shape.
  auto j = nlohmann::json::parse(StrataOut("amd", "inspect app:multi").output, nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][1]["platform"], "linux/arm64");
  EXPECT_TRUE(j["manifests"][1]["local"].get<bool>());
  j = nlohmann::json::parse(StrataOut("amd", "inspect --platform linux/arm64 app:multi").output,
                            nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["config"]["architecture"], "arm64");
  auto hist = Strata("amd", "history --platform linux/arm64 app:multi");
  EXPECT_EQ(hist.exit_code, 0) << hist.output;

  // unpack --platform: the arm64 busybox (ELF e_machine 183, AArch64).
  r = Strata("amd", "unpack --platform linux/arm64 app:multi " + Q(dir_ / "un"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto elf = ReadFile(dir_ / "un/bin/busybox");
  ASSERT_TRUE(elf.has_value());
  ASSERT_GT(elf->size(), 20u);
  EXPECT_EQ(static_cast<unsigned char>((*elf)[18]), 183);

  // save: oci-archive keeps the index; docker-archive one platform.
  r = Strata("amd", "save --format oci-archive -o " + Q(dir_ / "multi.tar") + " app:multi");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "save --format docker-archive --platform linux/arm64 -o " +
                        Q(dir_ / "arm-docker.tar") + " app:multi");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto listing = RunCommand("tar -xOf " + Q(dir_ / "arm-docker.tar") + " manifest.json");
  EXPECT_THAT(listing.output, HasSubstr("app:multi"));
  // An index without a host child needs --platform for a docker-archive.
  r = Strata("amd", "manifest create app:armonly app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "save --format docker-archive -o " + Q(dir_ / "x.tar") + " app:armonly");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              AllOf(HasSubstr("app:armonly"), HasSubstr("linux/arm64"), HasSubstr("--platform")));

  // load: the index comes back whole in another store.
  r = Strata("other", "load -i " + Q(dir_ / "multi.tar"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(StrataOut("other", "images").output, HasSubstr("[index: linux/amd64,linux/arm64]"));
  r = Strata("other", "fsck");
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // tag, rmi: the children stay with the index; prune keeps them, fsck checks them.
  r = Strata("amd", "tag app:multi app:release");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "rmi app:amd64 app:arm64 app:multi app:armonly");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "prune");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "unpack --platform linux/arm64 app:release " + Q(dir_ / "un2"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "fsck");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 images verified"));
  r = Strata("amd", "rmi app:release");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("amd", "prune");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(StrataOut("amd", "images -q").output, ::testing::IsEmpty());
}

TEST_F(IndexVerbsIntegrationTest, UnknownAndMissingPlatformsAreClearErrors) {
  auto r = Strata("arm", "manifest create app:multi app:arm64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("arm", "inspect --platform linux/sparc9 app:multi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              AllOf(HasSubstr("--platform"), HasSubstr("unknown platform"), HasSubstr("sparc9")));
  r = Strata("arm", "unpack --platform linux/s390x app:multi " + Q(dir_ / "u"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, AllOf(HasSubstr("app:multi"), HasSubstr("linux/s390x"),
                              HasSubstr("it has: linux/arm64")));
  EXPECT_FALSE(fs::exists(dir_ / "u/bin"));
  // Two sources for one platform: both named.
  r = Strata("arm", "tag app:arm64 app:arm64-again");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("arm", "import --platform linux/arm64 " + Q(dir_ / "rootfs-amd64") + " app:other");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("arm", "manifest create app:bad app:arm64 app:other");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              AllOf(HasSubstr("linux/arm64"), HasSubstr("app:arm64"), HasSubstr("app:other")));
  r = Strata("arm", "manifest create --annotation manifest:k=v app:ok app:arm64");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("manifest:"));
}

}  // namespace
}  // namespace strata
