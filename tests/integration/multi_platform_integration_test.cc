// Multi-platform builds end to end: the strata binary, runc, QEMU through
// binfmt_misc (Debian qemu-user-static; `strata binfmt --install aarch64` is
// this suite's setup, as tonistiigi/binfmt is a CI job's), base images made
// offline from Debian's busybox-static for amd64 and arm64, and real clients
// checking the result: skopeo inspect --raw, podman run --platform, a local
// registry.
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

std::string LastLine(std::string out) {
  while (!out.empty() && out.back() == '\n') out.pop_back();
  auto nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

class MultiPlatformIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    if (oci::Platform::Host().architecture != "amd64") return;
    // The one privileged, explicit step: register the aarch64 handler (F
    // flag). Idempotent; left registered, as `docker run --privileged
    // tonistiigi/binfmt --install` leaves it.
    auto r = RunCommand(std::string(STRATA_BINARY) + " binfmt --install aarch64");
    binfmt_error_ = r.exit_code == 0 ? "" : r.output;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlayfs, runc, binfmt_misc)";
    if (oci::Platform::Host().architecture != "amd64") {
      GTEST_SKIP() << "written for an amd64 host (arm64 is the emulated platform)";
    }
    if (!binfmt_error_.empty()) {
      // Only a binfmt_misc that cannot be mounted/written is a skip.
      if (binfmt_error_.find("mount binfmt_misc") != std::string::npos ||
          binfmt_error_.find("ermission denied") != std::string::npos) {
        GTEST_SKIP() << "binfmt_misc cannot be used here: " << binfmt_error_;
      }
      FAIL() << "strata binfmt --install aarch64: " << binfmt_error_;
    }
    static int counter = 0;
    // podman names oci: images after the path: keep it lowercase.
    owner_ = fs::path("/tmp") /
             fmt::format("strata-mp-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(owner_));
    root_ = owner_ / "store";
    MakeBases(root_);
  }

  // busybox:amd64, busybox:arm64 and the index busybox:multi in the store at
  // `root`, reproducibly (SOURCE_DATE_EPOCH): every store gets the same
  // digests, so build-cache records carry over between stores.
  void MakeBases(const fs::path& root) {
    const std::string maker = std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh ";
    const std::string epoch = "SOURCE_DATE_EPOCH=1700000000 ";
    if (!fs::exists(owner_ / "rootfs-amd64")) {
      auto r = RunCommand(maker + Q(owner_ / "rootfs-amd64"));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      r = RunCommand(maker + "--arch arm64 " + Q(owner_ / "rootfs-arm64"));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    const std::string s = epoch + std::string(STRATA_BINARY) + " --root " + Q(root) + " ";
    auto r = RunCommand(s + "import " + Q(owner_ / "rootfs-amd64") + " busybox:amd64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = RunCommand(s + "import --platform linux/arm64 " + Q(owner_ / "rootfs-arm64") +
                   " busybox:arm64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // A two-platform base (an index), made by strata itself.
    auto ctx = Context("base", {{"Dockerfile", "FROM busybox:${TARGETARCH}\n"}});
    r = RunCommand(
        s + "build -q --pull=never --platform linux/amd64,linux/arm64 -t busybox:multi " + Q(ctx));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  fs::path Context(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path c = owner_ / name;
    for (const auto& [rel, content] : files) testing::WriteTestFile(c / rel, content);
    return c;
  }

  // skopeo's view of a tag in the store (an OCI layout).
  nlohmann::json Raw(const std::string& ref) {
    auto r = RunCommand("skopeo inspect --raw oci:" + root_.string() + ":" + ref);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output, nullptr, false);
  }

  // The child manifest digest of `arch` in the index tagged `ref`.
  std::string Child(const std::string& ref, const std::string& arch) {
    const nlohmann::json raw = Raw(ref);  // kept alive for the loop
    for (const auto& m : raw["manifests"]) {
      if (m["platform"]["architecture"] == arch) return m["digest"].get<std::string>();
    }
    ADD_FAILURE() << ref << " has no " << arch << " manifest";
    return "";
  }

  // A file of an image (by digest or tag), unpacked with strata.
  std::string FileOf(const std::string& image, const std::string& path) {
    fs::path dir = owner_ / fmt::format("unpack-{}", ++unpacks_);
    auto r = Strata("unpack " + image + " " + Q(dir));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto text = ReadFile(dir / path);
    return text ? *text : "(missing: " + text.error().message() + ")";
  }

  CommandResult PodmanRun(const std::string& platform, const std::string& ref,
                          const std::string& cmd) {
    return RunCommand("podman run --rm --platform " + platform +
                      " --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
                      "--network none oci:" +
                      root_.string() + ":" + ref + " " + cmd +
                      " 2>&1 | grep -v -e '^Getting image' -e '^Copying' "
                      "-e '^Writing manifest' -e '^Storing signatures'");
  }

  static inline std::string binfmt_error_;
  fs::path owner_;
  fs::path root_;
  int unpacks_ = 0;
};

TEST_F(MultiPlatformIntegrationTest, TwoPlatformBuildIsAnIndexThatSkopeoAndPodmanRead) {
  auto ctx = Context("two", {{"Dockerfile",
                              "FROM busybox:multi\n"
                              "ARG TARGETPLATFORM\n"
                              "RUN echo \"$(uname -m) $TARGETPLATFORM\" > /info\n"
                              "CMD [\"cat\", \"/info\"]\n"}});
  auto r = Strata("build -q --pull=never --platform linux/amd64,linux/arm64 -t two:1 --iidfile " +
                  Q(owner_ / "iid") + " --metadata-file " + Q(owner_ / "md.json") + " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string id = LastLine(r.output);
  auto raw = Raw("two:1");
  EXPECT_EQ(raw["mediaType"], "application/vnd.oci.image.index.v1+json") << raw.dump();
  ASSERT_EQ(raw["manifests"].size(), 2u) << raw.dump();
  EXPECT_EQ(raw["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(raw["manifests"][1]["platform"]["architecture"], "arm64");
  // The printed ID, --iidfile and --metadata-file name the index.
  auto rawtext = RunCommand("skopeo inspect --raw oci:" + root_.string() + ":two:1");
  EXPECT_EQ(id, oci::Digest::Of(rawtext.output).ToString());
  EXPECT_EQ(*ReadFile(owner_ / "iid"), id);
  auto md = nlohmann::json::parse(*ReadFile(owner_ / "md.json"));
  EXPECT_EQ(md["containerimage.digest"], id);
  EXPECT_FALSE(md.contains("containerimage.config.digest"));
  // Each child's config says its platform.
  auto cfg =
      RunCommand("skopeo inspect --config --override-arch arm64 oci:" + root_.string() + ":two:1");
  EXPECT_THAT(cfg.output, HasSubstr("\"architecture\": \"arm64\"")) << cfg.output;
  // podman runs each, the arm64 one under QEMU.
  auto arm = PodmanRun("linux/arm64", "two:1", "");
  EXPECT_THAT(arm.output, HasSubstr("aarch64 linux/arm64")) << arm.output;
  auto arm_now = PodmanRun("linux/arm64", "two:1", "uname -m");
  EXPECT_THAT(arm_now.output, HasSubstr("aarch64")) << arm_now.output;
  auto amd = PodmanRun("linux/amd64", "two:1", "");
  EXPECT_THAT(amd.output, HasSubstr("x86_64 linux/amd64")) << amd.output;
}

TEST_F(MultiPlatformIntegrationTest, RunUnderEmulationIsAarch64AndOnePlatformIsAPlainImage) {
  auto ctx = Context("emu", {{"Dockerfile",
                              "FROM busybox:multi\n"
                              "RUN uname -m > /arch && sha256sum /bin/busybox > /sum\n"}});
  auto r = Strata("build -q --pull=never --platform linux/arm64 -t emu:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto raw = Raw("emu:1");
  EXPECT_EQ(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json") << raw.dump();
  EXPECT_EQ(FileOf("emu:1", "arch"), "aarch64\n");
  auto inspect = Strata("inspect emu:1");
  EXPECT_THAT(inspect.output, HasSubstr("\"architecture\": \"arm64\"")) << inspect.output;
}

TEST_F(MultiPlatformIntegrationTest, CrossCompilationPatternRunsTheBuildStageNatively) {
  auto ctx = Context("cross", {{"Dockerfile",
                                "FROM --platform=$BUILDPLATFORM busybox:multi AS build\n"
                                "ARG TARGETARCH\n"
                                "RUN echo \"$(uname -m) $TARGETARCH\" > /out\n"
                                "FROM busybox:multi\n"
                                "COPY --from=build /out /out\n"}});
  auto r = Strata(
      "build --progress plain --pull=never --platform linux/amd64,linux/arm64 "
      "-t cross:1 " +
      Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The build stage ran natively for both targets; the target's arch came
  // through TARGETARCH; the final images are each target's.
  EXPECT_EQ(FileOf(Child("cross:1", "arm64"), "out"), "x86_64 arm64\n");
  EXPECT_EQ(FileOf(Child("cross:1", "amd64"), "out"), "x86_64 amd64\n");
  auto file =
      RunCommand("file -L " + Q(owner_ / fmt::format("unpack-{}", unpacks_ - 1)) + "/bin/busybox");
  EXPECT_THAT(file.output, HasSubstr("aarch64")) << file.output;
}

TEST_F(MultiPlatformIntegrationTest, PushSendsTheIndexAndEveryChildToARegistry) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  const std::string ref = reg.host() + "/team/mp:1";
  auto ctx = Context("push", {{"Dockerfile", "FROM busybox:multi\nRUN uname -m > /arch\n"}});
  auto r =
      Strata("--tls-verify=false build -q --pull=never --platform linux/amd64,linux/arm64 -t " +
             ref + " --push " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto raw = RunCommand("skopeo inspect --raw --tls-verify=false docker://" + ref);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto j = nlohmann::json::parse(raw.output, nullptr, false);
  ASSERT_EQ(j["manifests"].size(), 2u) << raw.output;
  EXPECT_EQ(LastLine(r.output), oci::Digest::Of(raw.output).ToString());
  auto arm = RunCommand("skopeo inspect --tls-verify=false --override-arch arm64 docker://" + ref);
  EXPECT_THAT(arm.output, HasSubstr("\"Architecture\": \"arm64\"")) << arm.output;
  // The arm64 image, copied out of the registry, runs under QEMU.
  auto cp = RunCommand("skopeo copy --src-tls-verify=false --override-arch arm64 docker://" + ref +
                       " oci:" + (owner_ / "pulled").string() + ":arm");
  ASSERT_EQ(cp.exit_code, 0) << cp.output;
  auto run = RunCommand(
      "podman run --rm --platform linux/arm64 --runtime runc --ulimit nofile=1024:1024 "
      "--ulimit nproc=1024:1024 --network none oci:" +
      (owner_ / "pulled").string() + ":arm cat /arch 2>&1");
  EXPECT_THAT(run.output, HasSubstr("aarch64")) << run.output;
}

TEST_F(MultiPlatformIntegrationTest, ClearErrors) {
  auto ctx = Context("err", {{"Dockerfile", "FROM busybox:amd64\nRUN true\n"}});
  auto r = Strata("build -q --platform linux/foo " + Q(ctx));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--platform: platform linux/foo: unknown architecture \"foo\""));
  r = Strata("build -q --platform windows/amd64 " + Q(ctx));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("linux images only"));
  // busybox:amd64 is one plain amd64 image.
  r = Strata("build -q --pull=never --platform linux/arm64 " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:1: FROM busybox:amd64: image busybox:amd64 is for "
                                  "linux/amd64, not linux/arm64"));
  // A multi-platform build cannot write a single-image archive.
  r = Strata("build -q --platform linux/amd64,linux/arm64 -o type=docker,dest=" +
             Q(owner_ / "x.tar") + " " + Q(ctx));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("multi-platform build"));
  // binfmt without a verb flag, and an unknown architecture.
  r = RunCommand(std::string(STRATA_BINARY) + " binfmt --install vax");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("unknown architecture \"vax\""));
  r = RunCommand(std::string(STRATA_BINARY) + " binfmt");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("qemu-aarch64"));
}

