#include "builder/frontend/plan.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

ParseOptions Opts(std::map<std::string, std::string> build_args = {}, std::string target = "") {
  ParseOptions o;
  o.build_args = std::move(build_args);
  o.target = std::move(target);
  o.target_platform = {"linux", "arm64", ""};
  o.build_platform = {"linux", "amd64", ""};
  return o;
}

const PlanInstruction& Ins(const Plan& p, int stage, int i) {
  return p.stages[static_cast<size_t>(stage)].instructions[static_cast<size_t>(i)];
}

TEST(PlanTest, MetaArgsInFromAndRedeclaredInStage) {
  ASSERT_OK_AND_ASSIGN(Plan p, ParseDockerfile("ARG TAG=3.19\nARG IMG=alpine\n"
                                               "FROM ${IMG}:${TAG}\nARG TAG\nARG IMG\n"
                                               "LABEL tag=$TAG img=${IMG:-none}\n",
                                               Opts({{"TAG", "3.20"}})));
  EXPECT_EQ(p.stages[0].base.image, "alpine:3.20");
  EXPECT_EQ(p.meta_args, (std::vector<KeyValue>{{"TAG", "3.20"}, {"IMG", "alpine"}}));
  const auto& l = std::get<LabelCommand>(Ins(p, 0, 2).expanded.command).labels;
  EXPECT_EQ(l[0].value, "3.20");
  EXPECT_EQ(l[1].value, "alpine");
  EXPECT_TRUE(p.warnings.empty());
}

TEST(PlanTest, MetaArgNotVisibleWithoutRedeclaration) {
  ASSERT_OK_AND_ASSIGN(Plan p,
                       ParseDockerfile("ARG V=1\nFROM scratch\nLABEL v=\"[$V]\"\n", Opts()));
  EXPECT_EQ(std::get<LabelCommand>(Ins(p, 0, 0).expanded.command).labels[0].value, "[]");
}

TEST(PlanTest, EnvWinsOverArg) {
  ASSERT_OK_AND_ASSIGN(Plan p, ParseDockerfile("FROM scratch\nARG X=arg\nENV X=env\nWORKDIR /$X\n",
                                               Opts({{"X", "cli"}})));
  EXPECT_EQ(std::get<WorkdirCommand>(Ins(p, 0, 2).expanded.command).path, "/env");
}

TEST(PlanTest, PredefinedPlatformArgs) {
  ASSERT_OK_AND_ASSIGN(
      Plan p, ParseDockerfile("FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\n"
                              "ARG TARGETOS\nRUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build\n"
                              "WORKDIR /out/$TARGETARCH\n",
                              Opts()));
  EXPECT_EQ(p.stages[0].platform, "linux/amd64");
  EXPECT_EQ(std::get<WorkdirCommand>(Ins(p, 0, 3).expanded.command).path, "/out/arm64");
  EXPECT_EQ(Ins(p, 0, 2).created_by,
            "RUN |2 TARGETARCH=arm64 TARGETOS=linux /bin/sh -c GOOS=$TARGETOS "
            "GOARCH=$TARGETARCH go build # buildkit");
}

TEST(PlanTest, UnusedBuildArgWarnsAndProxyArgsStayOutOfHistory) {
  ASSERT_OK_AND_ASSIGN(
      Plan p,
      ParseDockerfile("FROM alpine\nARG USED\nRUN apk add curl\n",
                      Opts({{"USED", "1"}, {"UNUSED", "2"}, {"HTTP_PROXY", "http://proxy:3128"}})));
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0].message, "One or more build-args [UNUSED] were not consumed");
  EXPECT_EQ(p.proxy_args, (std::vector<KeyValue>{{"HTTP_PROXY", "http://proxy:3128"}}));
  EXPECT_EQ(Ins(p, 0, 1).created_by, "RUN |1 USED=1 /bin/sh -c apk add curl # buildkit");
}

TEST(PlanTest, BaseImageEnvLeftForDispatch) {
  // $PATH may come from the base image: the plan keeps it, the engine expands it.
  ASSERT_OK_AND_ASSIGN(Plan p, ParseDockerfile("FROM golang:1.22\nENV PATH=/go/bin:$PATH\n"
                                               "WORKDIR $GOPATH/src\n",
                                               Opts()));
  const PlanInstruction& wd = Ins(p, 0, 1);
  EXPECT_EQ(std::get<WorkdirCommand>(wd.expanded.command).path, "$GOPATH/src");
  std::vector<std::string> image_env = {"GOPATH=/go", "PATH=/usr/bin"};
  ASSERT_OK_AND_ASSIGN(Instruction at_dispatch,
                       ExpandInstruction(wd.raw, ShellLexer(), DispatchEnv(image_env, wd.args)));
  EXPECT_EQ(std::get<WorkdirCommand>(at_dispatch.command).path, "/go/src");
}

