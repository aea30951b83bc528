#include "builder/frontend/base_use.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

// Whether the target stage (or `stage`) of `dockerfile` reads its base.
bool Reads(const std::string& dockerfile, int stage = -1, const std::string& target = "") {
  ParseOptions o;
  o.target = target;
  auto plan = ParseDockerfile(dockerfile, o);
  EXPECT_TRUE(plan.has_value()) << plan.error().message();
  if (!plan) return true;
  return StageReadsBaseFilesystem(*plan, stage < 0 ? plan->target : stage);
}

TEST(BaseUseTest, MetadataAndLinkedCopiesFromTheContextNeverReadTheBase) {
  EXPECT_FALSE(Reads("FROM debian\n"));
  EXPECT_FALSE(
      Reads("FROM debian\nARG V=1\nENV A=$V\nLABEL a=b\nCMD [\"app\"]\nENTRYPOINT [\"x\"]\n"
            "EXPOSE 80\nUSER 1000\nVOLUME /data\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\", \"-c\"]\n"
            "HEALTHCHECK NONE\nONBUILD RUN make\nMAINTAINER me\n"));
  EXPECT_FALSE(Reads("FROM debian\nCOPY --link app /app\nADD --link a.tar /srv/\n"));
  EXPECT_FALSE(Reads("FROM debian\nCOPY --link --chown=10:20 app /app\n"));
  EXPECT_FALSE(Reads("FROM debian\nCOPY --link --chown=10 app /app\n"));
}

TEST(BaseUseTest, StepsThatTouchTheRootReadTheBase) {
  EXPECT_TRUE(Reads("FROM debian\nRUN true\n"));
  EXPECT_TRUE(Reads("FROM debian\nWORKDIR /app\n"));
  // Without --link the destination resolves through the image's symlinks.
  EXPECT_TRUE(Reads("FROM debian\nCOPY app /app\n"));
  EXPECT_TRUE(Reads("FROM debian\nADD app.tar /app/\n"));
  // Names are looked up in the image's /etc/passwd; a variable may be one.
  EXPECT_TRUE(Reads("FROM debian\nCOPY --link --chown=app app /app\n"));
  EXPECT_TRUE(Reads("FROM debian\nCOPY --link --chown=1:staff app /app\n"));
  EXPECT_TRUE(Reads("FROM debian\nARG U=1\nCOPY --link --chown=$U app /app\n"));
  EXPECT_TRUE(Reads("FROM debian\nCOPY --link --from=alpine /etc/os-release /x\n"));
}

TEST(BaseUseTest, AStageOthersBuildOnCopyFromOrMountReadsItsBase) {
  EXPECT_TRUE(Reads("FROM debian AS base\nENV A=1\nFROM base\nENV B=1\n", 0));
  EXPECT_TRUE(Reads("FROM debian AS base\nENV A=1\nFROM scratch\nCOPY --from=base / /\n", 0));
  EXPECT_TRUE(Reads("FROM debian AS base\nFROM alpine\nRUN --mount=from=base,target=/b true\n", 0));
  // A stage the target does not need is not built at all; the target is
  // analysed on its own.
  EXPECT_FALSE(
      Reads("FROM debian AS base\nFROM alpine AS app\nENV A=1\nFROM base\nRUN true\n", 1, "app"));
}

TEST(BaseUseTest, OnlyImageBasesCanBeLazy) {
  EXPECT_TRUE(Reads("FROM scratch\nCOPY --link a /a\n"));
  EXPECT_TRUE(Reads("FROM debian AS a\nFROM a\nENV X=1\n", 1));  // a local stage
  ParseOptions o;
  auto plan = ParseDockerfile("FROM debian\n", o);
  ASSERT_TRUE(plan.has_value());
  EXPECT_TRUE(StageReadsBaseFilesystem(*plan, 5));
  EXPECT_TRUE(StageReadsBaseFilesystem(*plan, -1));
}

}  // namespace
}  // namespace strata::builder