TEST_F(MultiPlatformIntegrationTest, OciAndLocalOutputsHoldEveryPlatform) {
  auto ctx = Context("ociout", {{"Dockerfile", "FROM busybox:multi\nRUN uname -m > /arch\n"}});
  const fs::path tar = owner_ / "out.tar";
  auto r =
      Strata("build -q --pull=never --platform linux/amd64,linux/arm64 -t o:1 -o type=oci,dest=" +
             tar.string() + " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto raw = RunCommand("skopeo inspect --raw oci-archive:" + tar.string());
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto j = nlohmann::json::parse(raw.output, nullptr, false);
  ASSERT_EQ(j["manifests"].size(), 2u) << raw.output;
  EXPECT_EQ(LastLine(r.output), oci::Digest::Of(raw.output).ToString());
  auto arm = RunCommand("skopeo inspect --override-arch arm64 oci-archive:" + tar.string());
  EXPECT_THAT(arm.output, HasSubstr("\"Architecture\": \"arm64\"")) << arm.output;
  // type=local splits by platform, as BuildKit: DEST/linux_amd64, DEST/linux_arm64.
  const fs::path local = owner_ / "local-out";
  r = Strata("build -q --pull=never --platform linux/amd64,linux/arm64 -o type=local,dest=" +
             local.string() + " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(local / "linux_amd64" / "arch"), "x86_64\n");
  EXPECT_EQ(*ReadFile(local / "linux_arm64" / "arch"), "aarch64\n");
}

TEST_F(MultiPlatformIntegrationTest, PrintPlanIsPerPlatform) {
  auto ctx = Context("plan", {{"Dockerfile",
                               "FROM busybox:${TARGETARCH}\nARG TARGETARCH\n"
                               "RUN echo $TARGETARCH\n"}});
  auto r = Strata("build --print-plan --platform linux/amd64,linux/arm64 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.output;
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["target_platform"], "linux/amd64");
  EXPECT_EQ(j[1]["target_platform"], "linux/arm64");
  EXPECT_THAT(j[1].dump(), HasSubstr("busybox:arm64"));
  // One platform: one plan object, as without --platform.
  r = Strata("build --print-plan --platform linux/arm64 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["target_platform"], "linux/arm64");
}

TEST_F(MultiPlatformIntegrationTest, CacheRecordsOfEveryPlatformTravelWithCacheToAndFrom) {
  auto ctx = Context("cache", {{"Dockerfile",
                                "FROM busybox:multi\nARG TARGETARCH\n"
                                "RUN uname -m > /arch\n"}});
  const fs::path cache = owner_ / "cache-records";
  auto r = Strata(
      "build -q --pull=never --platform linux/amd64,linux/arm64 -t c:1 --cache-to "
      "type=local,dest=" +
      cache.string() + " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string first = LastLine(r.output);
  // Another store (another CI runner): both RUN steps come from the records.
  const fs::path other = owner_ / "other";
  MakeBases(other);
  r = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(other) +
                 " build --progress plain --pull=never --platform linux/amd64,linux/arm64 "
                 "-t c:1 --cache-from type=local,src=" +
                 cache.string() + " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // "#N [linux/arm64] [stage-0 3/3] RUN ..." then "#N CACHED".
  int cached_runs = 0;
  std::map<std::string, std::string> names;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    auto sp = line.find(' ');
    if (line.empty() || line[0] != '#' || sp == std::string::npos) continue;
    std::string id = line.substr(0, sp), rest = line.substr(sp + 1);
    if (rest == "CACHED") {
      if (names[id].find("RUN uname") != std::string::npos) ++cached_runs;
    } else if (!names.contains(id)) {
      names[id] = rest;
    }
  }
  EXPECT_EQ(cached_runs, 2) << r.output;
  EXPECT_EQ(LastLine(r.output), first);
}

}  // namespace
}  // namespace strata
