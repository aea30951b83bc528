// Base images as the engine meets them: layers with whiteouts, opaque
// directories, devices and hostile entries, references by digest, and the
// sources (views) that RUN and COPY read from them.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::testing::Contains;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;
using testing::IsRoot;
using ::testing::Not;
using testing::RawTar;

TEST(ExecutorBaseTest, WhiteoutsOfUpperBaseLayersHideLowerFiles) {
  EngineHarness h;
  ASSERT_OK(h.MakeImage("layered:1", {{File("a", "a"), File("d/x", "x"), File("keep", "k")},
                                      {testing::Whiteout("a"), testing::Whiteout("d")}}));
  std::optional<std::string> a, keep;
  h.runner().On("look").Read("/a", &a).Read("/keep", &keep).Write("/d/new", "n");
  ASSERT_OK(h.Build("FROM layered:1\nRUN look\n"));
  EXPECT_EQ(a, std::nullopt);
  EXPECT_EQ(keep, "k");
  EXPECT_EQ(h.Listing(), "d: dir 755\nd/new: file 644 n\nkeep: file 644 k\n");
}

TEST(ExecutorBaseTest, OpaqueDirectoriesOfABaseNeedRootToSnapshot) {
  EngineHarness h;
  ASSERT_OK(h.MakeImageFromTars(
      "opaque:1",
      {RawTar({{"d/", '5', "", 0755}, {"d/old", '0', "old"}}),
       RawTar({{"d/", '5', "", 0755}, {"d/.wh..wh..opq", '0', ""}, {"d/new", '0', "new"}})}));
  std::optional<std::string> old_file, new_file;
  h.runner().On("look").Read("/d/old", &old_file).Read("/d/new", &new_file);
  auto r = h.Build("FROM opaque:1\nRUN look\n");
  if (!IsRoot()) {
    // LIMITATION (reported): the overlay-form snapshot of an opaque
    // directory is marked with trusted.overlay.opaque, which only root may
    // set; an unprivileged build of such a base fails, and says why.
    ASSERT_FALSE(r.has_value());
    EXPECT_THAT(r.error().message(), HasSubstr("opaque"));
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(old_file, std::nullopt);
  EXPECT_EQ(new_file, "new");
  EXPECT_EQ(h.Listing(), "d: dir 755\nd/new: file 644 new\n");
}

TEST(ExecutorBaseTest, DevicesInABaseNeedRoot) {
  EngineHarness h;
  ASSERT_OK(h.MakeImageFromTars("dev:1", {RawTar({{"dev/", '5', "", 0755},
                                                  {"dev/null", '3', "", 0666, 1, 3},
                                                  {"bin/", '5', "", 0755},
                                                  {"bin/sh", '0', "sh", 0755}})}));
  h.runner().On("x").Write("/made", "m");
  auto r = h.Build("FROM dev:1\nRUN x\n");
  if (!IsRoot()) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_THAT(r.error().message(), HasSubstr("dev/null"));
    EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_OK_AND_ASSIGN(fs::path flat, h.Flatten());
  struct stat st;
  ASSERT_EQ(::lstat((flat / "dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(1, 3));
  EXPECT_EQ(h.ReadImageFile("/made"), "m");
}

TEST(ExecutorBaseTest, HostileBaseLayersStayInsideTheirSnapshot) {
  EngineHarness h;
  fs::path outside = h.root() / "host";
  fs::create_directories(outside);
  ASSERT_OK(h.MakeImageFromTars("hostile:1",
                                {RawTar({{"etc", '2', outside.string()}}),
                                 RawTar({{"etc/", '5', "", 0755}, {"etc/passwd", '0', "image"}})}));
  std::optional<std::string> passwd;
  h.runner().On("cat").Read("/etc/passwd", &passwd).Write("/etc/new", "n");
  ASSERT_OK(h.Build("FROM hostile:1\nRUN cat\n"));
  EXPECT_EQ(passwd, "image");
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_EQ(h.ReadImageFile("/etc/new"), "n");
  // A ".." entry makes the base unusable, with the layer named.
  ASSERT_OK(h.MakeImageFromTars("dotdot:1", {RawTar({{"../../../x", '0', "x"}})}));
  auto r = h.Build("FROM dotdot:1\nRUN cat\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
}

TEST(ExecutorBaseTest, FromAnImageByDigest) {
  EngineHarness h;
  ASSERT_OK_AND_ASSIGN(auto d, h.MakeBase());
  ASSERT_OK(h.Build(fmt::format("FROM base@{}\nLABEL pinned=1\n", d.digest.ToString())));
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_EQ(img.config.config.GetEnv("BASE"), "1");
  auto r = h.Build(fmt::format("FROM base@{}\n", oci::Digest::Of("nope").ToString()));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(ExecutorBaseTest, ACorruptBaseLayerBlobIsCaughtBeforeItIsUsed) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ASSERT_OK_AND_ASSIGN(auto img, h.Load("base:latest"));
  fs::path blob = h.store().BlobPath(img.manifest.layers[0].digest);
  // Same size, different bytes.
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(blob));
  bytes[bytes.size() / 2] ^= 0x55;
  ASSERT_EQ(::chmod(blob.c_str(), 0644), 0);
  ASSERT_OK(WriteFileAtomic(blob, bytes));
  auto r = h.Build("FROM base\nRUN x\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:1:"));
  EXPECT_TRUE(h.runner().calls().empty());
}

TEST(ExecutorBaseTest, BindMountFromAnImage) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ASSERT_OK(h.MakeImage("assets:1", {{File("share/logo.svg", "<svg/>")}}));
  std::optional<std::string> logo;
  h.runner().On("use").Read("/assets/share/logo.svg", &logo);
  ASSERT_OK(h.Build("FROM base\nRUN --mount=type=bind,from=assets:1,target=/assets use\n"));
  EXPECT_EQ(logo, "<svg/>");
  ASSERT_OK_AND_ASSIGN(auto img, h.Load());
  EXPECT_TRUE(img.config.history.back().empty_layer);
}

TEST(ExecutorBaseTest, CacheMountSeededFromAStageWithModeApplied) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  std::optional<std::string> seeded;
  h.runner().On("seed").Write("/deps/lock", "v1");
  h.runner().On("use").Read("/cache/lock", &seeded);
  ASSERT_OK(h.Build(
      "FROM base AS deps\nRUN seed\n"
      "FROM base\nRUN --mount=type=cache,target=/cache,from=deps,source=/deps,mode=0700 use\n"));
  EXPECT_EQ(seeded, "v1");
  const RunSpec* run = h.runner().LastCall("use");
  ASSERT_NE(run, nullptr);
  ASSERT_EQ(run->binds.size(), 1u);
  struct stat st;
  ASSERT_EQ(::stat(run->binds[0].source.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(ExecutorBaseTest, DockerfileSpecificIgnoreFileWins) {
  EngineHarness h;
  h.Context("a.txt", "a");
  h.Context("b.txt", "b");
  h.Context(".dockerignore", "a.txt\n");
  h.Context("build.Dockerfile", "FROM scratch\nCOPY *.txt /\n");
  h.Context("build.Dockerfile.dockerignore", "b.txt\n");
  BuildOptions o = h.options();
  o.dockerfile = h.context() / "build.Dockerfile";
  ASSERT_OK(h.Build("", o));
  EXPECT_EQ(h.LayerPaths(-1), std::vector<std::string>{"a.txt"});
  ASSERT_OK(h.Build("FROM scratch\nCOPY *.txt /\n"));
  EXPECT_EQ(h.LayerPaths(-1), std::vector<std::string>{"b.txt"});
}

TEST(ExecutorBaseTest, StageNamesAreCaseInsensitiveAndMustExist) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  h.runner().On("mk").Write("/o", "o");
  ASSERT_OK(h.Build("FROM base AS Builder\nRUN mk\nFROM scratch\nCOPY --from=BUILDER /o /o\n"));
  EXPECT_EQ(h.ReadImageFile("/o"), "o");
  // A name that is no stage is an image reference, which must exist.
  auto r = h.Build("FROM scratch\nCOPY --from=nosuchstage /o /o\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.error().message(), HasSubstr("nosuchstage"));
}

TEST(ExecutorBaseTest, CopyReplacesWhatTheImageHasAtTheDestination) {
  EngineHarness h;
  ASSERT_OK(h.MakeImage("occupied:1", {{File("x", "old file"), File("d/inner", "i")}}));
  h.Context("x", "new file");
  ASSERT_OK(h.Build("FROM occupied:1\nCOPY x /x\n"));
  EXPECT_EQ(h.ReadImageFile("/x"), "new file");
  h.Context("y", "into dir");
  ASSERT_OK(h.Build("FROM occupied:1\nCOPY y /d\n"));  // /d is a dir: copied into it
  EXPECT_EQ(h.ReadImageFile("/d/y"), "into dir");
  EXPECT_EQ(h.ReadImageFile("/d/inner"), "i");
}

TEST(ExecutorBaseTest, OnbuildCopyUsesTheChildsContext) {
  EngineHarness h;
  oci::ImageConfig c;
  c.config.on_build = {"COPY app.conf /etc/app.conf"};
  ASSERT_OK(h.MakeImage("framework:1", {{File("bin/sh", "")}}, c));
  h.Context("app.conf", "child config");
  ASSERT_OK(h.Build("FROM framework:1\n"));
  EXPECT_EQ(h.ReadImageFile("/etc/app.conf"), "child config");
  // A trigger that fails names the FROM line.
  auto r = h.Build("# the trigger runs at FROM\nFROM framework:1\n", [&] {
    BuildOptions o = h.options();
    o.context_dir = h.root() / "empty-context";
    fs::create_directories(o.context_dir);
    return o;
  }());
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.error().message(), HasSubstr("app.conf"));
}

}  // namespace
}  // namespace strata::builder
