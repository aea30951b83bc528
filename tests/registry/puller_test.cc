// The download direction against the in-memory registry: what is requested,
// what is verified, what is stored (and what is not, on a mismatch), resumes.
#include "registry/puller.h"

#include <gtest/gtest.h>

#include "oci/blob_sources.h"
#include "tests/registry/client_fixture.h"

namespace strata::registry {
namespace {

namespace mt = oci::media_type;
using testing::LocalImage;

class PullerTest : public testing::ClientFixture {
 protected:
  // True if the store has no blob and no tag for `ref`.
  void ExpectNothingStored(const LocalImage& img, const std::string& ref) {
    EXPECT_FALSE(store_->Has(img.layer.digest));
    EXPECT_FALSE(store_->Has(img.manifest.digest));
    EXPECT_FALSE(store_->Resolve(ref).has_value()) << ref << " was tagged";
  }
};

TEST_F(PullerTest, PullsAnImageVerifiesEveryBlobAndTagsIt) {
  auto img = ServeImage("app", "1", std::string(3000, 'x'));
  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);
  EXPECT_EQ(pulled.blobs_fetched, 2);
  EXPECT_EQ(pulled.bytes_fetched, img.layer.size + img.config.size);
  EXPECT_FALSE(pulled.index.has_value());
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
  ASSERT_OK_AND_ASSIGN(auto tagged, store_->Resolve("reg.example/app:1"));
  EXPECT_EQ(tagged.digest, img.manifest.digest);
  // The manifest was asked for with every type strata reads.
  auto gets = Sent("GET", "/v2/app/manifests/1");
  ASSERT_EQ(gets.size(), 1u);
  const std::string accept = gets[0].GetHeader("Accept");
  for (auto t : {mt::kImageManifest, mt::kImageIndex, mt::kDockerManifest, mt::kDockerManifestList})
    EXPECT_NE(accept.find(t), std::string::npos) << accept;
  EXPECT_EQ(CountRequests("GET", "/v2/app/blobs/"), 2);
}

TEST_F(PullerTest, RecordsWhereEveryBlobCameFrom) {
  auto img = ServeImage("lib/app", "1", std::string(3000, 'r'));
  ASSERT_OK(client_->Pull(*store_, Ref("reg.example/lib/app:1"), {}));
  for (const auto& d : {img.layer.digest, img.config.digest}) {
    ASSERT_OK_AND_ASSIGN(auto sources, oci::ReadBlobSources(*store_, d));
    EXPECT_EQ(sources, (std::vector<oci::BlobLocation>{{"reg.example", "lib/app"}}));
  }
}

TEST_F(PullerTest, WithoutLayersFetchesConfigOnlyAndRecordsWhereTheLayersAre) {
  auto img = ServeImage("app", "1", std::string(3000, 'l'));
  PullOptions opts;
  opts.layers = false;
  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Dest(), opts));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);
  EXPECT_EQ(pulled.blobs_fetched, 1);
  EXPECT_EQ(pulled.bytes_fetched, img.config.size);
  EXPECT_EQ(CountRequests("GET", "/blobs/" + img.layer.digest.ToString()), 0);
  EXPECT_FALSE(store_->Has(img.layer.digest));
  ASSERT_OK_AND_ASSIGN(auto tagged, store_->Resolve(Dest()));
  EXPECT_EQ(tagged.digest, img.manifest.digest);
  EXPECT_EQ(store_->LoadImage(tagged).error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto meta, store_->LoadImageMetadata(pulled.manifest));
  EXPECT_EQ(meta.manifest.layers.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto sources, oci::ReadBlobSources(*store_, img.layer.digest));
  EXPECT_EQ(sources, (std::vector<oci::BlobLocation>{{"reg.example", "app"}}));
  // The layer, fetched on demand from its recorded source, verified.
  ASSERT_OK(client_->FetchRecordedBlob(*store_, img.layer, {}));
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
  ASSERT_OK(store_->LoadImage(pulled.manifest));
}

TEST_F(PullerTest, FetchingABlobWithNoRecordedSourceIsNotFoundNamingIt) {
  oci::Descriptor d;
  d.digest = oci::Digest::Of("nowhere");
  d.size = 7;
  auto r = client_->FetchRecordedBlob(*store_, d, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(d.digest.ToString()), std::string::npos);
}

