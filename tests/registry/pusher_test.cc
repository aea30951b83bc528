// The upload direction against the in-memory registry: HEAD, mounts,
// monolithic and chunked uploads with Location handling, restarts decided
// on protocol codes, lost responses, manifests and indexes.
#include "registry/pusher.h"

#include <gtest/gtest.h>

#include "oci/blob_sources.h"
#include "tests/registry/client_fixture.h"

namespace strata::registry {
namespace {

namespace mt = oci::media_type;
using testing::FakeRegistry;
using testing::LocalImage;

class PusherTest : public testing::ClientFixture {
 protected:
  std::map<std::string, std::string>& Blobs(const std::string& repo = "app") {
    return registry_.repo(repo).blobs;
  }
  PushOptions Chunked() {
    PushOptions opts;
    opts.jobs = 1;
    opts.monolithic_max = 1024;
    opts.chunk_size = 4096;
    return opts;
  }
  PushOptions OneJob() {
    PushOptions opts;
    opts.jobs = 1;
    return opts;
  }
  // The layer's finishing PUT requests (?digest=<layer>).
  std::vector<Request> LayerPuts(const LocalImage& img) {
    return Sent("PUT", "digest=" + UrlEncode(img.layer.digest.ToString()));
  }
};

TEST_F(PusherTest, PushesBlobsMonolithicallyThenTheManifest) {
  auto img = MakeImage(*store_, std::string(3000, 'a'));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  EXPECT_EQ(pushed.bytes_uploaded, img.layer.size + img.config.size);
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(3000, 'a'));
  auto puts = LayerPuts(img);
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].body_size, img.layer.size);
  EXPECT_EQ(CountRequests("PATCH", ""), 0);
  auto manifest_puts = Sent("PUT", "/v2/app/manifests/1");
  ASSERT_EQ(manifest_puts.size(), 1u);
  EXPECT_EQ(manifest_puts[0].GetHeader("Content-Type"), mt::kImageManifest);
  EXPECT_EQ(manifest_puts[0].body, img.manifest_bytes);
}

TEST_F(PusherTest, BlobsTheRegistryHasAreSkippedAfterHead) {
  auto img = MakeImage(*store_, "layer");
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), {}));
  ASSERT_OK_AND_ASSIGN(auto again, client_->Push(*store_, "app:1", Dest(), {}));
  EXPECT_EQ(again.blobs_skipped, 2);
  EXPECT_EQ(again.blobs_uploaded, 0);
  EXPECT_EQ(registry_.posts, 2);  // the first push only
  EXPECT_EQ(CountRequests("HEAD", "/blobs/" + img.layer.digest.ToString()), 2);
}

TEST_F(PusherTest, CrossRepositoryMountIsUsedWhenTheRegistryMounts) {
  auto img = MakeImage(*store_, std::string(3000, 'm'));
  Blobs("base")[img.layer.digest.ToString()] = std::string(3000, 'm');
  PushOptions opts = OneJob();
  opts.mount_from = {"base"};
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.blobs_mounted, 1);
  EXPECT_EQ(pushed.blobs_uploaded, 1);  // the config was not in base
  auto mounts = Sent("POST", "mount=" + UrlEncode(img.layer.digest.ToString()));
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_NE(mounts[0].url.find("from=base"), std::string::npos) << mounts[0].url;
  EXPECT_TRUE(LayerPuts(img).empty());
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 1u);
}

TEST_F(PusherTest, DeclinedMountUploadsIntoTheSessionTheRegistryOpened) {
  auto img = MakeImage(*store_, std::string(3000, 'd'));
  registry_.mount = FakeRegistry::Mount::kDecline;
  PushOptions opts = OneJob();
  opts.mount_from = {"base"};
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.blobs_mounted, 0);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  // One POST per blob: the mount attempt's 202 session was used for the upload.
  EXPECT_EQ(registry_.posts, 2);
  EXPECT_EQ(CountRequests("POST", "mount="), 2);
  EXPECT_EQ(LayerPuts(img).size(), 1u);
}

