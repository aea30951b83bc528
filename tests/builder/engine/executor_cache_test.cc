// The build cache, reproducibility and parallel stages on the hermetic
// harness: what a rebuild reuses, what invalidates a step and those after
// it, and when two builds give the same digest.
#include <sys/stat.h>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ExecutorCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(h_.MakeBase());
    h_.Context("f1", "one");
    h_.Context("f2", "two");
    h_.runner().On("step-a").Write("/a", "a");
    h_.runner().On("step-b").Write("/b", "b");
  }
  // Builds, then returns which of the given step names ran and were cached.
  Result<BuildResult> Rebuild(std::string_view text, const BuildOptions& o) {
    h_.progress().Clear();
    return h_.Build(text, o);
  }
  // The layer-making step names (RUN/COPY) that ran, in order, without the
  // "[stage-0 N/M] " prefix.
  std::vector<std::string> Ran() {
    std::vector<std::string> out;
    for (const auto& n : h_.progress().Ran()) {
      auto p = n.find("] ");
      std::string s = p == std::string::npos ? n : n.substr(p + 2);
      if (s.starts_with("RUN") || s.starts_with("COPY")) out.push_back(s);
    }
    return out;
  }
  std::vector<std::string> CachedSteps() {
    std::vector<std::string> out;
    for (const auto& n : h_.progress().Cached()) {
      auto p = n.find("] ");
      out.push_back(p == std::string::npos ? n : n.substr(p + 2));
    }
    return out;
  }

  static constexpr std::string_view kFile =
      "FROM base\nRUN step-a\nCOPY f1 /f1\nENV X=1\nRUN step-b\nCOPY f2 /f2\n";
  EngineHarness h_;
};

TEST_F(ExecutorCacheTest, AFullyCachedRebuildRunsNothingAndGivesTheSameDigest) {
  ASSERT_OK_AND_ASSIGN(auto first, Rebuild(kFile, h_.options()));
  EXPECT_EQ(first.cached_steps, 0);
  EXPECT_EQ(h_.runner().calls().size(), 2u);
  h_.SetNow(testing::kFixedNow + 3600);  // an hour later: history times come from the records
  ASSERT_OK_AND_ASSIGN(auto second, Rebuild(kFile, h_.options()));
  EXPECT_EQ(h_.runner().calls().size(), 2u);
  EXPECT_EQ(second.cached_steps, 4);
  EXPECT_THAT(Ran(), IsEmpty());
  EXPECT_EQ(second.manifest.digest, first.manifest.digest);
  EXPECT_EQ(second.config, first.config);
}

TEST_F(ExecutorCacheTest, NoCacheRunsEverythingAgain) {
  ASSERT_OK_AND_ASSIGN(auto first, Rebuild(kFile, h_.options()));
  h_.SetNow(testing::kFixedNow + 3600);
  BuildOptions o = h_.options();
  o.no_cache = true;
  ASSERT_OK_AND_ASSIGN(auto second, Rebuild(kFile, o));
  EXPECT_EQ(second.cached_steps, 0);
  EXPECT_EQ(h_.runner().calls().size(), 4u);
  EXPECT_THAT(Ran(), ElementsAre("RUN step-a", "COPY f1 /f1", "RUN step-b", "COPY f2 /f2"));
  // New history times.
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_NE(second.config, first.config);
  EXPECT_EQ(img.config.history.back().created, oci::FormatRfc3339(testing::kFixedNow + 3600));
}

TEST_F(ExecutorCacheTest, AChangedContextFileMissesItsStepAndEveryLaterOne) {
  ASSERT_OK(Rebuild(kFile, h_.options()));
  h_.Context("f1", "ONE");
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kFile, h_.options()));
  EXPECT_THAT(CachedSteps(), ::testing::Contains("RUN step-a"));
  EXPECT_THAT(Ran(), ElementsAre("COPY f1 /f1", "RUN step-b", "COPY f2 /f2"));
  EXPECT_EQ(r.cached_steps, 1);
  EXPECT_EQ(h_.ReadImageFile("/f1"), "ONE");
}

TEST_F(ExecutorCacheTest, SameContentWithANewMtimeStillHits) {
  ASSERT_OK(Rebuild(kFile, h_.options()));
  struct timespec t[2] = {{1800000000, 0}, {1800000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (h_.context() / "f2").c_str(), t, 0), 0);
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kFile, h_.options()));
  EXPECT_EQ(r.cached_steps, 4);
  // A mode change is a change.
  ASSERT_EQ(::chmod((h_.context() / "f2").c_str(), 0600), 0);
  ASSERT_OK(Rebuild(kFile, h_.options()));
  EXPECT_THAT(Ran(), ElementsAre("COPY f2 /f2"));
}

