// Multi-platform builds on the hermetic harness: one image per platform and
// an index, per-platform ARGs, FROM --platform, cache keys per platform, the
// emulation check (a fake binfmt_misc) and bases without the platform.
#include "builder/engine/multi_platform.h"

#include <set>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {

using ::strata::testing::StatusIs;
using ::testing::AllOf;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;

oci::Platform P(std::string_view s) { return *oci::Platform::Parse(s); }

// A fake binfmt_misc with a qemu-aarch64 handler registered with F (its
// "interpreter" exists: /bin/sh), or none.
struct FakeBinfmt {
  explicit FakeBinfmt(bool aarch64) {
    strata::testing::WriteTestFile(dir.path() / "register", "");
    if (aarch64) {
      strata::testing::WriteTestFile(dir.path() / "qemu-aarch64",
                                     "enabled\ninterpreter /bin/sh\nflags: POF\noffset 0\n");
    }
  }
  ScopedTempDir dir = *ScopedTempDir::Create();
};

// base:amd64 and base:arm64 (configs say so), one file naming the arch.
void MakeBases(EngineHarness& h) {
  for (std::string arch : {"amd64", "arm64"}) {
    oci::ImageConfig c;
    c.os = "linux";
    c.architecture = arch;
    c.config.env = {"PATH=/bin"};
    ASSERT_OK(h.MakeImage("base:" + arch, {{File("arch", arch), File("bin/sh", "sh", 0755)}}, c));
  }
}

oci::Index LoadIndex(EngineHarness& h, const oci::Descriptor& d) {
  auto bytes = h.store().ReadBlob(d.digest);
  EXPECT_TRUE(bytes.has_value());
  auto idx = oci::Index::Parse(bytes ? *bytes : "");
  EXPECT_TRUE(idx.has_value());
  return idx ? *idx : oci::Index{};
}

// The env of the recorded RUN whose script contains `script`, for `arch`.
std::vector<std::vector<std::string>> RunEnvs(EngineHarness& h, std::string_view script) {
  std::vector<std::vector<std::string>> out;
  for (const auto& spec : h.runner().calls()) {
    if (!spec.args.empty() && spec.args.back().find(script) != std::string::npos) {
      out.push_back(spec.env);
    }
  }
  return out;
}

