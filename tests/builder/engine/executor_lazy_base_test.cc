// Lazy base layers on the hermetic harness: a FROM whose stage never reads
// the base's file system is resolved through BuildOptions::metadata_resolver
// and leaves the layers out of the store; whatever reads them later fetches
// them through BuildOptions::blob_fetcher.
#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "oci/blob_sources.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
using ::testing::ElementsAre;
using testing::EngineHarness;
using ::testing::HasSubstr;

// A registry stand-in: the base image made once, then its layer blobs taken
// out of the store (kept here) and its tag removed, as a metadata-only pull
// leaves it; each layer recorded as being at example.com/base.
class LazyBaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto desc = h_.MakeBase("example.com/base:1");
    ASSERT_TRUE(desc.has_value()) << desc.error().message();
    base_ = *desc;
    auto img = h_.store().LoadImage(base_);
    ASSERT_TRUE(img.has_value()) << img.error().message();
    layers_ = img->manifest.layers;
    for (const auto& l : layers_) {
      auto bytes = h_.store().ReadBlob(l.digest);
      ASSERT_TRUE(bytes.has_value());
      remote_[l.digest.ToString()] = *bytes;
    }
    ASSERT_OK(h_.store().Untag(*oci::Reference::Parse("example.com/base:1")));
    Evict();
  }
  // Removes the base's layer blobs from the store (the lazy state).
  void Evict() {
    for (const auto& l : layers_) {
      (void)h_.store().blobs().Delete(l.digest);
      ASSERT_OK(oci::RecordBlobSource(h_.store(), l.digest, {"example.com", "base"}));
    }
  }
  BuildOptions Options() {
    BuildOptions o = h_.options();
    o.resolver = [&](const oci::Reference& ref, const oci::Platform&) -> Result<oci::Descriptor> {
      asked_.push_back("full " + ref.Familiar());
      for (const auto& l : layers_) Fetch(l);
      return base_;
    };
    o.metadata_resolver = [&](const oci::Reference& ref,
                              const oci::Platform&) -> Result<oci::Descriptor> {
      asked_.push_back("metadata " + ref.Familiar());
      return base_;
    };
    o.blob_fetcher = [&](const oci::Descriptor& d) -> Status {
      fetched_.push_back(d.digest.ToString());
      Fetch(d);
      return OkStatus();
    };
    return o;
  }
  void Fetch(const oci::Descriptor& d) {
    auto put = h_.store().Put(remote_[d.digest.ToString()], d.media_type);
    EXPECT_TRUE(put.has_value());
  }
  bool HasBaseLayers() {
    for (const auto& l : layers_)
      if (!h_.store().Has(l.digest)) return false;
    return true;
  }

  EngineHarness h_;
  oci::Descriptor base_;
  std::vector<oci::Descriptor> layers_;
  std::map<std::string, std::string> remote_;
  std::vector<std::string> asked_;
  std::vector<std::string> fetched_;
};