TEST_F(ExecutorCacheTest, ABuildArgChangeMissesFromWhereItIsDeclared) {
  std::string text = "FROM base\nRUN step-a\nARG V=1\nRUN step-b\n";
  ASSERT_OK(Rebuild(text, h_.options()));
  BuildOptions o = h_.options();
  o.build_args = {{"V", "2"}};
  ASSERT_OK(Rebuild(text, o));
  EXPECT_THAT(CachedSteps(), ::testing::Contains("RUN step-a"));
  EXPECT_THAT(Ran(), ElementsAre("RUN step-b"));
  // An undeclared build arg changes nothing (and is warned about).
  o.build_args = {{"V", "2"}, {"OTHER", "x"}};
  ASSERT_OK(Rebuild(text, o));
  EXPECT_THAT(Ran(), IsEmpty());
}

TEST_F(ExecutorCacheTest, MetadataStepsReproduceTheSameConfig) {
  std::string text =
      "FROM base\nENV A=1\nLABEL l=1\nEXPOSE 80\nCMD [\"x\"]\nUSER app\nWORKDIR /usr\n";
  ASSERT_OK_AND_ASSIGN(auto first, Rebuild(text, h_.options()));
  h_.SetNow(testing::kFixedNow + 86400);
  ASSERT_OK_AND_ASSIGN(auto second, Rebuild(text, h_.options()));
  EXPECT_EQ(second.config, first.config);
  EXPECT_EQ(second.manifest.digest, first.manifest.digest);
  // A changed label is a new config from that step on.
  ASSERT_OK_AND_ASSIGN(auto third, Rebuild("FROM base\nENV A=1\nLABEL l=2\n", h_.options()));
  EXPECT_NE(third.config, first.config);
}

TEST_F(ExecutorCacheTest, ADifferentBaseMissesEverything) {
  ASSERT_OK(Rebuild(kFile, h_.options()));
  oci::ImageConfig c;
  c.config.env = {"PATH=/bin"};
  ASSERT_OK(h_.MakeImage("base:latest", {{File("bin/sh", "new shell", 0755)}}, c));
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kFile, h_.options()));
  EXPECT_EQ(r.cached_steps, 0);
  EXPECT_EQ(h_.ReadImageFile("/bin/sh"), "new shell");
}

TEST_F(ExecutorCacheTest, AnotherCompressionMissesAndWritesThatFormat) {
  ASSERT_OK(Rebuild(kFile, h_.options()));
  BuildOptions o = h_.options();
  o.compression.compression = oci::Compression::kZstd;
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kFile, o));
  EXPECT_EQ(r.cached_steps, 0);
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_THAT(img.manifest.layers.back().media_type, HasSubstr("zstd"));
  EXPECT_EQ(h_.ReadImageFile("/f2"), "two");
}

TEST_F(ExecutorCacheTest, CacheRecordsOfTheBuildAreReported) {
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kFile, h_.options()));
  size_t layers = 0;
  for (const auto& [key, rec] : r.cache_records) layers += rec.empty_layer ? 0 : 1;
  EXPECT_EQ(layers, 4u);
  ASSERT_OK_AND_ASSIGN(auto again, Rebuild(kFile, h_.options()));
  ASSERT_EQ(again.cache_records.size(), r.cache_records.size());
  for (size_t i = 0; i < r.cache_records.size(); ++i) {
    EXPECT_EQ(again.cache_records[i].first, r.cache_records[i].first);
  }
}

TEST_F(ExecutorCacheTest, AFailedStepKeepsTheCacheOfTheStepsBeforeIt) {
  h_.runner().On("flaky").Exit(1);
  std::string text = "FROM base\nRUN step-a\nRUN flaky\n";
  ASSERT_FALSE(Rebuild(text, h_.options()).has_value());
  h_.runner().On("flaky").Exit(0);
  ASSERT_OK(Rebuild(text, h_.options()));
  EXPECT_THAT(CachedSteps(), ::testing::Contains("RUN step-a"));
  EXPECT_THAT(Ran(), ElementsAre("RUN flaky"));
}

TEST_F(ExecutorCacheTest, DockerignoreChangesInvalidateCopyOfTheContext) {
  h_.Context("junk.log", "j");
  std::string text = "FROM base\nCOPY . /src/\n";
  ASSERT_OK(Rebuild(text, h_.options()));
  EXPECT_TRUE(h_.ReadImageFile("/src/junk.log").has_value());
  h_.Context(".dockerignore", "*.log\n");
  ASSERT_OK(Rebuild(text, h_.options()));
  EXPECT_THAT(Ran(), ElementsAre("COPY . /src/"));
  EXPECT_FALSE(h_.ReadImageFile("/src/junk.log").has_value());
}

