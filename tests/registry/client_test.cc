// Client push/pull logic against a scripted in-memory registry: lost
// responses (checked with HEAD, never replayed blindly), corrupt local blobs
// (never finalized on push, quarantined and fetched again on pull).
#include "registry/client.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "oci/media_types.h"
#include "tests/registry/client_fixture.h"
#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

namespace fs = std::filesystem;
namespace mt = oci::media_type;
using testing::FakeClock;
using testing::ScriptedTransport;

class ClientTest : public testing::ClientFixture {
 protected:
  std::map<std::string, std::string>& Blobs() { return registry_.repo("app").blobs; }
  std::map<std::string, std::string>& Manifests() { return registry_.repo("app").manifests; }
};

TEST_F(ClientTest, LostResponseToAnAppliedBlobPutIsCheckedWithHeadNotReplayed) {
  auto img = MakeImage(*store_, std::string(3000, 'a'));
  registry_.lose_blob_puts = 2;  // both blobs: applied, response lost
  PushOptions opts;
  opts.jobs = 1;
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(pushed.blobs_uploaded, 2);
  // One session and one finishing PUT per blob: nothing was sent twice.
  EXPECT_EQ(registry_.posts, 2);
  EXPECT_EQ(CountRequests("PUT", "/blobs/uploads/"), 2);
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 1u);
  EXPECT_EQ(Manifests().at("1"), *store_->ReadBlob(img.manifest.digest));
}

TEST_F(ClientTest, LostResponseToAChunkedUploadsFinalPutIsCheckedWithHead) {
  auto img = MakeImage(*store_, std::string(10000, 'c'));
  registry_.lose_blob_puts = 1;
  PushOptions opts;
  opts.jobs = 1;
  opts.monolithic_max = 1024;
  opts.chunk_size = 4096;
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(CountRequests("PUT", "/blobs/uploads/"), 2);
  EXPECT_EQ(Blobs().at(img.layer.digest.ToString()), std::string(10000, 'c'));
}

TEST_F(ClientTest, BlobStillAbsentAfterAFailedPutIsUploadedInANewSession) {
  auto img = MakeImage(*store_, std::string(3000, 'b'));
  registry_.fail_blob_puts = 1;  // not applied
  PushOptions opts;
  opts.jobs = 1;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(registry_.posts, 3);  // the failed blob got a second session
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 1u);
  EXPECT_EQ(Blobs().count(img.config.digest.ToString()), 1u);
}

TEST_F(ClientTest, LostResponseToAnAppliedManifestPutIsCheckedWithHead) {
  auto img = MakeImage(*store_, "layer");
  registry_.lose_manifest_puts = 100;  // every response is lost
  ASSERT_OK_AND_ASSIGN(auto pushed, client_->Push(*store_, "app:1", Dest(), {}));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(registry_.manifest_puts, 1);
  EXPECT_GE(CountRequests("HEAD", "/manifests/1"), 1);
}

TEST_F(ClientTest, ManifestPutThatWasNotAppliedIsSentAgainBounded) {
  MakeImage(*store_, "layer");
  // The registry never answers a manifest PUT, and a HEAD finds the tag on
  // another manifest: not applied, so strata PUTs again, at most
  // 1 + max_resumes times.
  Manifests()["1"] = "{\"other\":true}";
  int puts = 0;
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    if (req.method == "PUT" && req.url.find("/manifests/") != std::string::npos) {
      ++puts;
      return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
    }
    return std::nullopt;
  };
  PushOptions opts;
  opts.max_resumes = 2;
  auto r = client_->Push(*store_, "app:1", Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().message();
  EXPECT_EQ(puts, 3);
}

TEST_F(ClientTest, CorruptLocalBlobIsNeverFinalizedMonolithic) {
  auto img = MakeImage(*store_, std::string(3000, 'm'));
  Corrupt(store_->BlobPath(img.layer.digest));
  ASSERT_OK_AND_ASSIGN(std::string corrupt, ReadFile(store_->BlobPath(img.layer.digest)));
  const oci::Digest actual = oci::Digest::Of(corrupt);
  PushOptions opts;
  opts.jobs = 1;
  auto r = client_->Push(*store_, "app:1", Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().message();
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("digest mismatch"), std::string::npos) << m;
  EXPECT_NE(m.find("expected " + img.layer.digest.ToString()), std::string::npos) << m;
  EXPECT_NE(m.find("actual " + actual.ToString()), std::string::npos) << m;
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 0u);
  EXPECT_EQ(Blobs().count(actual.ToString()), 0u);
  EXPECT_EQ(registry_.manifest_puts, 0);
  EXPECT_EQ(registry_.posts, 2);  // no retry of a corrupt blob
}

TEST_F(ClientTest, CorruptLocalBlobIsNeverFinalizedChunked) {
  auto img = MakeImage(*store_, std::string(10000, 'k'));
  Corrupt(store_->BlobPath(img.layer.digest));
  PushOptions opts;
  opts.jobs = 1;
  opts.monolithic_max = 1024;
  opts.chunk_size = 4096;
  auto r = client_->Push(*store_, "app:1", Dest(), opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().message();
  EXPECT_NE(r.error().message().find("digest mismatch"), std::string::npos);
  // The config went up; the layer's upload was never finished.
  int layer_puts = 0;
  for (const auto& req : fake_->requests())
    if (req.method == "PUT" &&
        req.url.find(UrlEncode(img.layer.digest.ToString())) != std::string::npos)
      ++layer_puts;
  EXPECT_EQ(layer_puts, 0);
  EXPECT_EQ(Blobs().count(img.layer.digest.ToString()), 0u);
  EXPECT_GE(CountRequests("DELETE", "/blobs/uploads/"), 1);
}

TEST_F(ClientTest, PullRepairsACorruptLocalBlobAndKeepsTheOthers) {
  auto src = OpenStore("src");
  auto img = MakeImage(*src, std::string(5000, 'p'));
  ASSERT_OK(client_->Push(*src, "app:1", Dest(), {}));

  ASSERT_OK(client_->Pull(*store_, Dest(), {}));
  const fs::path layer_path = store_->BlobPath(img.layer.digest);
  Corrupt(layer_path);
  struct stat config_before;
  ASSERT_EQ(::stat(store_->BlobPath(img.config.digest).c_str(), &config_before), 0);

  ASSERT_OK_AND_ASSIGN(auto pulled, client_->Pull(*store_, Dest(), {}));
  EXPECT_EQ(pulled.blobs_fetched, 1);
  EXPECT_EQ(pulled.blobs_skipped, 1);
  EXPECT_OK(store_->VerifyBlob(img.layer.digest));
  struct stat layer_after;
  ASSERT_EQ(::stat(layer_path.c_str(), &layer_after), 0);
  EXPECT_EQ(layer_after.st_mode & 0777, 0444u);
  struct stat config_after;
  ASSERT_EQ(::stat(store_->BlobPath(img.config.digest).c_str(), &config_after), 0);
  EXPECT_EQ(config_after.st_ino, config_before.st_ino);
  // The corrupt copy is kept aside, not rewritten.
  int quarantined = 0;
  for (const auto& e : fs::directory_iterator(store_->root() / "quarantine")) {
    EXPECT_TRUE(e.path().filename().string().starts_with("sha256-" + img.layer.digest.hex()));
    ++quarantined;
  }
  EXPECT_EQ(quarantined, 1);
}

}  // namespace
}  // namespace strata::registry