TEST_F(PusherTest, RefusedMountFallsBackToAPlainUpload) {
  auto img = MakeImage(*store_, std::string(3000, 'f'));
  Blobs("base")[img.layer.digest.ToString()] = std::string(3000, 'f');
  registry_.mount = FakeRegistry::Mount::kDeny;
  PushOptions opts = OneJob();
  opts.mount_from = {"base", "other"};
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.blobs_mounted, 0);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  // Both sources were tried (a DENIED mount is a refusal), then a plain POST.
  EXPECT_EQ(CountRequests("POST", "from=base"), 2);
  EXPECT_EQ(CountRequests("POST", "from=other"), 2);
  EXPECT_EQ(registry_.posts, 6);
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(3000, 'f'));
}

TEST_F(PusherTest, MountFailingWithAServerErrorGoesStraightToUpload) {
  auto img = MakeImage(*store_, std::string(3000, 'e'));
  registry_.mount = FakeRegistry::Mount::kServerError;
  ClientOptions options;
  options.retry.max_attempts = 1;
  client_ = NewClient(options);
  PushOptions opts = OneJob();
  opts.mount_from = {"base", "other"};
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(CountRequests("POST", "from=other"), 0);  // not the next source
  EXPECT_EQ(LayerPuts(img).size(), 1u);
}

TEST_F(PusherTest, MountSourcesAreAskedForInTheTokenScope) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  MakeImage(*store_, "layer");
  PushOptions opts;
  opts.mount_from = {"base"};
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), opts));
  ASSERT_FALSE(registry_.token_requests.empty());
  const std::string& url = registry_.token_requests[0];
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:app:pull,push")), std::string::npos) << url;
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:base:pull")), std::string::npos) << url;
}

// --- mounts from the blob sources recorded in the store (oci/blob_sources.h) ---

TEST_F(PusherTest, PulledBlobsAreMountedFromTheirSourceRepository) {
  auto base = ServeImage("base", "1", std::string(3000, 'b'));
  ASSERT_OK(client_->Pull(*store_, Ref("reg.example/base:1"), {}));
  ASSERT_OK_AND_ASSIGN(auto sources, oci::ReadBlobSources(*store_, base.layer.digest));
  EXPECT_EQ(sources, (std::vector<oci::BlobLocation>{{"reg.example", "base"}}));
  const int posts_before = registry_.posts;
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "reg.example/base:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_mounted, 2);  // layer and config
  EXPECT_EQ(pushed.blobs_uploaded, 0);
  EXPECT_EQ(pushed.bytes_uploaded, 0);
  EXPECT_EQ(CountRequests("POST", "from=base"), 2);
  EXPECT_EQ(registry_.posts - posts_before, 2);
  EXPECT_EQ(Blobs().at(base.layer.digest.ToString()), std::string(3000, 'b'));
  // The destination is recorded too, most recent first.
  ASSERT_OK_AND_ASSIGN(sources, oci::ReadBlobSources(*store_, base.layer.digest));
  EXPECT_EQ(sources,
            (std::vector<oci::BlobLocation>{{"reg.example", "app"}, {"reg.example", "base"}}));
}

TEST_F(PusherTest, PushedBlobsAreMountedByTheNextPushToAnotherRepository) {
  auto img = MakeImage(*store_, std::string(3000, 'p'));
  ASSERT_OK_AND_ASSIGN(auto first, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(first.blobs_uploaded, 2);
  ASSERT_OK_AND_ASSIGN(auto second,
                       client_->Push(*store_, "app:1", Ref("reg.example/other:1"), OneJob()));
  EXPECT_EQ(second.blobs_mounted, 2);
  EXPECT_EQ(second.blobs_uploaded, 0);
  EXPECT_EQ(CountRequests("POST", "/v2/other/blobs/uploads/?mount="), 2);
  EXPECT_EQ(Blobs("other").at(img.layer.digest.ToString()), std::string(3000, 'p'));
}

TEST_F(PusherTest, RecordsOnAnotherRegistryAreNeverMountSources) {
  auto img = MakeImage(*store_, std::string(3000, 'o'));
  Blobs("base")[img.layer.digest.ToString()] = std::string(3000, 'o');
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"other.example", "base"}));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_mounted, 0);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  EXPECT_EQ(CountRequests("POST", "mount="), 0);
}