TEST_F(ExecutorCacheTest, SourceDateEpochMakesTwoStoresAgree) {
  EngineHarness other;
  ASSERT_OK(other.MakeBase());
  other.Context("f1", "one");
  other.Context("f2", "two");
  other.runner().On("step-a").Write("/a", "a");
  other.runner().On("step-b").Write("/b", "b");
  other.SetNow(testing::kFixedNow + 12345);
  BuildOptions o = h_.options();
  o.source_date_epoch = 1600000000;
  ASSERT_OK_AND_ASSIGN(auto a, h_.Build(kFile, o));
  BuildOptions o2 = other.options();
  o2.source_date_epoch = 1600000000;
  ASSERT_OK_AND_ASSIGN(auto b, other.Build(kFile, o2));
  EXPECT_EQ(a.manifest.digest, b.manifest.digest);
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_EQ(img.config.created, oci::FormatRfc3339(1600000000));
  for (const auto& hist : img.config.history) {
    if (hist.created_by.starts_with("test layer")) continue;
    EXPECT_EQ(hist.created, oci::FormatRfc3339(1600000000)) << hist.created_by;
  }
  // File times later than the epoch are clamped to it in the layers.
  for (const auto& e : h_.LayerEntries(-1)) EXPECT_LE(e.mtime, 1600000000) << e.name;
  // Without it the two stores' clocks differ, and so do the digests.
  BuildOptions fresh = h_.options();
  fresh.no_cache = true;
  ASSERT_OK_AND_ASSIGN(auto c, h_.Build(kFile, fresh));
  BuildOptions fresh2 = other.options();
  fresh2.no_cache = true;
  ASSERT_OK_AND_ASSIGN(auto d, other.Build(kFile, fresh2));
  EXPECT_NE(c.manifest.digest, d.manifest.digest);
}

// ENGINE BUG (reported): SOURCE_DATE_EPOCH is not part of any cache key
// (builder/engine/build.cc InitFromBase), so a build with it reuses the
// unclamped layers of an earlier build without it: the digest then depends
// on what the cache held. Enable once the epoch is keyed.
TEST_F(ExecutorCacheTest, SourceDateEpochAfterAPlainBuildStillClampsLayers) {
  ASSERT_OK(h_.Build(kFile, h_.options()));  // files dated 1700000000 in the layers
  BuildOptions o = h_.options();
  o.source_date_epoch = 1600000000;
  ASSERT_OK_AND_ASSIGN(auto r, h_.Build(kFile, o));
  for (const auto& e : h_.LayerEntries(-1)) EXPECT_LE(e.mtime, 1600000000) << e.name;
  EngineHarness clean;
  ASSERT_OK(clean.MakeBase());
  clean.Context("f1", "one");
  clean.Context("f2", "two");
  clean.runner().On("step-a").Write("/a", "a");
  clean.runner().On("step-b").Write("/b", "b");
  BuildOptions oc = clean.options();
  oc.source_date_epoch = 1600000000;
  ASSERT_OK_AND_ASSIGN(auto c, clean.Build(kFile, oc));
  EXPECT_EQ(r.manifest.digest, c.manifest.digest);
}

