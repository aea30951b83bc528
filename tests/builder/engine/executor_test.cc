// The executor end to end on a hermetic harness: FROM, the metadata
// instructions and what they leave in the image config and history.
#include "builder/engine/executor.h"

#include <fmt/format.h>

#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> CreatedBy(const oci::Image& img) {
  std::vector<std::string> out;
  for (const auto& h : img.config.history) out.push_back(h.created_by);
  return out;
}

TEST(ExecutorTest, FromScratchGivesAnEmptyImageWithWorkdirAndPath) {
  EngineHarness h;
  ASSERT_OK_AND_ASSIGN(auto r, h.Build("FROM scratch\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.descriptor.digest, r.manifest.digest);
  EXPECT_THAT(img.manifest.layers, IsEmpty());
  EXPECT_EQ(img.config.config.working_dir, "/");
  EXPECT_EQ(img.config.config.GetEnv("PATH"), std::string(kDefaultImagePath));
  EXPECT_EQ(img.config.os, "linux");
  EXPECT_EQ(img.config.architecture, BuildPlatform::Host().arch);
  EXPECT_EQ(r.config, img.manifest.config.digest);
}

TEST(ExecutorTest, FromImageKeepsItsLayersConfigAndHistory) {
  EngineHarness h;
  ASSERT_OK_AND_ASSIGN(auto base_desc, h.MakeBase());
  ASSERT_OK_AND_ASSIGN(auto base, h.Load("base:latest"));
  ASSERT_OK(h.Build("FROM base\nLABEL x=1\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_NE(img.descriptor.digest, base_desc.digest);
  EXPECT_EQ(img.manifest.layers, base.manifest.layers);
  EXPECT_EQ(img.config.diff_ids, base.config.diff_ids);
  EXPECT_EQ(img.config.config.GetEnv("BASE"), "1");
  EXPECT_EQ(img.config.config.cmd, std::vector<std::string>{"/bin/sh"});
  EXPECT_THAT(CreatedBy(img), ElementsAre("test layer 0", HasSubstr("LABEL x=1")));
  EXPECT_EQ(h.ReadImageFile("/bin/sh"), "#!shell");
}

TEST(ExecutorTest, FromMissingImageIsNotFoundNamingTheLine) {
  EngineHarness h;
  auto r = h.Build("# comment\nFROM nothere:1\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.error().message(), HasSubstr("nothere:1"));
  EXPECT_FALSE(h.store().Resolve("out:latest").has_value());
}

TEST(ExecutorTest, FromMissingImageAsksTheResolver) {
  EngineHarness h;
  std::vector<std::string> asked;
  BuildOptions o = h.options();
  o.resolver = [&](const oci::Reference& ref, const oci::Platform& p) -> Result<oci::Descriptor> {
    asked.push_back(ref.Familiar() + " " + p.architecture);
    return h.MakeBase("remote/base:2");
  };
  ASSERT_OK(h.Build("FROM remote/base:2\n", o));
  EXPECT_THAT(asked, ElementsAre("remote/base:2 " + BuildPlatform::Host().arch));
  EXPECT_EQ(h.ReadImageFile("/etc/group"), "root:x:0:\napp:x:1000:\n");
}

TEST(ExecutorTest, FromStageInheritsLayersEnvAndConfig) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ASSERT_OK(
      h.Build("FROM base AS one\nENV A=1\nWORKDIR /w\nUSER app\n"
              "FROM one\nENV B=$A-2\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.GetEnv("A"), "1");
  EXPECT_EQ(img.config.config.GetEnv("B"), "1-2");
  EXPECT_EQ(img.config.config.working_dir, "/w");
  EXPECT_EQ(img.config.config.user, "app");
  EXPECT_EQ(img.manifest.layers.size(), 2u);  // base + WORKDIR's new /w
}

TEST(ExecutorTest, FromAnotherPlatformBuildsForThatPlatform) {
  // (Refused before multi-platform builds; now the stage is built for it:
  // multi_platform_test.cc has the rest.)
  EngineHarness h;
  std::string other = BuildPlatform::Host().arch == "arm64" ? "amd64" : "arm64";
  auto r = h.Build(fmt::format("FROM --platform=linux/{} scratch\nENV A=1\n", other));
  ASSERT_OK(r);
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.architecture, other);
  EXPECT_EQ(img.config.os, "linux");
}

TEST(ExecutorTest, EnvSetsConfigKeepsOrderAndExpandsInLaterSteps) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ASSERT_OK(h.Build("FROM base\nENV BASE=2 NEW=x\nENV BOTH=${BASE}${NEW} PATH=/opt:$PATH\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_THAT(img.config.config.env,
              ElementsAre("PATH=/opt:/usr/local/bin:/usr/bin:/bin", "BASE=2", "NEW=x", "BOTH=2x"));
}

TEST(ExecutorTest, ArgDefaultsBuildArgsAndScope) {
  EngineHarness h;
  BuildOptions o = h.options();
  o.build_args = {{"V", "from-cli"}, {"UNUSED", "u"}};
  ASSERT_OK(
      h.Build("ARG BASE=scratch\nARG G=global\nFROM ${BASE}\nARG V=default\nARG G\nARG D=dflt\n"
              "LABEL v=$V g=$G d=$D\n",
              o));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels, (std::map<std::string, std::string>{
                                          {"v", "from-cli"}, {"g", "global"}, {"d", "dflt"}}));
  // ARGs never reach the image's environment.
  for (const auto& e : img.config.config.env) EXPECT_FALSE(e.starts_with("V=")) << e;
  EXPECT_THAT(h.progress().warnings(), ::testing::Contains(HasSubstr("UNUSED")));
}

TEST(ExecutorTest, LabelsMergeWithTheBaseAndTheCommandLine) {
  EngineHarness h;
  oci::ImageConfig c;
  c.config.labels = {{"from", "base"}, {"over", "base"}};
  ASSERT_OK(h.MakeImage("labeled:latest", {}, c));
  BuildOptions o = h.options();
  o.labels = {{"cli", "yes"}, {"over", "cli"}};
  ASSERT_OK(h.Build("FROM labeled\nLABEL over=file \"with space\"=\"a b\"\n", o));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels,
            (std::map<std::string, std::string>{
                {"from", "base"}, {"over", "cli"}, {"cli", "yes"}, {"with space", "a b"}}));
}

TEST(ExecutorTest, ExposeNormalizesPorts) {
  EngineHarness h;
  ASSERT_OK(h.Build("FROM scratch\nEXPOSE 80 53/udp 8080/TCP\nEXPOSE 80/tcp\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.exposed_ports,
            (std::set<std::string>{"80/tcp", "53/udp", "8080/tcp"}));
}

TEST(ExecutorTest, UserVolumeStopsignalAndMaintainer) {
  EngineHarness h;
  ASSERT_OK(h.Build(
      "FROM scratch\nMAINTAINER Jane <j@x>\nUSER 1000:1000\nVOLUME /data [\"/logs\", \"/b\"]\n"
      "VOLUME /data2\nSTOPSIGNAL SIGTERM\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.author, "Jane <j@x>");
  EXPECT_EQ(img.config.config.user, "1000:1000");
  EXPECT_EQ(img.config.config.stop_signal, "SIGTERM");
  EXPECT_TRUE(img.config.config.volumes.contains("/data2"));
  EXPECT_TRUE(img.config.config.volumes.contains("/logs") ||
              img.config.config.volumes.contains("/data"));
}

TEST(ExecutorTest, CmdShellAndExecForms) {
  EngineHarness h;
  ASSERT_OK(h.Build("FROM scratch\nCMD echo hi\n"));
  ASSERT_OK_AND_ASSIGN(auto a, h.Load());
  EXPECT_EQ(a.config.config.cmd, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  ASSERT_OK(h.Build("FROM scratch\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nCMD echo hi\n"));
  ASSERT_OK_AND_ASSIGN(auto b, h.Load());
  EXPECT_EQ(b.config.config.cmd, (std::vector<std::string>{"/bin/bash", "-eu", "-c", "echo hi"}));
  EXPECT_EQ(b.config.config.shell, (std::vector<std::string>{"/bin/bash", "-eu", "-c"}));
  ASSERT_OK(h.Build("FROM scratch\nCMD [\"run\", \"--x\"]\n"));
  ASSERT_OK_AND_ASSIGN(auto c, h.Load());
  EXPECT_EQ(c.config.config.cmd, (std::vector<std::string>{"run", "--x"}));
}

TEST(ExecutorTest, EntrypointDropsAnInheritedCmdButKeepsOneSetInTheStage) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());  // CMD ["/bin/sh"]
  ASSERT_OK(h.Build("FROM base\nENTRYPOINT [\"/app\"]\n"));
  ASSERT_OK_AND_ASSIGN(auto a, h.Load());
  EXPECT_EQ(a.config.config.entrypoint, std::vector<std::string>{"/app"});
  EXPECT_FALSE(a.config.config.cmd.has_value());
  ASSERT_OK(h.Build("FROM base\nCMD [\"--help\"]\nENTRYPOINT [\"/app\"]\n"));
  ASSERT_OK_AND_ASSIGN(auto b, h.Load());
  EXPECT_EQ(b.config.config.cmd, std::vector<std::string>{"--help"});
  ASSERT_OK(h.Build("FROM base\nENTRYPOINT /app -v\nCMD [\"x\"]\n"));
  ASSERT_OK_AND_ASSIGN(auto c, h.Load());
  EXPECT_EQ(c.config.config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c", "/app -v"}));
  EXPECT_EQ(c.config.config.cmd, std::vector<std::string>{"x"});
}

TEST(ExecutorTest, HealthcheckCmdAndNone) {
  EngineHarness h;
  ASSERT_OK(h.Build(
      "FROM scratch\nHEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD curl -f http://x/\n"));
  ASSERT_OK_AND_ASSIGN(auto a, h.Load());
  ASSERT_TRUE(a.config.config.healthcheck.has_value());
  EXPECT_EQ(a.config.config.healthcheck->test,
            (std::vector<std::string>{"CMD-SHELL", "curl -f http://x/"}));
  EXPECT_EQ(a.config.config.healthcheck->interval_ns, 5'000'000'000);
  EXPECT_EQ(a.config.config.healthcheck->timeout_ns, 2'000'000'000);
  EXPECT_EQ(a.config.config.healthcheck->retries, 3);
  ASSERT_OK(h.Build("FROM scratch\nHEALTHCHECK NONE\n"));
  ASSERT_OK_AND_ASSIGN(auto b, h.Load());
  ASSERT_TRUE(b.config.config.healthcheck.has_value());
  EXPECT_EQ(b.config.config.healthcheck->test, std::vector<std::string>{"NONE"});
}

TEST(ExecutorTest, OnbuildIsRecordedNotRun) {
  EngineHarness h;
  ASSERT_OK(h.Build("FROM scratch\nONBUILD RUN make\nONBUILD LABEL child=1\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_THAT(img.config.config.on_build, ElementsAre("RUN make", "LABEL child=1"));
  EXPECT_TRUE(h.runner().calls().empty());
  EXPECT_TRUE(img.config.config.labels.empty());
}

TEST(ExecutorTest, OnbuildTriggersOfABaseImageRunFirstAndAreCleared) {
  EngineHarness h;
  oci::ImageConfig c;
  c.config.on_build = {"RUN make", "LABEL child=1"};
  ASSERT_OK(h.MakeImage("parent:latest", {{File("bin/sh", "sh", 0755)}}, c));
  h.runner().On("make").Write("/made", "by trigger");
  ASSERT_OK(h.Build("FROM parent\nLABEL own=1\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(h.runner().Runs("make"), 1);
  EXPECT_EQ(img.config.config.labels,
            (std::map<std::string, std::string>{{"child", "1"}, {"own", "1"}}));
  EXPECT_THAT(img.config.config.on_build, IsEmpty());
  EXPECT_EQ(h.ReadImageFile("/made"), "by trigger");
  EXPECT_FALSE(h.progress().Ran("ONBUILD").empty());
}

TEST(ExecutorTest, OnbuildTriggersOfAStageRunInTheStageBuiltFromIt) {
  EngineHarness h;
  ASSERT_OK(h.Build("FROM scratch AS tmpl\nONBUILD LABEL from=trigger\nFROM tmpl\nLABEL b=2\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels,
            (std::map<std::string, std::string>{{"from", "trigger"}, {"b", "2"}}));
  EXPECT_THAT(img.config.config.on_build, IsEmpty());
}

TEST(ExecutorTest, HistoryHasOneEntryPerInstructionExceptArg) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  h.Context("f", "x");
  h.runner().On("touch /x").Write("/x", "");
  ASSERT_OK(h.Build("FROM base\nARG A=1\nENV E=1\nCOPY f /f\nRUN touch /x\nRUN true\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  ASSERT_EQ(img.config.history.size(), 5u);
  std::vector<bool> empty;
  for (const auto& e : img.config.history) empty.push_back(e.empty_layer);
  EXPECT_THAT(empty, ElementsAre(false, true, false, false, true));
  EXPECT_THAT(img.config.history[1].created_by, HasSubstr("ENV E=1"));
  EXPECT_THAT(img.config.history[2].created_by, HasSubstr("COPY f /f"));
  EXPECT_THAT(img.config.history[3].created_by, HasSubstr("touch /x"));
  EXPECT_THAT(img.config.history[3].created_by, HasSubstr("A=1"));  // RUN shows its ARGs
  EXPECT_EQ(img.manifest.layers.size(), 3u);
}

TEST(ExecutorTest, TargetBuildsOnlyTheStagesItNeeds) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  BuildOptions o = h.options();
  o.target = "b";
  ASSERT_OK(h.Build(
      "FROM base AS a\nRUN build-a\nFROM base AS b\nRUN build-b\nFROM base\nRUN build-c\n", o));
  EXPECT_EQ(h.runner().Runs("build-a"), 0);
  EXPECT_EQ(h.runner().Runs("build-b"), 1);
  EXPECT_EQ(h.runner().Runs("build-c"), 0);
  o.target = "nope";
  auto r = h.Build("FROM base AS a\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("nope"));
}

TEST(ExecutorTest, PlatformArgsAreThePlansTargetAndBuildPlatform) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  BuildPlatform host = BuildPlatform::Host();
  ASSERT_OK(
      h.Build("FROM base\nARG TARGETARCH\nARG TARGETPLATFORM\nARG BUILDOS\n"
              "RUN echo $TARGETARCH\nLABEL t=$TARGETPLATFORM b=$BUILDOS\n"));
  const RunSpec* run = h.runner().LastCall("echo $TARGETARCH");
  ASSERT_NE(run, nullptr);
  EXPECT_THAT(run->env, ::testing::Contains("TARGETARCH=" + host.arch));
  EXPECT_THAT(run->env, ::testing::Contains("TARGETPLATFORM=" + host.ToString()));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels["t"], host.ToString());
  EXPECT_EQ(img.config.config.labels["b"], "linux");
}

TEST(ExecutorTest, PlatformArgsAreInvisibleUntilDeclared) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ASSERT_OK(h.Build("FROM base\nRUN echo $TARGETARCH\n"));
  const RunSpec* run = h.runner().LastCall("echo $TARGETARCH");
  ASSERT_NE(run, nullptr);
  for (const auto& e : run->env) EXPECT_FALSE(e.starts_with("TARGETARCH=")) << e;
}

TEST(ExecutorTest, EveryTagPointsAtTheBuiltManifest) {
  EngineHarness h;
  BuildOptions o = h.options();
  o.tags = {"one:1", "registry.example/two:2"};
  ASSERT_OK_AND_ASSIGN(auto r, h.Build("FROM scratch\nLABEL a=b\n", o));
  for (const auto& t : o.tags) {
    ASSERT_OK_AND_ASSIGN(auto d, h.store().Resolve(t));
    EXPECT_EQ(d.digest, r.manifest.digest) << t;
  }
  EXPECT_EQ(r.tags.size(), 2u);
  EXPECT_FALSE(h.store().Resolve("out:latest").has_value());
}

TEST(ExecutorTest, ABadTagFailsBeforeAnythingRuns) {
  EngineHarness h;
  BuildOptions o = h.options();
  o.tags = {"UPPER:case"};
  auto r = h.Build("FROM scratch\nRUN x\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(h.runner().calls().empty());
}

TEST(ExecutorTest, ParseErrorsNameTheLine) {
  EngineHarness h;
  auto r = h.Build("FROM scratch\nLABEL ok=1\nBOGUS thing\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:3"));
}

TEST(ExecutorTest, ContextMustBeADirectory) {
  EngineHarness h;
  BuildOptions o = h.options();
  o.context_dir = h.root() / "missing";
  auto r = h.Build("FROM scratch\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ExecutorTest, DockerfileIsReadFromTheContextByDefault) {
  EngineHarness h;
  h.Dockerfile("FROM scratch\nLABEL from=file\n");
  ASSERT_OK(h.Build());
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels["from"], "file");
}

TEST(ExecutorTest, InstructionsExpandEnvAndArgsAtDispatch) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  h.Context("conf/app.ini", "ini");
  ASSERT_OK(h.Build(
      "FROM base\nARG PORT=8080\nARG SUB=conf\nENV ROOT=/srv DIR=${SUB}\n"
      "WORKDIR $ROOT/app\nEXPOSE $PORT\nUSER ${BASE:-9}:$BASE\nCOPY $DIR/app.ini ${ROOT}/etc/\n"
      "LABEL path=\"$PATH\" unset=\"${NOPE:-dflt}\"\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.working_dir, "/srv/app");
  EXPECT_EQ(img.config.config.exposed_ports, std::set<std::string>{"8080/tcp"});
  EXPECT_EQ(img.config.config.user, "1:1");  // BASE=1 comes from the base image's ENV
  EXPECT_EQ(h.ReadImageFile("/srv/etc/app.ini"), "ini");
  EXPECT_EQ(img.config.config.labels["path"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(img.config.config.labels["unset"], "dflt");
}

TEST(ExecutorTest, ArgsReferToEarlierArgsAndMetaArgsNeedRedeclaring) {
  EngineHarness h;
  ASSERT_OK(
      h.Build("ARG V=1\nFROM scratch\nLABEL before=\"[$V]\"\nARG V\nARG W=${V}2\n"
              "LABEL after=$V w=$W\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.labels["before"], "[]");
  EXPECT_EQ(img.config.config.labels["after"], "1");
  EXPECT_EQ(img.config.config.labels["w"], "12");
}

TEST(ExecutorTest, ProgressNamesEveryStepWithItsStage) {
  EngineHarness h;
  ASSERT_OK(h.Build("FROM scratch AS first\nLABEL a=1\nFROM first\nLABEL b=2\n"));
  std::vector<std::string> names;
  for (const auto& s : h.progress().steps()) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre(HasSubstr("[first 1/2] FROM scratch AS first"),
                                 HasSubstr("[first 2/2] LABEL a=1"), HasSubstr("FROM first"),
                                 HasSubstr("LABEL b=2")));
  for (const auto& s : h.progress().steps()) EXPECT_TRUE(s.done) << s.name;
}

}  // namespace
}  // namespace strata::builder