TEST_F(PullerTest, BlobsAlreadyInTheStoreAreNotFetchedAgain) {
  ServeImage("app", "1", "layer bytes");
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  ASSERT_OK_AND_ASSIGN(auto again, client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(again.blobs_fetched, 0);
  EXPECT_EQ(again.blobs_skipped, 2);
  EXPECT_EQ(CountRequests("GET", "/v2/app/blobs/"), 2);  // from the first pull only
}

TEST_F(PullerTest, SelectsThePlatformManifestFromAnIndex) {
  auto amd = ServeImage("app", "", "amd64 layer", "amd64");
  auto arm = ServeImage("app", "", "arm64 layer", "arm64");
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", mt::kImageIndex},
                          {"manifests",
                           {{{"mediaType", mt::kImageManifest},
                             {"digest", amd.manifest.digest.ToString()},
                             {"size", amd.manifest.size},
                             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
                            {{"mediaType", mt::kImageManifest},
                             {"digest", arm.manifest.digest.ToString()},
                             {"size", arm.manifest.size},
                             {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}}}};
  const std::string index_digest =
      registry_.PutManifest("app", "multi", index.dump(), std::string(mt::kImageIndex));
  PullOptions opts;
  opts.platform = *oci::Platform::Parse("linux/arm64");
  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Ref("reg.example/app:multi"), opts));
  EXPECT_EQ(pulled.manifest.digest, arm.manifest.digest);
  ASSERT_TRUE(pulled.index.has_value());
  EXPECT_EQ(pulled.index->digest.ToString(), index_digest);
  EXPECT_TRUE(store_->Has(arm.layer.digest));
  EXPECT_FALSE(store_->Has(amd.layer.digest));
  EXPECT_EQ(CountRequests("GET", "/manifests/" + arm.manifest.digest.ToString()), 1);
  EXPECT_EQ(CountRequests("GET", "/manifests/" + amd.manifest.digest.ToString()), 0);
  ASSERT_OK_AND_ASSIGN(auto tagged, store_->Resolve("reg.example/app:multi"));
  EXPECT_EQ(tagged.digest, arm.manifest.digest);
}

TEST_F(PullerTest, IndexWithoutTheWantedPlatformIsNotFoundListingWhatIsOffered) {
  auto amd = ServeImage("app", "", "amd64 layer", "amd64");
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", mt::kImageIndex},
                          {"manifests",
                           {{{"mediaType", mt::kImageManifest},
                             {"digest", amd.manifest.digest.ToString()},
                             {"size", amd.manifest.size},
                             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  registry_.PutManifest("app", "multi", index.dump(), std::string(mt::kImageIndex));
  PullOptions opts;
  opts.platform = *oci::Platform::Parse("linux/s390x");
  auto r = client_->Pull(*store_, Ref("reg.example/app:multi"), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("linux/s390x"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("linux/amd64"), std::string::npos) << r.error().message();
  EXPECT_EQ(CountRequests("GET", "/blobs/"), 0);
}

TEST_F(PullerTest, ManifestNotMatchingThePulledDigestIsRefusedAndNothingStored) {
  auto img = ServeImage("app", "1", "layer");
  // The registry answers the digest with other bytes.
  const std::string wanted = img.manifest.digest.ToString();
  registry_.repo("app").manifests[wanted] = img.manifest_bytes + " ";
  const std::string ref = "reg.example/app@" + wanted;
  auto r = client_->Pull(*store_, Ref(ref), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().message();
  EXPECT_NE(r.error().message().find("digest mismatch"), std::string::npos);
  EXPECT_NE(r.error().message().find(wanted), std::string::npos);
  ExpectNothingStored(img, ref);
  EXPECT_EQ(CountRequests("GET", "/blobs/"), 0);
}

TEST_F(PullerTest, ManifestDisagreeingWithDockerContentDigestIsRefused) {
  auto img = ServeImage("app", "1", "layer");
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.url.ends_with("/manifests/1"))
      return testing::ScriptedTransport::Deliver(
          req, 200, img.manifest_bytes,
          {{"Content-Type", std::string(mt::kImageManifest)},
           {"Docker-Content-Digest", oci::Digest::Of("something else").ToString()}});
    return std::nullopt;
  };
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("the registry says"), std::string::npos);
  ExpectNothingStored(img, "reg.example/app:1");
}

TEST_F(PullerTest, BlobWithWrongBytesIsRefusedAndNothingStored) {
  auto img = ServeImage("app", "1", std::string(4000, 'g'));
  registry_.corrupt_blobs[img.layer.digest.ToString()] = std::string(4000, 'b');
  PullOptions opts;
  opts.jobs = 1;
  auto r = client_->Pull(*store_, Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().message();
  EXPECT_NE(r.error().message().find(img.layer.digest.ToString()), std::string::npos)
      << r.error().message();
  ExpectNothingStored(img, "reg.example/app:1");
}

TEST_F(PullerTest, BlobLongerThanItsDescriptorIsRefused) {
  auto img = ServeImage("app", "1", std::string(100, 'g'));
  registry_.corrupt_blobs[img.layer.digest.ToString()] = std::string(150, 'g');
  auto r = client_->Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("size mismatch"), std::string::npos) << r.error().message();
  ExpectNothingStored(img, "reg.example/app:1");
}

TEST_F(PullerTest, InterruptedDownloadResumesWithRange) {
  auto img = ServeImage("app", "1", std::string(10000, 'r'));
  registry_.cut_blob_once[img.layer.digest.ToString()] = 4000;
  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Dest(), {}));
  auto gets = Sent("GET", "/blobs/" + img.layer.digest.ToString());
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].GetHeader("Range"), "");
  EXPECT_EQ(gets[1].GetHeader("Range"), "bytes=4000-");
  EXPECT_EQ(pulled.blobs_fetched, 2);
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
}