TEST_F(PusherTest, RecordedMountsCanBeTurnedOff) {
  auto img = MakeImage(*store_, std::string(3000, 'n'));
  Blobs("base")[img.layer.digest.ToString()] = std::string(3000, 'n');
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"reg.example", "base"}));
  PushOptions opts = OneJob();
  opts.mount_recorded = false;
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.blobs_mounted, 0);
  EXPECT_EQ(CountRequests("POST", "mount="), 0);
}

TEST_F(PusherTest, AStaleRecordFallsBackToTheNextSourceThenToAnUpload) {
  auto img = MakeImage(*store_, std::string(3000, 's'));
  // "gone" (the most recent record) no longer has the blob: the registry
  // declines with a 202 session, which is cancelled to try "live".
  Blobs("live")[img.layer.digest.ToString()] = std::string(3000, 's');
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"reg.example", "live"}));
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"reg.example", "gone"}));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_mounted, 1);
  EXPECT_EQ(pushed.blobs_uploaded, 1);  // the config: never recorded anywhere
  EXPECT_EQ(CountRequests("POST", "from=gone"), 1);
  EXPECT_EQ(CountRequests("POST", "from=live"), 1);
  EXPECT_EQ(CountRequests("DELETE", "/blobs/uploads/"), 1);
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(3000, 's'));

  // Every source refuses: the blob is uploaded.
  registry_.mount = FakeRegistry::Mount::kDeny;
  ASSERT_OK_AND_ASSIGN(auto again,
                       client_->Push(*store_, "app:1", Ref("reg.example/third:1"), OneJob()));
  EXPECT_EQ(again.blobs_mounted, 0);
  EXPECT_EQ(again.blobs_uploaded, 2);
  EXPECT_EQ(Blobs("third").at(img.layer.digest.ToString()), std::string(3000, 's'));
}

TEST_F(PusherTest, RecordedSourcesAreBoundedPerBlobAndAskedForInTheTokenScope) {
  registry_.auth = FakeRegistry::Auth::kBearer;
  auto img = MakeImage(*store_, "layer");
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest,
                                    {"reg.example", "src" + std::to_string(i)}));
  registry_.mount = FakeRegistry::Mount::kDeny;
  PushOptions opts = OneJob();
  opts.max_recorded_mounts = 2;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), opts));
  // Most recent first, two of them.
  auto mounts = Sent("POST", "mount=" + UrlEncode(img.layer.digest.ToString()));
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_NE(mounts[0].url.find("from=src4"), std::string::npos) << mounts[0].url;
  EXPECT_NE(mounts[1].url.find("from=src3"), std::string::npos) << mounts[1].url;
  ASSERT_FALSE(registry_.token_requests.empty());
  const std::string& url = registry_.token_requests[0];
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:app:pull,push")), std::string::npos) << url;
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:src4:pull")), std::string::npos) << url;
  EXPECT_NE(url.find("scope=" + UrlEncode("repository:src3:pull")), std::string::npos) << url;
  EXPECT_EQ(url.find("src2"), std::string::npos) << url;
}

// --- lazy base layers: blobs the store does not have ---

TEST_F(PusherTest, AnAbsentBlobIsMountedFromItsRecordedRepository) {
  auto img = MakeImage(*store_, std::string(3000, 'z'));
  Blobs("base")[img.layer.digest.ToString()] = std::string(3000, 'z');
  ASSERT_OK(store_->blobs().Delete(img.layer.digest));
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"reg.example", "base"}));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_mounted, 1);
  EXPECT_EQ(pushed.blobs_fetched, 0);
  EXPECT_FALSE(store_->Has(img.layer.digest));  // never downloaded
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(3000, 'z'));
}

