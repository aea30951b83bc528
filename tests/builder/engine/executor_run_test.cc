// RUN on the hermetic harness: what the runner is asked to do (RunSpec), what
// the step's file-system effects become (layers, whiteouts), mounts, and
// failures.
#include <sys/stat.h>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::IsRoot;
using ::testing::Not;

class ExecutorRunTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(h_.MakeBase()); }
  const RunSpec& Last() {
    EXPECT_FALSE(h_.runner().calls().empty());
    return h_.runner().calls().back();
  }
  EngineHarness h_;
};

TEST_F(ExecutorRunTest, ShellFormRunsTheScriptThroughTheShell) {
  ASSERT_OK(h_.Build("FROM base\nRUN echo hi && make\n"));
  EXPECT_THAT(Last().args, ElementsAre("/bin/sh", "-c", "echo hi && make"));
  EXPECT_EQ(Last().cwd, "/");
  EXPECT_EQ(Last().user, "");
  EXPECT_EQ(Last().network, NetworkMode::kPrivate);
  EXPECT_FALSE(Last().rootfs.empty());
}

TEST_F(ExecutorRunTest, ExecFormAndShellInstruction) {
  ASSERT_OK(h_.Build("FROM base\nRUN [\"/bin/tool\", \"a b\"]\n"));
  EXPECT_THAT(Last().args, ElementsAre("/bin/tool", "a b"));
  ASSERT_OK(
      h_.Build("FROM base\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN x | y\n"));
  EXPECT_THAT(Last().args, ElementsAre("/bin/bash", "-o", "pipefail", "-c", "x | y"));
}

TEST_F(ExecutorRunTest, HeredocBodyIsTheScript) {
  ASSERT_OK(h_.Build("FROM base\nRUN <<EOF\necho one\necho two\nEOF\n"));
  EXPECT_THAT(Last().args, ElementsAre("/bin/sh", "-c", "echo one\necho two\n"));
}

TEST_F(ExecutorRunTest, HeredocWithShebangRunsAsAFile) {
  ASSERT_OK(h_.Build("FROM base\nRUN <<EOF\n#!/usr/bin/python3\nprint(1)\nEOF\n"));
  EXPECT_THAT(Last().args, ElementsAre("/dev/pipes/EOF"));
  ASSERT_EQ(Last().binds.size(), 1u);
  EXPECT_EQ(Last().binds[0].destination, "/dev/pipes/EOF");
  EXPECT_TRUE(Last().binds[0].read_only);
  // The script file is gone after the step.
  EXPECT_FALSE(fs::exists(Last().binds[0].source));
}

TEST_F(ExecutorRunTest, HeredocsHandedToTheShellWithACommand) {
  ASSERT_OK(h_.Build("FROM base\nRUN cat <<A > /x\nbody\nA\n"));
  EXPECT_THAT(Last().args, ElementsAre("/bin/sh", "-c", "cat <<A > /x\nbody\nA"));
}

TEST_F(ExecutorRunTest, EnvironmentIsEnvThenArgsThenProxies) {
  BuildOptions o = h_.options();
  o.build_args = {{"HTTP_PROXY", "http://proxy:3128"}, {"V", "cli"}};
  ASSERT_OK(h_.Build("FROM base\nENV E=env BASE=over\nARG V\nARG E=arg-loses\nRUN go\n", o));
  const auto& env = Last().env;
  EXPECT_THAT(env, Contains("E=env"));
  EXPECT_THAT(env, Contains("BASE=over"));
  EXPECT_THAT(env, Contains("V=cli"));
  EXPECT_THAT(env, Contains("HTTP_PROXY=http://proxy:3128"));
  EXPECT_THAT(env, Not(Contains("E=arg-loses")));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  // Proxies stay out of the history; declared ARGs show.
  EXPECT_THAT(img.config.history.back().created_by, HasSubstr("V=cli"));
  EXPECT_THAT(img.config.history.back().created_by, Not(HasSubstr("proxy")));
}

TEST_F(ExecutorRunTest, WorkdirAndUserReachTheRunner) {
  ASSERT_OK(h_.Build("FROM base\nWORKDIR /src\nUSER app:app\nRUN make\n"));
  EXPECT_EQ(Last().cwd, "/src");
  EXPECT_EQ(Last().user, "app:app");
}

