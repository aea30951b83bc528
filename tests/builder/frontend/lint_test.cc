#include "builder/frontend/lint.h"

#include <gmock/gmock.h>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// "Rule@line: detail" for every warning.
std::vector<std::string> Lint(std::string_view text, const CheckOptions& o = {},
                              LintInputs in = {}) {
  auto ast = ParseAst(text);
  EXPECT_TRUE(ast.has_value()) << (ast ? "" : ast.error().message());
  if (!ast) return {};
  std::vector<std::string> out;
  for (const auto& w : RunChecks(*ast, o, in)) {
    out.push_back(fmt::format("{}@{}: {}", w.rule, w.start_line, w.detail));
  }
  return out;
}

TEST(LintTest, CleanDockerfileHasNoWarnings) {
  EXPECT_THAT(Lint("FROM alpine AS build\nWORKDIR /src\nENV A=1\nLABEL a=b\nCMD [\"x\"]\n"),
              IsEmpty());
}

TEST(LintTest, StageNameCasing) {
  EXPECT_THAT(Lint("FROM alpine AS Build\n"),
              ElementsAre("StageNameCasing@1: Stage name 'Build' should be lowercase"));
}

TEST(LintTest, FromAsCasing) {
  EXPECT_THAT(Lint("FROM alpine as build\n"),
              ElementsAre("FromAsCasing@1: 'as' and 'FROM' keywords' casing do not match"));
  EXPECT_THAT(Lint("from alpine AS build\n"),
              ElementsAre("FromAsCasing@1: 'AS' and 'from' keywords' casing do not match"));
  EXPECT_THAT(Lint("from alpine as build\n"), IsEmpty());
}

TEST(LintTest, ConsistentInstructionCasingFollowsTheMajority) {
  EXPECT_THAT(Lint("FROM alpine\nRUN a\nrun b\n"),
              ElementsAre("ConsistentInstructionCasing@3: Command 'run' should match the case of "
                          "the command majority (uppercase)"));
  EXPECT_THAT(Lint("from alpine\nrun a\nRun b\n"),
              ElementsAre("ConsistentInstructionCasing@3: Command 'Run' should match the case of "
                          "the command majority (lowercase)"));
}

TEST(LintTest, DuplicateAndReservedStageNames) {
  EXPECT_THAT(Lint("FROM alpine AS a\nFROM alpine AS a\n"),
              ElementsAre("DuplicateStageName@2: Duplicate stage name \"a\", stage names should "
                          "be unique"));
  EXPECT_THAT(Lint("FROM alpine AS scratch\n"),
              ElementsAre("ReservedStageName@1: Stage name should not use the same name as "
                          "reserved stage \"scratch\""));
}

TEST(LintTest, JsonArgsRecommendedUnlessShellIsSet) {
  EXPECT_THAT(Lint("FROM alpine\nENTRYPOINT run me\n"),
              ElementsAre("JSONArgsRecommended@2: JSON arguments recommended for ENTRYPOINT to "
                          "prevent unintended behavior related to OS signals"));
  EXPECT_THAT(Lint("FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nCMD run me\n"), IsEmpty());
}

TEST(LintTest, MaintainerDeprecated) {
  EXPECT_THAT(Lint("FROM alpine\nMAINTAINER me\n"),
              ElementsAre("MaintainerDeprecated@2: Maintainer instruction is deprecated in favor "
                          "of using label"));
}

TEST(LintTest, UndefinedArgInFromSuggestsTheDeclaredOne) {
  EXPECT_THAT(Lint("ARG VERSION=1\nFROM alpine${VERSON}\n"),
              ElementsAre("UndefinedArgInFrom@2: FROM argument 'VERSON' is not declared (did you "
                          "mean VERSION?)"));
  // The platform ARGs are always there for FROM.
  EXPECT_THAT(Lint("FROM --platform=$BUILDPLATFORM alpine\n"), IsEmpty());
}

TEST(LintTest, WorkdirRelativePathOnlyBeforeAnAbsoluteOne) {
  EXPECT_THAT(Lint("FROM alpine\nWORKDIR app\n"),
              ElementsAre("WorkdirRelativePath@2: Relative workdir \"app\" can have unexpected "
                          "results if the base image changes"));
  EXPECT_THAT(Lint("FROM alpine AS a\nWORKDIR /src\nFROM a\nWORKDIR app\n"), IsEmpty());
}

TEST(LintTest, UndefinedVarWhenTheBaseEnvIsKnown) {
  LintInputs in;
  in.image_env = [](const std::string& image) -> std::optional<std::vector<std::string>> {
    if (image == "alpine") return std::vector<std::string>{"PATH=/bin"};
    return std::nullopt;
  };
  EXPECT_THAT(Lint("FROM alpine\nARG NAME\nCOPY $NAM /x\nENV P=$PATH\n", {}, in),
              ElementsAre("UndefinedVar@3: Usage of undefined variable '$NAM' (did you mean "
                          "$NAME?)"));
  // An image whose ENV is not known locally: not checked (BuildKit would pull).
  EXPECT_THAT(Lint("FROM debian\nCOPY $NAM /x\n", {}, in), IsEmpty());
  // scratch's ENV is known: PATH only.
  EXPECT_THAT(Lint("FROM scratch\nCOPY $X /x\n"),
              ElementsAre("UndefinedVar@2: Usage of undefined variable '$X'"));
}