TEST_F(PusherTest, AnAbsentBlobOnAnotherRegistryIsFetchedVerifiedThenUploaded) {
  auto img = MakeImage(*store_, std::string(3000, 'y'));
  // The source: another registry.
  registry_.other_hosts = {"source.example"};
  Blobs("lib/base")[img.layer.digest.ToString()] = std::string(3000, 'y');
  ASSERT_OK(store_->blobs().Delete(img.layer.digest));
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"source.example", "lib/base"}));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_mounted, 0);
  EXPECT_EQ(pushed.blobs_fetched, 1);
  EXPECT_EQ(pushed.bytes_fetched, 3000);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  EXPECT_EQ(CountRequests("GET", "https://source.example/v2/lib/base/blobs/"), 1);
  EXPECT_TRUE(store_->Has(img.layer.digest));
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(3000, 'y'));
}

TEST_F(PusherTest, AnAbsentBlobWhoseSourceServesOtherBytesIsNeverUploaded) {
  auto img = MakeImage(*store_, std::string(3000, 'w'));
  Blobs("lib/base")[img.layer.digest.ToString()] = std::string(3000, 'w');
  registry_.other_hosts = {"source.example"};
  registry_.corrupt_blobs[img.layer.digest.ToString()] = std::string(3000, 'W');
  ASSERT_OK(store_->blobs().Delete(img.layer.digest));
  ASSERT_OK(oci::RecordBlobSource(*store_, img.layer.digest, {"source.example", "lib/base"}));
  auto pushed = client_->Push(*store_, "app:1", Dest(), OneJob());
  ASSERT_FALSE(pushed.has_value());
  EXPECT_THAT(pushed.error().message(), ::testing::HasSubstr(img.layer.digest.ToString()));
  EXPECT_THAT(pushed.error().message(), ::testing::HasSubstr("source.example/lib/base"));
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 0u);
  EXPECT_FALSE(store_->Has(img.layer.digest));
}

TEST_F(PusherTest, AnAbsentBlobWithNoRecordedSourceIsNotFoundNamingIt) {
  auto img = MakeImage(*store_, std::string(3000, 'v'));
  ASSERT_OK(store_->blobs().Delete(img.layer.digest));
  auto pushed = client_->Push(*store_, "app:1", Dest(), OneJob());
  ASSERT_FALSE(pushed.has_value());
  EXPECT_EQ(pushed.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(pushed.error().message(), ::testing::HasSubstr(img.layer.digest.ToString()));
}

TEST_F(PusherTest, ChunkedUploadSendsContentRangesAndFollowsRelativeLocations) {
  auto img = MakeImage(*store_, std::string(10000, 'c'));
  registry_.relative_patch_locations = true;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), Chunked()));
  auto patches = Sent("PATCH", "/blobs/uploads/");
  ASSERT_EQ(patches.size(), 3u);
  EXPECT_EQ(patches[0].GetHeader("Content-Range"), "0-4095");
  EXPECT_EQ(patches[1].GetHeader("Content-Range"), "4096-8191");
  EXPECT_EQ(patches[2].GetHeader("Content-Range"), "8192-9999");
  // The second PATCH went to the relative Location the first one returned.
  EXPECT_NE(patches[1].url.find("?_state=p4096"), std::string::npos) << patches[1].url;
  EXPECT_TRUE(patches[1].url.starts_with("https://reg.example/v2/app/blobs/uploads/"));
  auto puts = LayerPuts(img);
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_NE(puts[0].url.find("_state=p10000"), std::string::npos) << puts[0].url;
  EXPECT_EQ(puts[0].body_size, -1);  // the final PUT carries no bytes
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(10000, 'c'));
}

TEST_F(PusherTest, UploadFollowsAbsoluteLocationsOnAnotherHost) {
  auto img = MakeImage(*store_, std::string(10000, 'h'));
  registry_.upload_host = "upload.example";
  registry_.auth = FakeRegistry::Auth::kBearer;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), Chunked()));
  auto patches = Sent("PATCH", "");
  ASSERT_EQ(patches.size(), 3u);
  for (const auto& p : patches) {
    EXPECT_TRUE(p.url.starts_with("https://upload.example/v2/app/blobs/uploads/")) << p.url;
    EXPECT_EQ(p.GetHeader("Authorization"), "");  // the token stays with the registry
  }
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(10000, 'h'));
}