TEST_F(LazyBaseTest, MetadataAndLinkedCopyFetchOnlyTheManifestAndConfig) {
  h_.Context("app", "app bytes");
  ASSERT_OK_AND_ASSIGN(auto r, h_.Build("FROM example.com/base:1\nCOPY --link app /app\n"
                                        "ENV A=1\nCMD [\"/app\"]\n",
                                        Options()));
  EXPECT_THAT(asked_, ElementsAre("metadata example.com/base:1"));
  EXPECT_TRUE(fetched_.empty());
  EXPECT_FALSE(HasBaseLayers());
  // The image references the base's layers, then its own.
  ASSERT_OK_AND_ASSIGN(auto img, h_.store().LoadImageMetadata(r.manifest));
  ASSERT_EQ(img.manifest.layers.size(), layers_.size() + 1);
  EXPECT_EQ(img.manifest.layers[0], layers_[0]);
  EXPECT_EQ(img.config.config.GetEnv("BASE"), "1");  // the base's config was read
  // A strict load names the absent layer and where it is.
  auto strict = h_.store().LoadImage(r.manifest);
  ASSERT_FALSE(strict.has_value());
  EXPECT_EQ(strict.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(strict.error().message(), HasSubstr(layers_[0].digest.ToString()));
  EXPECT_THAT(strict.error().message(), HasSubstr("example.com/base"));
  // fsck: a lazy layer with a recorded source is no problem.
  auto fsck = h_.store().Fsck();
  EXPECT_TRUE(fsck.ok()) << fsck.problems[0];
  EXPECT_EQ(fsck.lazy_layers, 1);
}

TEST_F(LazyBaseTest, TheSameImageBuiltWholeAndLazilyHasOneDigest) {
  h_.Context("app", "app bytes");
  const std::string df = "FROM example.com/base:1\nCOPY --link app /app\n";
  ASSERT_OK_AND_ASSIGN(auto lazy, h_.Build(df, Options()));
  BuildOptions whole = Options();
  whole.metadata_resolver = nullptr;  // lazy layers off
  whole.no_cache = true;
  ASSERT_OK_AND_ASSIGN(auto full, h_.Build(df, whole));
  EXPECT_EQ(lazy.manifest.digest, full.manifest.digest);
  EXPECT_TRUE(HasBaseLayers());
}

TEST_F(LazyBaseTest, StepsThatReadTheBaseFetchItWhole) {
  for (const std::string df :
       {"FROM example.com/base:1\nWORKDIR /w\n", "FROM example.com/base:1\nCOPY app /app\n",
        "FROM example.com/base:1\nCOPY --link --chown=root app /app\n"}) {
    SCOPED_TRACE(df);
    h_.Context("app", "app bytes");
    asked_.clear();
    ASSERT_OK(h_.Build(df, Options()));
    EXPECT_THAT(asked_, ElementsAre("full example.com/base:1"));
    EXPECT_TRUE(HasBaseLayers());
    Evict();
  }
}

TEST_F(LazyBaseTest, OnbuildTriggersOfTheBaseFetchItsLayers) {
  oci::ImageConfig c;
  c.config.on_build = {"RUN true"};
  ASSERT_OK_AND_ASSIGN(auto trig,
                       h_.MakeImage("example.com/trig:1", {{testing::File("a", "a")}}, c));
  ASSERT_OK_AND_ASSIGN(auto img, h_.store().LoadImage(trig));
  ASSERT_OK(h_.store().Untag(*oci::Reference::Parse("example.com/trig:1")));
  const oci::Descriptor layer = img.manifest.layers[0];
  ASSERT_OK_AND_ASSIGN(std::string bytes, h_.store().ReadBlob(layer.digest));
  remote_[layer.digest.ToString()] = bytes;
  ASSERT_OK(h_.store().blobs().Delete(layer.digest));
  ASSERT_OK(oci::RecordBlobSource(h_.store(), layer.digest, {"example.com", "trig"}));
  BuildOptions o = Options();
  o.metadata_resolver = [&](const oci::Reference&, const oci::Platform&) {
    return Result<oci::Descriptor>(trig);
  };
  ASSERT_OK(h_.Build("FROM example.com/trig:1\nENV A=1\n", o));
  EXPECT_THAT(fetched_, ElementsAre(layer.digest.ToString()));
  EXPECT_TRUE(h_.store().Has(layer.digest));
}

TEST_F(LazyBaseTest, ALaterBuildThatReadsALazyImageFetchesItsLayersOnDemand) {
  h_.Context("app", "app bytes");
  ASSERT_OK(h_.Build("FROM example.com/base:1\nCOPY --link app /app\n", Options()));
  ASSERT_FALSE(HasBaseLayers());
  BuildOptions o = Options();
  o.tags = {"second:1"};
  ASSERT_OK(h_.Build("FROM out:latest\nWORKDIR /w\n", o));
  EXPECT_EQ(fetched_.size(), layers_.size());
  EXPECT_TRUE(HasBaseLayers());
  EXPECT_EQ(h_.ReadImageFile("/app", "second:1"), "app bytes");
  EXPECT_EQ(h_.ReadImageFile("/bin/sh", "second:1"), "#!shell");
}

TEST_F(LazyBaseTest, WithoutAFetcherALazyLayerIsAClearError) {
  h_.Context("app", "app bytes");
  ASSERT_OK(h_.Build("FROM example.com/base:1\nCOPY --link app /app\n", Options()));
  BuildOptions o = h_.options();  // no blob_fetcher
  o.tags = {"second:1"};
  auto r = h_.Build("FROM out:latest\nWORKDIR /w\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr(layers_[0].digest.ToString()));
}

}  // namespace
}  // namespace strata::builder
