// registry/index_merge against the in-memory registry: merging images and
// indexes into one index (platform conflicts, annotations), gathering a
// registry source without downloading layers, and pushing the merged index
// with cross-repository mounts. Also pull --all-platforms and the push of an
// index whose children are remote (recorded, not in the store).
#include "registry/index_merge.h"

#include <gtest/gtest.h>

#include "oci/blob_sources.h"
#include "oci/image_index.h"
#include "tests/registry/client_fixture.h"

namespace strata::registry {
namespace {

namespace mt = oci::media_type;
using strata::testing::StatusIs;
using ::testing::HasSubstr;
using testing::LocalImage;

class IndexMergeTest : public testing::ClientFixture {
 protected:
  static MergeEntry Entry(const LocalImage& img, const std::string& platform,
                          const std::string& source) {
    MergeEntry e{img.manifest, source};
    e.descriptor.platform = *oci::Platform::Parse(platform);
    return e;
  }
  // Serves an index of `children` (with platforms) in `repo` under `tag`.
  std::string ServeIndex(const std::string& repo, const std::string& tag,
                         const std::vector<std::pair<LocalImage, std::string>>& children) {
    oci::Index idx;
    idx.media_type = std::string(mt::kImageIndex);
    for (const auto& [img, p] : children) {
      oci::Descriptor d = img.manifest;
      d.platform = *oci::Platform::Parse(p);
      idx.manifests.push_back(d);
    }
    return registry_.PutManifest(repo, tag, idx.Serialize(), std::string(mt::kImageIndex));
  }
  int LayerGets(const LocalImage& img) {
    return CountRequests("GET", "/blobs/" + img.layer.digest.ToString());
  }
};

TEST_F(IndexMergeTest, MergesPlatformsInOrderWithAnnotations) {
  LocalImage amd = MakeImage(*store_, "amd-layer", "", "amd64");
  LocalImage arm = MakeImage(*store_, "arm-layer", "", "arm64");
  ASSERT_OK_AND_ASSIGN(
      auto idx, MergeIndexes({Entry(amd, "linux/amd64", "a"), Entry(arm, "linux/arm64", "b")},
                             {{"org.example.k", "v"}}));
  EXPECT_EQ(idx.media_type, mt::kImageIndex);
  ASSERT_EQ(idx.manifests.size(), 2u);
  EXPECT_EQ(idx.manifests[0].digest, amd.manifest.digest);
  EXPECT_EQ(idx.manifests[1].platform->ToString(), "linux/arm64");
  EXPECT_EQ(idx.annotations.at("org.example.k"), "v");
}

TEST_F(IndexMergeTest, TheSamePlatformTwiceNamesBothSources) {
  LocalImage one = MakeImage(*store_, "one", "", "amd64");
  LocalImage two = MakeImage(*store_, "two", "", "amd64");
  EXPECT_THAT(
      MergeIndexes({Entry(one, "linux/amd64", "reg/a:1"), Entry(two, "linux/amd64", "reg/b:1")},
                   {}),
      StatusIs(ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("linux/amd64"), HasSubstr("reg/a:1"), HasSubstr("reg/b:1"))));
  // The same manifest from two sources is listed once.
  ASSERT_OK_AND_ASSIGN(auto idx, MergeIndexes({Entry(one, "linux/amd64", "reg/a:1"),
                                               Entry(one, "linux/amd64", "reg/a:latest")},
                                              {}));
  EXPECT_EQ(idx.manifests.size(), 1u);
  EXPECT_THAT(MergeIndexes({}, {}), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(IndexMergeTest, AnnotationsTakeKeyValueAndIndexPrefixOnly) {
  ASSERT_OK_AND_ASSIGN(auto kv, ParseIndexAnnotation("org.opencontainers.image.source=https://x"));
  EXPECT_EQ(kv.first, "org.opencontainers.image.source");
  EXPECT_EQ(kv.second, "https://x");
  ASSERT_OK_AND_ASSIGN(kv, ParseIndexAnnotation("index:k=v"));
  EXPECT_EQ(kv.first, "k");
  EXPECT_THAT(ParseIndexAnnotation("manifest:k=v"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("manifest")));
  EXPECT_THAT(ParseIndexAnnotation("novalue"), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(IndexMergeTest, GatherRemoteImagesReadsConfigsNeverLayersThenPushMounts) {
  LocalImage amd = ServeImage("app", "amd64", "amd-layer-bytes", "amd64");
  LocalImage arm = ServeImage("app", "arm64", "arm-layer-bytes", "arm64");
  std::vector<MergeEntry> entries;
  for (const char* tag : {"reg.example/app:amd64", "reg.example/app:arm64"}) {
    auto got = GatherRemote(client_->sessions(), *store_, Ref(tag));
    ASSERT_TRUE(got.has_value()) << got.error().message();
    entries.insert(entries.end(), got->begin(), got->end());
  }
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].descriptor.platform->ToString(), "linux/amd64");
  EXPECT_EQ(entries[1].descriptor.platform->ToString(), "linux/arm64");
  ASSERT_OK_AND_ASSIGN(auto idx, MergeIndexes(entries, {}));
  ASSERT_OK_AND_ASSIGN(auto desc, store_->Put(idx.Serialize(), std::string(mt::kImageIndex)));
  // Pushed to another repository of the same registry: every blob mounted.
  auto pushed = client_->Push(*store_, desc.digest.ToString(), Ref("reg.example/multi:1"), {});
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message();
  EXPECT_EQ(pushed->descriptor.digest, desc.digest);
  EXPECT_EQ(pushed->blobs_uploaded, 0);
  EXPECT_EQ(pushed->blobs_mounted, 4);  // two configs, two layers
  EXPECT_EQ(LayerGets(amd), 0);
  EXPECT_EQ(LayerGets(arm), 0);
  EXPECT_FALSE(store_->Has(amd.layer.digest));
  EXPECT_EQ(registry_.repo("multi").manifests.count("1"), 1u);
  EXPECT_EQ(registry_.repo("multi").manifests.count(arm.manifest.digest.ToString()), 1u);
}

TEST_F(IndexMergeTest, GatherRemoteIndexKeepsItsPlatformsAndSkipsAttestations) {
  LocalImage amd = ServeImage("app", "a", "amd-layer", "amd64");
  LocalImage att = ServeImage("app", "att", "attestation", "amd64");
  ServeIndex("app", "multi", {{amd, "linux/amd64"}, {att, "unknown/unknown"}});
  ASSERT_OK_AND_ASSIGN(auto got,
                       GatherRemote(client_->sessions(), *store_, Ref("reg.example/app:multi")));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].descriptor.digest, amd.manifest.digest);
  EXPECT_EQ(got[0].descriptor.platform->ToString(), "linux/amd64");
  // The platform came from the index: not even the config was fetched.
  EXPECT_EQ(CountRequests("GET", "/blobs/"), 0);
}

TEST_F(IndexMergeTest, GatherLocalTakesAnImagesConfigPlatform) {
  MakeImage(*store_, "arm-layer", "local:arm", "arm64");
  ASSERT_OK_AND_ASSIGN(auto got, GatherLocal(*store_, "local:arm"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].descriptor.platform->ToString(), "linux/arm64");
  EXPECT_EQ(got[0].source, "local:arm");
  EXPECT_THAT(GatherLocal(*store_, "local:nope"), StatusIs(ErrorCode::kNotFound));
}

TEST_F(IndexMergeTest, PullAllPlatformsFetchesEveryChildAndTagsTheIndex) {
  LocalImage amd = ServeImage("app", "a", "amd-layer", "amd64");
  LocalImage arm = ServeImage("app", "b", "arm-layer", "arm64");
  std::string idx = ServeIndex("app", "multi", {{amd, "linux/amd64"}, {arm, "linux/arm64"}});
  PullOptions opts;
  opts.all_platforms = true;
  auto pulled = client_->Pull(*store_, Ref("reg.example/app:multi"), opts);
  ASSERT_TRUE(pulled.has_value()) << pulled.error().message();
  EXPECT_EQ(pulled->manifest.digest.ToString(), idx);
  EXPECT_TRUE(store_->Has(arm.layer.digest));
  EXPECT_TRUE(store_->Has(amd.layer.digest));
  ASSERT_OK_AND_ASSIGN(auto tagged, store_->Resolve("reg.example/app:multi"));
  EXPECT_EQ(tagged.digest.ToString(), idx);
}

TEST_F(IndexMergeTest, PullOnePlatformRecordsTheOthersAsRemote) {
  LocalImage amd = ServeImage("app", "a", "amd-layer", "amd64");
  LocalImage arm = ServeImage("app", "b", "arm-layer", "arm64");
  ServeIndex("app", "multi", {{amd, "linux/amd64"}, {arm, "linux/arm64"}});
  PullOptions opts;
  opts.platform = *oci::Platform::Parse("linux/amd64");
  ASSERT_TRUE(client_->Pull(*store_, Ref("reg.example/app:multi"), opts).has_value());
  EXPECT_FALSE(store_->Has(arm.manifest.digest));
  ASSERT_OK_AND_ASSIGN(auto sources, oci::ReadBlobSources(*store_, arm.manifest.digest));
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].repository, "app");
}