TEST_F(PusherTest, MonolithicUploadUsesAnAbsoluteLocation) {
  auto img = MakeImage(*store_, std::string(100, 'l'));
  registry_.absolute_locations = true;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), OneJob()));
  auto puts = LayerPuts(img);
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_TRUE(puts[0].url.starts_with("https://reg.example/v2/app/blobs/uploads/u"));
  EXPECT_NE(puts[0].url.find("?_state="), std::string::npos);
  EXPECT_NE(puts[0].url.find("&digest="), std::string::npos) << puts[0].url;
}

TEST_F(PusherTest, ChunkedUploadResumesFromTheRegistryOffsetAfterAFailedChunk) {
  auto img = MakeImage(*store_, std::string(10000, 'z'));
  int patch = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PATCH" && ++patch == 2)
      return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
    return std::nullopt;
  };
  ClientOptions options;
  options.retry.max_attempts = 1;
  client_ = NewClient(options);
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), Chunked()));
  auto patches = Sent("PATCH", "");
  ASSERT_EQ(patches.size(), 4u);
  EXPECT_EQ(patches[2].GetHeader("Content-Range"), "4096-8191");  // the one that failed, again
  EXPECT_EQ(CountRequests("GET", "/blobs/uploads/"), 1);          // asked where to continue
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(10000, 'z'));
  EXPECT_EQ(registry_.posts, 2);  // no new session
}

TEST_F(PusherTest, ChunkThatKeepsFailingGivesUpAfterMaxResumes) {
  MakeImage(*store_, std::string(10000, 'q'));
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PATCH") return testing::ScriptedTransport::Deliver(req, 503, "");
    return std::nullopt;
  };
  ClientOptions options;
  options.retry.max_attempts = 1;
  client_ = NewClient(options);
  PushOptions opts = Chunked();
  opts.max_resumes = 1;
  auto r = client_->Push(*store_, "app:1", Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("HTTP 503"), std::string::npos) << r.error().message();
  EXPECT_EQ(registry_.manifest_puts, 0);
}

TEST_F(PusherTest, LostUploadSessionIsRestartedInANewSession) {
  auto img = MakeImage(*store_, std::string(3000, 'u'));
  int puts = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/blobs/uploads/") != std::string::npos && puts++ == 0)
      return testing::ScriptedTransport::Deliver(
          req, 404, R"({"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"gone"}]})");
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  EXPECT_EQ(registry_.posts, 3);
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 1u);
}

TEST_F(PusherTest, InvalidUploadSessionIsRestartedInANewSession) {
  // BLOB_UPLOAD_INVALID (HTTP 400) means the session is unusable: a new one
  // helps. Before the codes were data this 400 failed the push.
  auto img = MakeImage(*store_, std::string(3000, 'v'));
  int puts = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/blobs/uploads/") != std::string::npos && puts++ == 0)
      return testing::ScriptedTransport::Deliver(
          req, 400, R"({"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"bad session"}]})");
    return std::nullopt;
  };
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), OneJob()));
  EXPECT_EQ(registry_.posts, 3);
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 1u);
}

TEST_F(PusherTest, UnknownRepositoryIsNotRetried) {
  // NAME_UNKNOWN (404) does not go away in a new session: one attempt only.
  // Before the codes were data every 404 restarted the upload max_resumes times.
  auto img = MakeImage(*store_, std::string(3000, 'n'));
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/blobs/uploads/") != std::string::npos)
      return testing::ScriptedTransport::Deliver(
          req, 404,
          R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]})");
    return std::nullopt;
  };
  auto r = client_->pusher().Push(*store_, "app:1", Dest(), OneJob());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kNameUnknown));
  EXPECT_NE(r.error().message().find("NAME_UNKNOWN"), std::string::npos);
  EXPECT_NE(r.error().message().find("reg.example/app"), std::string::npos);
  EXPECT_EQ(registry_.posts, 1);
  EXPECT_TRUE(clock_->sleeps().empty());
  (void)img;
}