TEST(PlanTest, ScratchStagesExpandStrictly) {
  auto r = ParseDockerfile("FROM scratch\nWORKDIR ${DIR:?DIR must be set}\n", Opts());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "Dockerfile:2: failed to process \"${DIR:?DIR must be set}\": DIR: DIR must be set");
}

TEST(PlanTest, StageDependenciesAndTarget) {
  const char* text =
      "FROM golang AS build\nRUN go build\n"
      "FROM build AS test\nRUN go test\n"
      "FROM alpine AS unused\nRUN true\n"
      "FROM alpine\nCOPY --from=build /out /bin/\nRUN --mount=type=bind,from=test,target=/t ls\n";
  ASSERT_OK_AND_ASSIGN(Plan p, ParseDockerfile(text, Opts()));
  EXPECT_EQ(p.target, 3);
  EXPECT_EQ(p.build_order, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(p.stages[1].base.kind, StageBase::Kind::kStage);
  EXPECT_EQ(p.stages[3].depends_on, (std::vector<int>{0, 1}));
  EXPECT_FALSE(p.stages[2].needed);
  ASSERT_OK_AND_ASSIGN(Plan t, ParseDockerfile(text, Opts({}, "Build")));
  EXPECT_EQ(t.build_order, (std::vector<int>{0}));
  auto missing = ParseDockerfile(text, Opts({}, "nope"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "Dockerfile: target stage \"nope\" could not be found");
}

TEST(PlanTest, ExpansionErrorsInUnneededStagesAreIgnored) {
  const char* text = "FROM scratch AS broken\nWORKDIR ${X:?}\nFROM scratch\nWORKDIR /ok\n";
  ASSERT_OK(ParseDockerfile(text, Opts()));
  EXPECT_FALSE(ParseDockerfile(text, Opts({}, "broken")).has_value());
}

TEST(PlanTest, CopyFromEnvExpandedAndIndex) {
  ASSERT_OK_AND_ASSIGN(Plan p,
                       ParseDockerfile("ARG SRC=0\nFROM alpine\nFROM alpine\nARG SRC\n"
                                       "COPY --from=$SRC /a /b\nCOPY --from=nginx:latest /c /d\n",
                                       Opts()));
  EXPECT_EQ(p.stages[1].depends_on, (std::vector<int>{0}));
}

TEST(PlanTest, Errors) {
  auto msg = [](std::string_view text) {
    auto r = ParseDockerfile(text, Opts());
    EXPECT_FALSE(r.has_value()) << text;
    return r ? std::string() : r.error().message();
  };
  EXPECT_EQ(msg("RUN x\n"), "Dockerfile:1: no build stage in current context");
  EXPECT_EQ(msg("ARG A\n"), "Dockerfile:1: dockerfile contains no stages to build");
  EXPECT_EQ(msg("FROM a\nEXPOSE 80 hello\n"), "Dockerfile:2: invalid containerPort: hello");
  EXPECT_EQ(msg("FROM a\nEXPOSE 99999\n"), "Dockerfile:2: invalid containerPort: 99999");
  EXPECT_EQ(msg("FROM a\nEXPOSE 80/xyz\n"), "Dockerfile:2: invalid proto: xyz");
  EXPECT_EQ(msg("FROM a\nSTOPSIGNAL SIGNOPE\n"), "Dockerfile:2: invalid signal: SIGNOPE");
  EXPECT_EQ(msg("FROM a\nSTOPSIGNAL 0\n"), "Dockerfile:2: invalid signal: 0");
  EXPECT_TRUE(ParseDockerfile("FROM a\nSTOPSIGNAL sigterm\nSTOPSIGNAL 9\nSTOPSIGNAL RTMIN+3\n"
                              "EXPOSE 80 53/udp 8000-8002/tcp\n",
                              Opts())
                  .has_value());
  EXPECT_EQ(msg("ARG B\nFROM $B\n"), "Dockerfile:2: base name ($B) should not be blank");
  EXPECT_EQ(msg("FROM a AS x\nFROM b AS X\n"), "Dockerfile:2: duplicate stage name \"x\"");
  EXPECT_EQ(msg("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n"),
            "Dockerfile:4: circular dependency detected on stage: x");
  EXPECT_EQ(msg("FROM --platform=bogus a\n"),
            "Dockerfile:1: invalid platform \"bogus\": want os/arch[/variant]");
}

TEST(PlanTest, JsonIsDeterministic) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json a, ParseDockerfileToJson("FROM alpine\nRUN x\n", Opts()));
  ASSERT_OK_AND_ASSIGN(nlohmann::json b, ParseDockerfileToJson("FROM alpine\nRUN x\n", Opts()));
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_EQ(a["stages"][0]["instructions"][0]["created_by"], "RUN /bin/sh -c x # buildkit");
}

}  // namespace
}  // namespace strata::builder
