#include "oci/image_index.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "oci/blob_sources.h"
#include "oci/media_types.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

using strata::testing::IsOk;
using strata::testing::StatusIs;
using ::testing::HasSubstr;

class ImageIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strata::testing::MakeTempDir();
    auto s = Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }

  // A one-layer image for `arch` in the store (untagged).
  Descriptor MakeImage(const std::string& arch) {
    auto layer = store_->Put("layer-" + arch, std::string(media_type::kLayerTarGzip));
    EXPECT_TRUE(layer.has_value());
    nlohmann::json cfg = {
        {"architecture", arch},
        {"os", "linux"},
        {"rootfs", {{"type", "layers"}, {"diff_ids", {Digest::Of("diff-" + arch).ToString()}}}}};
    auto config = store_->Put(cfg.dump(), std::string(media_type::kImageConfig));
    EXPECT_TRUE(config.has_value());
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", media_type::kImageManifest},
                        {"config",
                         {{"mediaType", media_type::kImageConfig},
                          {"digest", config->digest.ToString()},
                          {"size", config->size}}},
                        {"layers",
                         {{{"mediaType", media_type::kLayerTarGzip},
                           {"digest", layer->digest.ToString()},
                           {"size", layer->size}}}}};
    auto manifest = store_->Put(m.dump(), std::string(media_type::kImageManifest));
    EXPECT_TRUE(manifest.has_value());
    return *manifest;
  }

  // An index of `children` (each with its platform), tagged `tag`.
  Descriptor MakeIndex(const std::vector<std::pair<Descriptor, std::string>>& children,
                       const std::string& tag) {
    Index idx;
    idx.media_type = std::string(media_type::kImageIndex);
    for (const auto& [d, p] : children) {
      Descriptor c = Descriptor::Of(std::string(media_type::kImageManifest), d.digest, d.size);
      c.platform = *Platform::Parse(p);
      idx.manifests.push_back(c);
    }
    auto desc = store_->Put(idx.Serialize(), std::string(media_type::kImageIndex));
    EXPECT_TRUE(desc.has_value());
    EXPECT_TRUE(store_->Tag(*Reference::Parse(tag), *desc).has_value());
    return *desc;
  }

  // A manifest descriptor the store does not have.
  static Descriptor Absent(const std::string& salt) {
    return Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of(salt), 100);
  }

  ScopedTempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ImageIndexTest, ReadIndexViewIsEmptyForAPlainManifest) {
  Descriptor m = MakeImage("amd64");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, m));
  EXPECT_FALSE(view.has_value());
}

TEST_F(ImageIndexTest, ReadIndexViewListsChildrenLocalAndRemote) {
  Descriptor amd = MakeImage("amd64");
  Descriptor remote = Absent("arm64-manifest");
  ASSERT_OK(RecordBlobSource(*store_, remote.digest, {"127.0.0.1:5000", "app"}));
  Descriptor idx = MakeIndex({{amd, "linux/amd64"}, {remote, "linux/arm64"}}, "app:multi");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->children.size(), 2u);
  EXPECT_TRUE(view->children[0].local);
  EXPECT_FALSE(view->children[1].local);
  ASSERT_EQ(view->children[1].sources.size(), 1u);
  EXPECT_EQ(view->children[1].sources[0].repository, "app");
  EXPECT_EQ(view->PlatformList(), "linux/amd64, linux/arm64");
}

TEST_F(ImageIndexTest, PickWithPlatformFindsTheChild) {
  Descriptor amd = MakeImage("amd64");
  Descriptor arm = MakeImage("arm64");
  Descriptor idx = MakeIndex({{amd, "linux/amd64"}, {arm, "linux/arm64"}}, "app:multi");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  ASSERT_OK_AND_ASSIGN(auto pick,
                       PickIndexChild(*view, "app:multi", *Platform::Parse("linux/arm64")));
  EXPECT_EQ(pick.digest, arm.digest);
}

TEST_F(ImageIndexTest, PickOfAMissingPlatformNamesRefAndListsPlatforms) {
  Descriptor amd = MakeImage("amd64");
  Descriptor arm = MakeImage("arm64");
  Descriptor idx = MakeIndex({{amd, "linux/amd64"}, {arm, "linux/arm64"}}, "app:multi");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  EXPECT_THAT(PickIndexChild(*view, "app:multi", *Platform::Parse("linux/s390x")),
              StatusIs(ErrorCode::kNotFound, AllOf(HasSubstr("app:multi"), HasSubstr("linux/s390x"),
                                                   HasSubstr("linux/amd64, linux/arm64"))));
}

TEST_F(ImageIndexTest, PickWithoutPlatformTakesTheOneHostChild) {
  Platform host = Platform::Host();
  Descriptor mine = MakeImage(host.architecture);
  std::string other_arch = host.architecture == "s390x" ? "ppc64le" : "s390x";
  Descriptor other = MakeImage(other_arch);
  Descriptor idx = MakeIndex({{other, "linux/" + other_arch}, {mine, host.ToString()}}, "app:m");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  ASSERT_OK_AND_ASSIGN(auto pick, PickIndexChild(*view, "app:m", std::nullopt));
  EXPECT_EQ(pick.digest, mine.digest);
}