TEST_F(ExecutorRunTest, FilesTheStepWritesBecomeALayer) {
  h_.runner().On("make").Write("/out/bin/app", "ELF", 0755).MakeDir("/var/lib/app", 0700);
  ASSERT_OK(h_.Build("FROM base\nRUN make\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_EQ(img.manifest.layers.size(), 2u);
  EXPECT_FALSE(img.config.history.back().empty_layer);
  EXPECT_THAT(h_.LayerPaths(-1),
              ElementsAre("out", "out/bin", "out/bin/app", "var", "var/lib", "var/lib/app"));
  ASSERT_OK_AND_ASSIGN(fs::path flat, h_.Flatten());
  struct stat st;
  ASSERT_EQ(::stat((flat / "out/bin/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((flat / "var/lib/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(h_.ReadImageFile("/out/bin/app"), "ELF");
}

TEST_F(ExecutorRunTest, AStepThatChangesNothingAddsNoLayer) {
  ASSERT_OK(h_.Build("FROM base\nRUN true\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_EQ(img.manifest.layers.size(), 1u);
  EXPECT_TRUE(img.config.history.back().empty_layer);
}

TEST_F(ExecutorRunTest, DeletedFilesBecomeWhiteouts) {
  h_.runner().On("rm").Remove("/etc/group").Remove("/home/app");
  ASSERT_OK(h_.Build("FROM base\nRUN rm\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("etc", "etc/.wh.group", "home", "home/.wh.app"));
  std::string listing = h_.Listing();
  EXPECT_THAT(listing, Not(HasSubstr("\netc/group:")));
  EXPECT_THAT(listing, Not(HasSubstr("\nhome/app:")));
  EXPECT_THAT(listing, HasSubstr("\netc/passwd:"));
}

TEST_F(ExecutorRunTest, ChangesSeeEarlierStepsOfTheStage) {
  std::optional<std::string> seen;
  h_.runner().On("one").Write("/state", "1");
  h_.runner().On("two").Read("/state", &seen).Write("/state", "2").Chmod("/bin/sh", 0700);
  ASSERT_OK(h_.Build("FROM base\nRUN one\nRUN two\n"));
  EXPECT_EQ(seen, "1");
  EXPECT_EQ(h_.ReadImageFile("/state"), "2");
  EXPECT_THAT(h_.Listing(), HasSubstr("bin/sh: file 700 #!shell"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("bin", "bin/sh", "state"));
}

TEST_F(ExecutorRunTest, StepOutputReachesTheProgressSink) {
  h_.runner().On("make").Print("compiling").Print("warn", OutputStream::kStderr);
  ASSERT_OK(h_.Build("FROM base\nRUN make\n"));
  bool found = false;
  for (const auto& s : h_.progress().steps()) {
    if (s.name.find("RUN make") != std::string::npos) {
      EXPECT_THAT(s.output, Contains("compiling"));
      EXPECT_THAT(s.output, Contains("warn"));
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ExecutorRunTest, NonZeroExitFailsNamingTheLineWithTheOutputTail) {
  h_.runner().On("make").Print("error: boom").Exit(2);
  auto r = h_.Build("FROM base\nENV A=1\nRUN make\nRUN after\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:3:"));
  EXPECT_THAT(r.error().message(), HasSubstr("exit code 2"));
  EXPECT_THAT(r.error().message(), HasSubstr("error: boom"));
  EXPECT_EQ(h_.runner().Runs("after"), 0);
  EXPECT_FALSE(h_.store().Resolve("out:latest").has_value());
}

TEST_F(ExecutorRunTest, AFailedBuildLeavesTheEarlierImageAndScratchUntouched) {
  h_.runner().On("good").Write("/v", "1");
  ASSERT_OK_AND_ASSIGN(auto first, h_.Build("FROM base\nRUN good\n"));
  h_.runner().On("bad").Write("/partial", "x").Exit(1);
  auto r = h_.Build("FROM base\nRUN good\nRUN bad\n");
  ASSERT_FALSE(r.has_value());
  ASSERT_OK_AND_ASSIGN(auto now, h_.store().Resolve("out:latest"));
  EXPECT_EQ(now.digest, first.manifest.digest);
  EXPECT_EQ(h_.ReadImageFile("/v"), "1");
  // No scratch dir of the failed step is left behind.
  for (const auto& e : fs::directory_iterator(h_.store().SnapshotsDir())) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
  }
}

TEST_F(ExecutorRunTest, RunnerErrorsAreWrappedWithTheLineAndCommand) {
  h_.runner().On("x").Fail(Error(ErrorCode::kNotFound, "unable to find user nobody2"));
  auto r = h_.Build("FROM base\nUSER nobody2\nRUN x\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:3:"));
  EXPECT_THAT(r.error().message(), HasSubstr("unable to find user nobody2"));
}

TEST_F(ExecutorRunTest, CacheMountPersistsAcrossBuildsAndStaysOutOfTheLayer) {
  h_.runner().On("fill").Write("/root/.cache/obj", "compiled");
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=cache,target=/root/.cache fill\n"));
  ASSERT_FALSE(Last().binds.empty());
  const BindMount& b = Last().binds[0];
  EXPECT_EQ(b.destination, "/root/.cache");
  EXPECT_FALSE(b.read_only);
  EXPECT_TRUE(b.source.string().starts_with(h_.store().root().string()));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_TRUE(img.config.history.back().empty_layer);  // nothing outside the cache
  std::optional<std::string> seen;
  h_.runner().On("use").Read("/root/.cache/obj", &seen);
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=cache,target=/root/.cache use\n"));
  EXPECT_EQ(seen, "compiled");
  // Another id is another cache.
  h_.runner().On("other").Read("/root/.cache/obj", &seen);
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=cache,id=x,target=/root/.cache other\n"));
  EXPECT_EQ(seen, std::nullopt);
}

TEST_F(ExecutorRunTest, TmpfsMountIsAskedForAndLeavesNothing) {
  h_.runner().On("t").Write("/scratch/big", "data");
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=tmpfs,target=/scratch,size=1048576 t\n"));
  ASSERT_EQ(Last().tmpfs.size(), 1u);
  EXPECT_EQ(Last().tmpfs[0].destination, "/scratch");
  EXPECT_EQ(Last().tmpfs[0].size_bytes, 1048576u);
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_TRUE(img.config.history.back().empty_layer);
}

TEST_F(ExecutorRunTest, SecretFileIsBoundReadOnlyAndNeverRecorded) {
  h_.Context("Dockerfile", "");
  fs::path secret = h_.root() / "token.txt";
  ASSERT_OK(WriteFileAtomic(secret, "s3cr3t"));
  BuildOptions o = h_.options();
  o.secrets["tok"].file = secret;
  std::optional<std::string> seen;
  h_.runner().On("use").Read("/run/secrets/tok", &seen);
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=secret,id=tok use\n", o));
  EXPECT_EQ(seen, "s3cr3t");
  ASSERT_EQ(Last().binds.size(), 1u);
  EXPECT_EQ(Last().binds[0].destination, "/run/secrets/tok");
  EXPECT_TRUE(Last().binds[0].read_only);
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_THAT(img.config_bytes, Not(HasSubstr("s3cr3t")));
  EXPECT_TRUE(img.config.history.back().empty_layer);
}

TEST_F(ExecutorRunTest, SecretAsEnvironmentVariable) {
  BuildOptions o = h_.options();
  o.secrets["api"].value = "value-from-env";
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=secret,id=api,env=API_KEY call\n", o));
  EXPECT_THAT(Last().env, Contains("API_KEY=value-from-env"));
  EXPECT_TRUE(Last().binds.empty());
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_THAT(img.config_bytes, Not(HasSubstr("value-from-env")));
}

TEST_F(ExecutorRunTest, MissingSecretIsAnErrorOnlyWhenRequired) {
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=secret,id=absent opt\n"));
  EXPECT_TRUE(Last().binds.empty());
  auto r = h_.Build("FROM base\nRUN --mount=type=secret,id=absent,required=true req\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("secret absent"));
  EXPECT_EQ(h_.runner().Runs("req"), 0);
}

TEST_F(ExecutorRunTest, BindMountOfTheContextIsReadOnlyAndFiltered) {
  h_.Context("src/main.c", "int main;");
  h_.Context("src/secret.key", "k");
  h_.Context(".dockerignore", "src/*.key\n");
  std::optional<std::string> main_c, key;
  h_.runner().On("cc").Read("/mnt/main.c", &main_c).Read("/mnt/secret.key", &key);
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=bind,source=src,target=/mnt cc\n"));
  EXPECT_EQ(main_c, "int main;");
  EXPECT_EQ(key, std::nullopt);
  ASSERT_EQ(Last().binds.size(), 1u);
  EXPECT_TRUE(Last().binds[0].read_only);
  // Writing through a read-only bind fails the step.
  h_.runner().On("w").Write("/mnt/out", "x");
  auto r = h_.Build("FROM base\nRUN --mount=type=bind,source=src,target=/mnt w\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(fs::exists(h_.context() / "src/out"));
}

TEST_F(ExecutorRunTest, RwBindMountWritesAreThrownAway) {
  h_.Context("data/f", "orig");
  h_.runner().On("w").Write("/mnt/f", "changed");
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=bind,source=data,target=/mnt,rw w\n"));
  ASSERT_EQ(Last().binds.size(), 1u);
  EXPECT_FALSE(Last().binds[0].read_only);
  EXPECT_EQ(*ReadFile(h_.context() / "data/f"), "orig");
  EXPECT_FALSE(fs::exists(Last().binds[0].source));
}

TEST_F(ExecutorRunTest, BindMountFromAStage) {
  h_.runner().On("gen").Write("/gen/out.txt", "generated");
  std::optional<std::string> seen;
  h_.runner().On("use").Read("/from/gen/out.txt", &seen);
  ASSERT_OK(h_.Build(
      "FROM base AS gen\nRUN gen\nFROM base\nRUN --mount=type=bind,from=gen,target=/from use\n"));
  EXPECT_EQ(seen, "generated");
  EXPECT_EQ(h_.ReadImageFile("/gen/out.txt"), std::nullopt);
}

TEST_F(ExecutorRunTest, HostNetworkAndInsecureNeedEntitlements) {
  auto r = h_.Build("FROM base\nRUN --network=host net\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(r.error().message(), HasSubstr("--allow network.host"));
  auto s = h_.Build("FROM base\nRUN --security=insecure priv\n");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(h_.runner().calls().empty());
  BuildOptions o = h_.options();
  o.allow = {std::string(kAllowNetworkHost), std::string(kAllowSecurityInsecure)};
  ASSERT_OK(h_.Build("FROM base\nRUN --network=host --security=insecure both\n", o));
  EXPECT_EQ(Last().network, NetworkMode::kHost);
  EXPECT_EQ(Last().security, SecurityMode::kInsecure);
  ASSERT_OK(h_.Build("FROM base\nRUN --network=none offline\n"));
  EXPECT_EQ(Last().network, NetworkMode::kNone);
}

TEST_F(ExecutorRunTest, OwnershipChangesNeedRoot) {
  h_.runner().On("chown").Write("/owned", "o").Chown("/owned", 1234, 4321);
  auto r = h_.Build("FROM base\nRUN chown\n");
  if (!IsRoot()) {
    // The step itself cannot chown without root; the build says so clearly.
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_OK_AND_ASSIGN(fs::path flat, h_.Flatten());
  struct stat st;
  ASSERT_EQ(::lstat((flat / "owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 4321u);
}

TEST_F(ExecutorRunTest, StepCannotEscapeThroughAnImageSymlink) {
  // The base has /escape -> the harness's own dir; the fake resolves like a
  // container (inside the rootfs), and the layer holds what it wrote there.
  ASSERT_OK(h_.MakeImage("linky:latest",
                         {{testing::Symlink("escape", h_.root().string()), File("bin/sh", "")}}));
  h_.runner().On("w").Write("/escape/pwned", "x");
  ASSERT_OK(h_.Build("FROM linky\nRUN w\n"));
  EXPECT_FALSE(fs::exists(h_.root() / "pwned"));
  EXPECT_EQ(h_.ReadImageFile(h_.root().string() + "/pwned"), "x");
}

}  // namespace
}  // namespace strata::builder