TEST(LintTest, MultipleInstructionsDisallowedPerStage) {
  EXPECT_THAT(Lint("FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\nFROM alpine\nCMD [\"c\"]\n"),
              ElementsAre("MultipleInstructionsDisallowed@2: Multiple CMD instructions should not "
                          "be used in the same stage because only the last one will be used"));
}

TEST(LintTest, LegacyKeyValueFormat) {
  EXPECT_THAT(Lint("FROM alpine\nENV A 1\nLABEL x y\n"),
              ElementsAre("LegacyKeyValueFormat@2: \"ENV key=value\" should be used instead of "
                          "legacy \"ENV key value\" format",
                          "LegacyKeyValueFormat@3: \"LABEL key=value\" should be used instead of "
                          "legacy \"LABEL key value\" format"));
}

TEST(LintTest, SecretsUsedInArgOrEnv) {
  EXPECT_THAT(Lint("ARG GITHUB_TOKEN\nFROM alpine\nENV DB_PASSWORD=x\nENV PUBLIC_KEY=y\n"),
              ElementsAre("SecretsUsedInArgOrEnv@1: Do not use ARG or ENV instructions for "
                          "sensitive data (ARG \"GITHUB_TOKEN\")",
                          "SecretsUsedInArgOrEnv@3: Do not use ARG or ENV instructions for "
                          "sensitive data (ENV \"DB_PASSWORD\")"));
}

TEST(LintTest, InvalidDefaultArgInFrom) {
  EXPECT_THAT(Lint("ARG TAG\nFROM alpine:${TAG}\n"),
              ElementsAre("InvalidDefaultArgInFrom@2: Default value for ARG alpine:${TAG} results "
                          "in empty or invalid base image name"));
  EXPECT_THAT(Lint("ARG TAG=3.19\nFROM alpine:${TAG}\n"), IsEmpty());
}

TEST(LintTest, PredefinedPlatformArgsInFromAreValidDefaults) {
  // BuildKit's automatic ARGs always have a value: a base per architecture
  // (`FROM busybox:${TARGETARCH}`) is not an invalid default.
  EXPECT_THAT(Lint("FROM busybox:${TARGETARCH}\n"), IsEmpty());
  EXPECT_THAT(Lint("FROM busybox:$BUILDOS-$BUILDARCH\n"), IsEmpty());
}

TEST(LintTest, FromPlatformFlags) {
  EXPECT_THAT(Lint("FROM --platform=linux/amd64 alpine\n"),
              ElementsAre("FromPlatformFlagConstDisallowed@1: FROM --platform flag should not use "
                          "constant value \"linux/amd64\""));
  EXPECT_THAT(Lint("FROM --platform=$TARGETPLATFORM alpine\n"),
              ElementsAre("RedundantTargetPlatform@1: Setting platform to predefined "
                          "$TARGETPLATFORM in FROM is redundant as this is the default behavior"));
}

TEST(LintTest, CopyIgnoredFileIsExperimental) {
  ASSERT_OK_AND_ASSIGN(auto ignore, DockerIgnore::Parse("secret.txt\n", ".dockerignore"));
  LintInputs in;
  in.ignore = &ignore;
  const char* df = "FROM alpine\nCOPY secret.txt /x\n";
  EXPECT_THAT(Lint(df, {}, in), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto o, ParseCheckOptions("experimental=CopyIgnoredFile"));
  EXPECT_THAT(Lint(df, o, in), ElementsAre("CopyIgnoredFile@2: Attempting to Copy file "
                                           "\"secret.txt\" that is excluded by .dockerignore"));
}

TEST(LintTest, SkipAndErrorOptions) {
  ASSERT_OK_AND_ASSIGN(auto o,
                       ParseCheckOptions("skip=MaintainerDeprecated, StageNameCasing;error=true"));
  EXPECT_TRUE(o.error);
  EXPECT_THAT(Lint("FROM alpine AS Build\nMAINTAINER me\n", o), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto all, ParseCheckOptions("skip=all"));
  EXPECT_THAT(Lint("FROM alpine AS Build\n", all), IsEmpty());
  EXPECT_FALSE(ParseCheckOptions("error=maybe").has_value());
  auto bad = ParseCheckOptions("colour=red");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("unknown option \"colour\""));
}

TEST(LintTest, ReportAndErrorFormats) {
  std::string text = "FROM alpine AS Build\nMAINTAINER me\n";
  auto ast = ParseAst(text);
  ASSERT_TRUE(ast.has_value());
  auto warnings = RunChecks(*ast, {}, {});
  ASSERT_EQ(warnings.size(), 2u);
  std::string report = FormatCheckReport(warnings, "Dockerfile", text);
  EXPECT_THAT(report, HasSubstr("Check complete, 2 warnings have been found!\n"));
  EXPECT_THAT(report, HasSubstr("\nWARNING: StageNameCasing - "
                                "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\n"
                                "Stage name 'Build' should be lowercase\nDockerfile:1\n"));
  EXPECT_THAT(report, HasSubstr("   2 | >>> MAINTAINER me\n"));
  EXPECT_EQ(FormatCheckReport({}, "Dockerfile", text), "Check complete, no warnings found.\n");
  EXPECT_EQ(CheckErrorMessage(warnings),
            "lint violation found for rules: MaintainerDeprecated, StageNameCasing");
  EXPECT_EQ(FormatCheckLine(warnings[0]),
            " - StageNameCasing: Stage name 'Build' should be lowercase (line 1)");
}

}  // namespace
}  // namespace strata::builder