TEST_F(ImageIndexTest, PickWithoutPlatformFailsWhenNoneMatchesTheHost) {
  Descriptor a = MakeImage("s390x");
  Descriptor b = MakeImage("ppc64le");
  Descriptor idx = MakeIndex({{a, "linux/s390x"}, {b, "linux/ppc64le"}}, "app:foreign");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  EXPECT_THAT(PickIndexChild(*view, "app:foreign", std::nullopt),
              StatusIs(ErrorCode::kInvalidArgument,
                       AllOf(HasSubstr("app:foreign"), HasSubstr("linux/s390x, linux/ppc64le"),
                             HasSubstr("--platform"))));
}

TEST_F(ImageIndexTest, PickOfARemoteChildSaysWhereItIs) {
  Descriptor amd = MakeImage("amd64");
  Descriptor remote = Absent("arm64-manifest");
  ASSERT_OK(RecordBlobSource(*store_, remote.digest, {"127.0.0.1:5000", "app"}));
  Descriptor idx = MakeIndex({{amd, "linux/amd64"}, {remote, "linux/arm64"}}, "app:multi");
  ASSERT_OK_AND_ASSIGN(auto view, ReadIndexView(*store_, idx));
  EXPECT_THAT(PickIndexChild(*view, "app:multi", *Platform::Parse("linux/arm64")),
              StatusIs(ErrorCode::kFailedPrecondition, AllOf(HasSubstr(remote.digest.ToString()),
                                                             HasSubstr("127.0.0.1:5000/app"))));
}

TEST_F(ImageIndexTest, LoadOneImageOfAPlainImageChecksTheRequestedPlatform) {
  Descriptor arm = MakeImage("arm64");
  ASSERT_OK(store_->Tag(*Reference::Parse("app:arm"), arm));
  ASSERT_OK_AND_ASSIGN(auto img,
                       LoadOneImage(*store_, "app:arm", *Platform::Parse("linux/arm64"), false));
  EXPECT_EQ(img.descriptor.digest, arm.digest);
  EXPECT_THAT(LoadOneImage(*store_, "app:arm", *Platform::Parse("linux/amd64"), false),
              StatusIs(ErrorCode::kNotFound, HasSubstr("linux/arm64, not linux/amd64")));
}

TEST_F(ImageIndexTest, LoadOneImageThroughAnIndexRecordsTheIndex) {
  Descriptor amd = MakeImage("amd64");
  Descriptor arm = MakeImage("arm64");
  Descriptor idx = MakeIndex({{amd, "linux/amd64"}, {arm, "linux/arm64"}}, "app:multi");
  ASSERT_OK_AND_ASSIGN(auto img,
                       LoadOneImage(*store_, "app:multi", *Platform::Parse("linux/arm64"), false));
  EXPECT_EQ(img.descriptor.digest, arm.digest);
  ASSERT_TRUE(img.index.has_value());
  EXPECT_EQ(img.index->digest, idx.digest);
  EXPECT_EQ(img.config.architecture, "arm64");
}

TEST_F(ImageIndexTest, UnknownPlatformsAreRefusedByName) {
  EXPECT_THAT(ParseKnownPlatform("linux/amd64"), IsOk());
  EXPECT_THAT(ParseKnownPlatform("linux/arm/v7"), IsOk());
  EXPECT_THAT(ParseKnownPlatform("linux/arm64/v8"), IsOk());
  EXPECT_THAT(ParseKnownPlatform("linux/bogus"),
              StatusIs(ErrorCode::kInvalidArgument,
                       AllOf(HasSubstr("--platform"), HasSubstr("\"bogus\""))));
  EXPECT_THAT(ParseKnownPlatform("plan10/amd64"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("\"plan10\"")));
  EXPECT_THAT(ParseKnownPlatform("linux/amd64/v9"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("variant")));
  EXPECT_THAT(ParseKnownPlatform("linux"), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(ImageIndexTest, FsckAndPruneKeepChildrenAndCountRemoteOnes) {
  Descriptor amd = MakeImage("amd64");
  Descriptor remote = Absent("arm64-manifest");
  Descriptor unrecorded = Absent("ppc-manifest");
  ASSERT_OK(RecordBlobSource(*store_, remote.digest, {"127.0.0.1:5000", "app"}));
  MakeIndex({{amd, "linux/amd64"}, {remote, "linux/arm64"}, {unrecorded, "linux/ppc64le"}},
            "app:multi");
  FsckReport report = store_->Fsck();
  EXPECT_TRUE(report.ok()) << ::testing::PrintToString(report.problems);
  EXPECT_EQ(report.remote_manifests, 1);
  EXPECT_EQ(report.absent_manifests, 1);
  ASSERT_OK_AND_ASSIGN(auto pruned, store_->Prune({}));
  EXPECT_EQ(pruned.blobs_removed, 0);  // the amd64 child (untagged itself) is kept
  EXPECT_TRUE(store_->Has(amd.digest));
  // The remote child's record survives prune: it says where the manifest is.
  ASSERT_OK_AND_ASSIGN(auto sources, ReadBlobSources(*store_, remote.digest));
  EXPECT_EQ(sources.size(), 1u);
}

}  // namespace
}  // namespace strata::oci