TEST_F(ExecutorCacheTest, SourceDateEpochAsABuildArg) {
  BuildOptions o = h_.options();
  o.build_args = {{"SOURCE_DATE_EPOCH", "1500000000"}};
  ASSERT_OK(h_.Build("FROM base\nRUN step-a\n", o));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_EQ(img.config.created, oci::FormatRfc3339(1500000000));
  o.build_args = {{"SOURCE_DATE_EPOCH", "yesterday"}};
  auto bad = h_.Build("FROM base\n", o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

constexpr std::string_view kParallel =
    "FROM base AS a\nRUN make-a\n"
    "FROM base AS b\nRUN make-b\n"
    "FROM base AS c\nRUN make-c\n"
    "FROM scratch\nCOPY --from=a /out /a\nCOPY --from=b /out /b\nCOPY --from=c /out /c\n";

void ScriptParallel(EngineHarness& h) {
  for (std::string s : {"a", "b", "c"}) {
    // Fixed mtimes: the files a step writes are otherwise dated by the wall
    // clock, and two builds a second apart would differ for that alone.
    h.runner()
        .On("make-" + s)
        .Write("/out/" + s + ".bin", "built " + s)
        .Touch("/out/" + s + ".bin", 1000)
        .Touch("/out", 1000);
  }
}

TEST(ExecutorParallelTest, IndependentStagesAllRunAndTheResultIsDeterministic) {
  EngineHarness h1, h2;
  std::string first_digest;
  for (EngineHarness* h : {&h1, &h2}) {
    ASSERT_OK(h->MakeBase());
    ScriptParallel(*h);
    ASSERT_OK_AND_ASSIGN(auto r, h->Build(kParallel));
    EXPECT_EQ(h->runner().calls().size(), 3u);
    EXPECT_EQ(h->runner().Runs("make-a") + h->runner().Runs("make-b") + h->runner().Runs("make-c"),
              3);
    EXPECT_EQ(h->ReadImageFile("/b/b.bin"), "built b");
    if (first_digest.empty()) {
      first_digest = r.manifest.digest.ToString();
    } else {
      EXPECT_EQ(r.manifest.digest.ToString(), first_digest);
    }
  }
  EXPECT_EQ(h1.Listing(),
            "a: dir 755\na/a.bin: file 644 built a\nb: dir 755\nb/b.bin: file 644 built b\n"
            "c: dir 755\nc/c.bin: file 644 built c\n");
}

TEST(ExecutorParallelTest, AFailingStageFailsTheBuildNamingItsLine) {
  EngineHarness h;
  ASSERT_OK(h.MakeBase());
  ScriptParallel(h);
  h.runner().On("make-b").Print("b broke").Exit(3);
  auto r = h.Build(kParallel);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:4:"));
  EXPECT_THAT(r.error().message(), HasSubstr("exit code 3"));
  EXPECT_FALSE(h.store().Resolve("out:latest").has_value());
}

// --no-cache-filter: the named stage runs again, the others still hit.
TEST_F(ExecutorCacheTest, NoCacheFilterRebuildsOnlyTheNamedStage) {
  constexpr std::string_view kTwo =
      "FROM base AS a\nRUN step-a\nFROM base AS b\nRUN step-b\nCOPY --from=a /a /from-a\n";
  ASSERT_OK(Rebuild(kTwo, h_.options()));
  EXPECT_THAT(Ran(), ElementsAre("RUN step-a", "RUN step-b", "COPY --from=a /a /from-a"));
  BuildOptions o = h_.options();
  o.no_cache_stages = {"A"};  // stage names are case-insensitive
  ASSERT_OK_AND_ASSIGN(auto r, Rebuild(kTwo, o));
  // b hits, also its COPY from the rebuilt stage, which made the same layer
  // (see the next test for one that did not).
  EXPECT_THAT(Ran(), ElementsAre("RUN step-a"));
  EXPECT_THAT(CachedSteps(), ElementsAre("RUN step-b", "COPY --from=a /a /from-a"));
  EXPECT_EQ(r.cached_steps, 2);
  // By index as well: stage 1 (b) runs again, a hits.
  o.no_cache_stages = {"1"};
  ASSERT_OK(Rebuild(kTwo, o));
  EXPECT_THAT(Ran(), ElementsAre("RUN step-b", "COPY --from=a /a /from-a"));
  EXPECT_THAT(CachedSteps(), ElementsAre("RUN step-a"));
}

// A stage FROM a rebuilt one never reuses steps cached on the old output.
TEST_F(ExecutorCacheTest, NoCacheFilterInvalidatesStagesBuiltOnTheRebuiltOne) {
  constexpr std::string_view kChain = "FROM base AS a\nRUN step-a\nFROM a\nRUN step-b\n";
  ASSERT_OK(Rebuild(kChain, h_.options()));
  EXPECT_EQ(h_.ReadImageFile("/a"), "a");
  h_.runner().On("step-a").Write("/a", "changed");
  BuildOptions o = h_.options();
  o.no_cache_stages = {"a"};
  ASSERT_OK(Rebuild(kChain, o));
  EXPECT_THAT(Ran(), ElementsAre("RUN step-a", "RUN step-b"));
  EXPECT_EQ(h_.ReadImageFile("/a"), "changed");
  EXPECT_EQ(h_.ReadImageFile("/b"), "b");
  // Without the filter the records written by that build are hits.
  ASSERT_OK(Rebuild(kChain, h_.options()));
  EXPECT_THAT(Ran(), IsEmpty());
}

TEST_F(ExecutorCacheTest, NoCacheFilterWithAnUnknownStageFailsBeforeAnyStep) {
  BuildOptions o = h_.options();
  o.no_cache_stages = {"a", "nosuch"};
  auto r = Rebuild("FROM base AS a\nRUN step-a\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("\"nosuch\""));
  EXPECT_THAT(r.error().message(), HasSubstr("stages: a"));
  EXPECT_TRUE(h_.runner().calls().empty());
}

}  // namespace
}  // namespace strata::builder