TEST_F(IndexMergeTest, PushOfAnIndexWithARemoteChildFetchesItsManifestNotItsLayers) {
  LocalImage amd = MakeImage(*store_, "amd-layer", "", "amd64");
  LocalImage arm = ServeImage("app", "arm", "arm-layer", "arm64");
  ASSERT_OK(oci::RecordBlobSource(*store_, arm.manifest.digest, {"reg.example", "app"}));
  MergeEntry a = Entry(amd, "linux/amd64", "local");
  MergeEntry b = Entry(arm, "linux/arm64", "remote");
  ASSERT_OK_AND_ASSIGN(auto idx, MergeIndexes({a, b}, {}));
  ASSERT_OK_AND_ASSIGN(auto desc, store_->Put(idx.Serialize(), std::string(mt::kImageIndex)));
  auto pushed = client_->Push(*store_, desc.digest.ToString(), Ref("reg.example/multi:1"), {});
  ASSERT_TRUE(pushed.has_value()) << pushed.error().message();
  EXPECT_TRUE(store_->Has(arm.manifest.digest));  // fetched, verified
  EXPECT_EQ(LayerGets(arm), 0);                   // its layer was mounted
  EXPECT_EQ(registry_.repo("multi").blobs.count(arm.layer.digest.ToString()), 1u);
  EXPECT_EQ(registry_.repo("multi").blobs.count(amd.layer.digest.ToString()), 1u);
}

TEST_F(IndexMergeTest, PushOfAnIndexWithAnUnrecordedChildFailsNamingIt) {
  LocalImage amd = MakeImage(*store_, "amd-layer", "", "amd64");
  LocalImage ghost = ServeImage("elsewhere", "x", "ghost-layer", "arm64");
  ASSERT_OK_AND_ASSIGN(
      auto idx,
      MergeIndexes({Entry(amd, "linux/amd64", "a"), Entry(ghost, "linux/arm64", "b")}, {}));
  ASSERT_OK_AND_ASSIGN(auto desc, store_->Put(idx.Serialize(), std::string(mt::kImageIndex)));
  auto pushed = client_->Push(*store_, desc.digest.ToString(), Ref("reg.example/multi:1"), {});
  ASSERT_FALSE(pushed.has_value());
  EXPECT_THAT(pushed.error(),
              StatusIs(ErrorCode::kNotFound, HasSubstr(ghost.manifest.digest.ToString())));
  EXPECT_EQ(registry_.repo("multi").manifests.count("1"), 0u);  // never a partial index
}

}  // namespace
}  // namespace strata::registry