TEST(ParsePlatformListTest, ParsesNormalizesAndDeduplicates) {
  auto ps = ParsePlatformList("linux/amd64, linux/arm64/v8,linux/arm64");
  ASSERT_OK(ps);
  ASSERT_EQ(ps->size(), 2u);
  EXPECT_EQ((*ps)[0].ToString(), "linux/amd64");
  EXPECT_EQ((*ps)[1].ToString(), "linux/arm64");
  EXPECT_THAT(ParsePlatformList("linux/foo"),
              StatusIs(ErrorCode::kInvalidArgument,
                       AllOf(HasSubstr("--platform"), HasSubstr("unknown architecture \"foo\""))));
  EXPECT_THAT(ParsePlatformList("windows/amd64"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("linux images only")));
  EXPECT_THAT(ParsePlatformList("linux/amd64,,linux/arm64"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("empty entry")));
  EXPECT_THAT(ParsePlatformList("amd64"), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(WriteImageIndexTest, DescriptorsCarryThePlatforms) {
  EngineHarness h;
  auto a = h.MakeBase("a:1");
  ASSERT_OK(a);
  auto d = WriteImageIndex(h.store(), {{P("linux/amd64"), *a}, {P("linux/arm64"), *a}}, {});
  ASSERT_OK(d);
  EXPECT_EQ(d->media_type, oci::media_type::kImageIndex);
  oci::Index idx = LoadIndex(h, *d);
  ASSERT_EQ(idx.manifests.size(), 2u);
  EXPECT_EQ(idx.manifests[1].platform->ToString(), "linux/arm64");
  EXPECT_EQ(idx.manifests[1].digest, a->digest);
  EXPECT_THAT(WriteImageIndex(h.store(), {{P("linux/amd64"), *a}, {P("linux/amd64"), *a}}, {}),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("twice")));
  EXPECT_THAT(WriteImageIndex(h.store(), {}, {}), StatusIs(ErrorCode::kInvalidArgument));
}

bool HasEnv(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}

TEST(MultiPlatformBuildTest, OneImagePerPlatformAndAnIndexTagged) {
  EngineHarness h;
  MakeBases(h);
  FakeBinfmt binfmt(true);
  h.options().binfmt_dir = binfmt.dir.path();
  h.runner().On("make").Write("/out", "built");
  auto r = h.BuildPlatforms(
      {P("linux/amd64"), P("linux/arm64")},
      "FROM base:${TARGETARCH}\nARG TARGETPLATFORM TARGETARCH BUILDARCH\nRUN make\n");
  ASSERT_OK(r);
  EXPECT_EQ(r->manifest.media_type, oci::media_type::kImageIndex);
  auto tagged = h.store().Resolve("out:latest");
  ASSERT_OK(tagged);
  EXPECT_EQ(tagged->digest, r->manifest.digest);
  oci::Index idx = LoadIndex(h, r->manifest);
  ASSERT_EQ(idx.manifests.size(), 2u);
  ASSERT_EQ(r->platform_images.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& m = idx.manifests[i];
    ASSERT_TRUE(m.platform.has_value());
    std::string arch = i == 0 ? "amd64" : "arm64";
    EXPECT_EQ(m.platform->ToString(), "linux/" + arch);
    auto img = h.store().LoadImage(m);
    ASSERT_OK(img);
    EXPECT_EQ(img->config.architecture, arch);
    EXPECT_EQ(img->config.os, "linux");
    // The base of each is that platform's image.
    auto base = h.Load("base:" + arch);
    ASSERT_OK(base);
    EXPECT_EQ(img->manifest.layers.at(0).digest, base->manifest.layers.at(0).digest);
    EXPECT_EQ(img->manifest.layers.size(), 2u);
  }
  EXPECT_NE(idx.manifests[0].digest, idx.manifests[1].digest);
  // The automatic ARGs per platform; BUILD* is this host.
  auto envs = RunEnvs(h, "make");
  ASSERT_EQ(envs.size(), 2u);
  const std::string build_arch = "BUILDARCH=" + oci::Platform::Host().architecture;
  int amd = 0, arm = 0;
  for (const auto& env : envs) {
    EXPECT_TRUE(HasEnv(env, build_arch));
    if (HasEnv(env, "TARGETARCH=amd64") && HasEnv(env, "TARGETPLATFORM=linux/amd64")) ++amd;
    if (HasEnv(env, "TARGETARCH=arm64") && HasEnv(env, "TARGETPLATFORM=linux/arm64")) ++arm;
  }
  EXPECT_EQ(amd, 1);
  EXPECT_EQ(arm, 1);
  // Progress names the platform of each step, ids unique across platforms:
  // FROM, ARG, RUN for each of the two.
  int arm_steps = 0;
  std::set<int> ids;
  for (const auto& st : h.progress().steps()) {
    arm_steps += st.name.starts_with("[linux/arm64] ") ? 1 : 0;
    ids.insert(st.id);
    EXPECT_TRUE(st.done) << st.name;
  }
  EXPECT_EQ(arm_steps, 3);
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(h.progress().steps().size(), 6u);
}

TEST(MultiPlatformBuildTest, CacheIsPerPlatform) {
  EngineHarness h;
  MakeBases(h);
  FakeBinfmt binfmt(true);
  h.options().binfmt_dir = binfmt.dir.path();
  h.runner().On("make").Write("/out", "built");
  // FROM scratch, no ARG: only the platform in the key tells them apart.
  const std::string df = "FROM scratch\nRUN make\n";
  auto first = h.BuildPlatforms({P("linux/amd64")}, df);
  ASSERT_OK(first);
  EXPECT_EQ(h.runner().calls().size(), 1u);
  auto both = h.BuildPlatforms({P("linux/amd64"), P("linux/arm64")}, df);
  ASSERT_OK(both);
  // amd64 hit the cache, arm64 ran: 2 calls in all.
  EXPECT_EQ(h.runner().calls().size(), 2u);
  EXPECT_EQ(both->cached_steps, 1);
  auto again = h.BuildPlatforms({P("linux/amd64"), P("linux/arm64")}, df);
  ASSERT_OK(again);
  EXPECT_EQ(h.runner().calls().size(), 2u);
  EXPECT_EQ(again->cached_steps, 2);
  EXPECT_EQ(again->manifest.digest, both->manifest.digest);
  oci::Index idx = LoadIndex(h, again->manifest);
  ASSERT_EQ(idx.manifests.size(), 2u);
  EXPECT_NE(idx.manifests[0].digest, idx.manifests[1].digest);
  // The records of both platforms are there for --cache-to.
  EXPECT_EQ(again->cache_records.size(), 2u);
}

TEST(MultiPlatformBuildTest, ForeignRunWithoutHandlerSaysWhatToRun) {
  EngineHarness h;
  MakeBases(h);
  FakeBinfmt binfmt(false);
  h.options().binfmt_dir = binfmt.dir.path();
  h.runner().On("make").Write("/out", "built");
  auto r = h.BuildPlatforms({P("linux/amd64"), P("linux/arm64")},
                            "FROM base:${TARGETARCH}\nARG TARGETARCH\nRUN make\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition,
                          AllOf(HasSubstr("linux/arm64"), HasSubstr("Dockerfile:3"),
                                HasSubstr("strata binfmt --install aarch64"))));
  EXPECT_THAT(h.store().Resolve("out:latest"), StatusIs(ErrorCode::kNotFound));
  // No arm64 command ran.
  for (const auto& env : RunEnvs(h, "make")) EXPECT_FALSE(HasEnv(env, "TARGETARCH=arm64"));
}