TEST_F(PusherTest, DigestInvalidIsRetriedBoundedThenSurfacedWithTheCode) {
  auto img = MakeImage(*store_, std::string(3000, 'i'));
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/blobs/uploads/") != std::string::npos)
      return testing::ScriptedTransport::Deliver(
          req, 400, R"({"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]})");
    return std::nullopt;
  };
  PushOptions opts = OneJob();
  opts.max_resumes = 2;
  auto r = client_->pusher().Push(*store_, "app:1", Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().http_status(), 400);
  EXPECT_TRUE(r.error().Has(ProtocolCode::kDigestInvalid));
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("DIGEST_INVALID: digest did not match"), std::string::npos) << m;
  EXPECT_NE(m.find("upload blob sha256:"), std::string::npos) << m;
  EXPECT_EQ(registry_.posts, 3);  // 1 + max_resumes sessions for the first blob
  (void)img;
}

TEST_F(PusherTest, ManifestReferencingAnUnknownBlobSurfacesTheCode) {
  MakeImage(*store_, "layer");
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/manifests/") != std::string::npos)
      return testing::ScriptedTransport::Deliver(
          req, 400,
          R"({"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]})");
    return std::nullopt;
  };
  auto r = client_->Push(*store_, "app:1", Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("MANIFEST_BLOB_UNKNOWN"), std::string::npos);
  EXPECT_NE(r.error().message().find("reg.example/app:1"), std::string::npos);
  EXPECT_EQ(CountRequests("PUT", "/manifests/"), 1);  // a 4xx is not resent
}

TEST_F(PusherTest, RegistryStoringOtherManifestBytesIsDataLoss) {
  MakeImage(*store_, "layer");
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/manifests/") != std::string::npos)
      return testing::ScriptedTransport::Deliver(
          req, 201, "", {{"Docker-Content-Digest", oci::Digest::Of("other").ToString()}});
    return std::nullopt;
  };
  auto r = client_->Push(*store_, "app:1", Dest(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(r.error().message().find("the registry stored"), std::string::npos);
}

TEST_F(PusherTest, PushesAnIndexWithEveryChildByDigestThenTheIndexByTag) {
  auto amd = MakeImage(*store_, "amd layer", "", "amd64");
  auto arm = MakeImage(*store_, "arm layer", "", "arm64");
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", mt::kImageIndex},
                          {"manifests",
                           {{{"mediaType", mt::kImageManifest},
                             {"digest", amd.manifest.digest.ToString()},
                             {"size", amd.manifest.size}},
                            {{"mediaType", mt::kImageManifest},
                             {"digest", arm.manifest.digest.ToString()},
                             {"size", arm.manifest.size}}}}};
  auto desc = *store_->Put(index.dump(), std::string(mt::kImageIndex));
  ASSERT_OK(store_->Tag(Ref("multi:1"), desc));
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "multi:1", Dest(), OneJob()));
  EXPECT_EQ(pushed.descriptor.digest, desc.digest);
  EXPECT_EQ(pushed.descriptor.media_type, mt::kImageIndex);
  auto puts = Sent("PUT", "/manifests/");
  ASSERT_EQ(puts.size(), 3u);
  EXPECT_TRUE(puts[0].url.ends_with(amd.manifest.digest.ToString()));
  EXPECT_TRUE(puts[1].url.ends_with(arm.manifest.digest.ToString()));
  EXPECT_TRUE(puts[2].url.ends_with("/manifests/1"));
  EXPECT_EQ(puts[2].GetHeader("Content-Type"), mt::kImageIndex);
  EXPECT_EQ(Blobs().count(arm.layer.digest.ToString()), 1u);
}

TEST_F(PusherTest, UploadedBytesReadsTheRangeHeader) {
  EXPECT_EQ(UploadedBytes("0-4095"), 4096);
  EXPECT_EQ(UploadedBytes("bytes=0-99"), 100);
  EXPECT_EQ(UploadedBytes("0-0"), 0);
  EXPECT_EQ(UploadedBytes(""), std::nullopt);
  EXPECT_EQ(UploadedBytes("0-12x"), std::nullopt);
}

}  // namespace
}  // namespace strata::registry