TEST_F(PullerTest, ShortBodyWithoutAConnectionErrorIsResumed) {
  auto img = ServeImage("app", "1", std::string(10000, 's'));
  registry_.short_blob_once[img.layer.digest.ToString()] = 6000;
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  auto gets = Sent("GET", "/blobs/" + img.layer.digest.ToString());
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1].GetHeader("Range"), "bytes=6000-");
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
}

TEST_F(PullerTest, RegistryIgnoringRangeIsReadFromTheStartAgain) {
  auto img = ServeImage("app", "1", std::string(10000, 'i'));
  registry_.cut_blob_once[img.layer.digest.ToString()] = 3000;
  registry_.ignore_range = true;
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(CountRequests("GET", "/blobs/" + img.layer.digest.ToString()), 2);
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
}

TEST_F(PullerTest, RangeNotSatisfiableStartsTheBlobOver) {
  auto img = ServeImage("app", "1", std::string(10000, 'n'));
  registry_.cut_blob_once[img.layer.digest.ToString()] = 5000;
  int ranged = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (!req.GetHeader("Range").empty() && ranged++ == 0)
      return testing::ScriptedTransport::Deliver(req, 416, "");
    return std::nullopt;
  };
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  auto gets = Sent("GET", "/blobs/" + img.layer.digest.ToString());
  ASSERT_EQ(gets.size(), 3u);
  EXPECT_EQ(gets[1].GetHeader("Range"), "bytes=5000-");
  EXPECT_EQ(gets[2].GetHeader("Range"), "");
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
}

TEST_F(PullerTest, DownloadThatKeepsBreakingGivesUpAfterMaxResumes) {
  auto img = ServeImage("app", "1", std::string(10000, 'k'));
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.url.ends_with(img.layer.digest.ToString()))
      return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
    return std::nullopt;
  };
  ClientOptions options;
  options.retry.max_attempts = 1;  // count the puller's own resumes only
  client_ = NewClient(options);
  PullOptions opts;
  opts.max_resumes = 2;
  auto r = client_->Pull(*store_, Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("fetch blob " + img.layer.digest.ToString()),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(CountRequests("GET", "/blobs/" + img.layer.digest.ToString()), 3);
  EXPECT_FALSE(store_->Resolve("reg.example/app:1").has_value());
}

TEST_F(PullerTest, RedirectedBlobIsFetchedWithoutTheRegistryToken) {
  registry_.auth = testing::FakeRegistry::Auth::kBearer;
  registry_.redirect_blobs = true;
  auto img = ServeImage("app", "1", std::string(2000, 'c'));
  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  ASSERT_EQ(registry_.cdn_authorization.size(), 2u);
  for (const auto& a : registry_.cdn_authorization) EXPECT_EQ(a, "");
  // The registry itself got the token.
  auto gets = Sent("GET", "reg.example/v2/app/blobs/" + img.layer.digest.ToString());
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_TRUE(gets[0].GetHeader("Authorization").starts_with("Bearer ")) << gets[0].url;
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
}

TEST_F(PullerTest, UnknownManifestIsNotFoundWithItsCodeAndTheRef) {
  ServeImage("app", "1", "layer");
  auto r = client_->puller().Pull(*store_, Ref("reg.example/app:nope"), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().http_status(), 404);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kManifestUnknown));
  EXPECT_NE(r.error().message().find("reg.example/app:nope"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("MANIFEST_UNKNOWN"), std::string::npos);
}

TEST_F(PullerTest, UnknownBlobIsNotFoundNamingTheDigest) {
  auto img = ServeImage("app", "1", "layer");
  registry_.repo("app").blobs.erase(img.layer.digest.ToString());
  auto r = client_->puller().Pull(*store_, Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kBlobUnknown));
  EXPECT_NE(r.error().message().find(img.layer.digest.ToString()), std::string::npos);
  EXPECT_FALSE(store_->Resolve("reg.example/app:1").has_value());
}

TEST_F(PullerTest, ResolveReturnsTheVerifiedDocumentWithoutStoringIt) {
  auto img = ServeImage("app", "1", "layer");
  ASSERT_OK_AND_ASSIGN(auto resolved, client_->Resolve(Dest()));
  EXPECT_EQ(resolved.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(resolved.descriptor.media_type, mt::kImageManifest);
  EXPECT_EQ(resolved.bytes, img.manifest_bytes);
  EXPECT_FALSE(store_->Has(img.manifest.digest));
  EXPECT_EQ(CountRequests("GET", "/blobs/"), 0);
}

}  // namespace
}  // namespace strata::registry