TEST(MultiPlatformBuildTest, CrossCompilationStageRunsNatively) {
  EngineHarness h;
  MakeBases(h);
  FakeBinfmt binfmt(false);  // no emulation available at all
  h.options().binfmt_dir = binfmt.dir.path();
  h.runner().On("make").Write("/out", "built");
  h.options().platform = P("linux/arm64");
  auto r = h.Build(
      "FROM --platform=$BUILDPLATFORM base:${BUILDARCH} AS build\n"
      "ARG TARGETARCH\n"
      "RUN make\n"
      "FROM base:${TARGETARCH}\n"
      "COPY --from=build /out /out\n");
  ASSERT_OK(r);
  // One platform: a plain image, not an index.
  EXPECT_EQ(r->manifest.media_type, oci::media_type::kImageManifest);
  auto img = h.Load();
  ASSERT_OK(img);
  EXPECT_EQ(img->config.architecture, "arm64");
  EXPECT_EQ(h.ReadImageFile("out"), "built");
  EXPECT_EQ(h.ReadImageFile("arch"), "arm64");
  auto envs = RunEnvs(h, "make");
  ASSERT_EQ(envs.size(), 1u);
  EXPECT_TRUE(HasEnv(envs[0], "TARGETARCH=arm64"));
}

TEST(MultiPlatformBuildTest, AStageSharedByThePlatformsRunsOnceAndIsRecordedOnce) {
  EngineHarness h;
  MakeBases(h);
  FakeBinfmt binfmt(false);  // no emulation: only the native stage runs
  h.options().binfmt_dir = binfmt.dir.path();
  h.runner().On("make").Write("/out", "built");
  auto r = h.BuildPlatforms({P("linux/amd64"), P("linux/arm64")},
                            "FROM --platform=$BUILDPLATFORM base:${BUILDARCH} AS build\n"
                            "RUN make\n"
                            "FROM base:${TARGETARCH}\n"
                            "COPY --from=build /out /out\n");
  ASSERT_OK(r);
  // The build stage has no TARGET* ARG: the same key for both targets; the
  // platforms run in parallel, so it ran once or twice, but is one record.
  EXPECT_GE(h.runner().calls().size(), 1u);
  std::set<std::string> keys;
  for (const auto& [k, rec] : r->cache_records) {
    EXPECT_TRUE(keys.insert(k.ToString()).second) << "record " << k.ToString() << " twice";
  }
}

TEST(MultiPlatformBuildTest, BaseWithoutThePlatformNamesRefAndOffers) {
  EngineHarness h;
  MakeBases(h);
  h.options().platform = P("linux/arm64");
  EXPECT_THAT(
      h.Build("FROM base:amd64\nENV A=1\n"),
      StatusIs(ErrorCode::kNotFound, AllOf(HasSubstr("Dockerfile:1"), HasSubstr("base:amd64"),
                                           HasSubstr("linux/amd64, not linux/arm64"))));
  auto amd = h.store().Resolve("base:amd64");
  ASSERT_OK(amd);
  auto idx = WriteImageIndex(h.store(), {{P("linux/amd64"), *amd}}, {});
  ASSERT_OK(idx);
  ASSERT_OK(h.store().Tag(*oci::Reference::Parse("only-amd:1"), *idx));
  EXPECT_THAT(h.Build("FROM only-amd:1\nENV A=1\n"),
              StatusIs(ErrorCode::kNotFound,
                       AllOf(HasSubstr("only-amd:1"), HasSubstr("no linux/arm64 image"),
                             HasSubstr("offers: linux/amd64"))));
  // The same index gives amd64 its image.
  h.options().platform = P("linux/amd64");
  EXPECT_OK(h.Build("FROM only-amd:1\nENV A=1\n"));
}

TEST(MultiPlatformBuildTest, DirectoryContextAsBaseIsTheTargetPlatform) {
  EngineHarness h;
  h.Context("ctxdir/hello", "hi");
  auto nc = ParseNamedContext("src=" + (h.context() / "ctxdir").string());
  ASSERT_OK(nc);
  h.options().named_contexts.emplace(nc->name, nc->context);
  h.options().platform = P("linux/arm64");
  ASSERT_OK(h.Build("FROM src\nENV A=1\n"));
  auto img = h.Load();
  ASSERT_OK(img);
  EXPECT_EQ(img->config.architecture, "arm64");
  EXPECT_EQ(h.ReadImageFile("hello"), "hi");
}

TEST(MultiPlatformBuildTest, UnknownFromPlatformIsAnError) {
  EngineHarness h;
  MakeBases(h);
  EXPECT_THAT(h.Build("FROM --platform=linux/foo base:amd64\nENV A=1\n"),
              StatusIs(ErrorCode::kInvalidArgument,
                       AllOf(HasSubstr("Dockerfile:1"), HasSubstr("unknown architecture"))));
}

}  // namespace
}  // namespace strata::builder
