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
#include "tests/registry/fakes.h"
#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

namespace fs = std::filesystem;
namespace mt = oci::media_type;
using testing::FakeClock;
using testing::ScriptedTransport;

// A registry for repository "app" at https://reg.example, in memory. Faults are
// switched on by the test: `lose_blob_puts` / `lose_manifest_puts` apply the
// request and then report a connection reset instead of the response;
// `fail_blob_puts` report a reset without applying anything.
class FakeRegistry {
 public:
  int lose_blob_puts = 0;
  int fail_blob_puts = 0;
  int lose_manifest_puts = 0;

  Result<Response> Handle(const Request& req) {
    std::lock_guard<std::mutex> l(mu_);
    const std::string prefix = "https://reg.example/v2/app/";
    if (req.url == "https://reg.example/v2/") return ScriptedTransport::Deliver(req, 200, "{}");
    if (!req.url.starts_with(prefix)) return ScriptedTransport::Deliver(req, 404, "");
    std::string path = req.url.substr(prefix.size());
    std::string query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    if (path.starts_with("blobs/uploads/")) return Upload(req, path.substr(14), query);
    if (path.starts_with("blobs/")) {
      auto it = blobs.find(path.substr(6));
      if (it == blobs.end()) return ScriptedTransport::Deliver(req, 404, "");
      return ScriptedTransport::Deliver(req, 200, req.method == "HEAD" ? "" : it->second);
    }
    if (path.starts_with("manifests/")) {
      const std::string ref = path.substr(10);
      if (req.method == "PUT") {
        const std::string digest = oci::Digest::Of(req.body).ToString();
        manifests[ref] = req.body;
        manifests[digest] = req.body;
        ++manifest_puts;
        if (lose_manifest_puts > 0) {
          --lose_manifest_puts;
          return MakeError(ErrorCode::kUnavailable, "PUT {}: connection reset by peer", req.url);
        }
        return ScriptedTransport::Deliver(req, 201, "", {{"Docker-Content-Digest", digest}});
      }
      auto it = manifests.find(ref);
      if (it == manifests.end()) return ScriptedTransport::Deliver(req, 404, "");
      std::vector<Header> h = {{"Docker-Content-Digest", oci::Digest::Of(it->second).ToString()},
                               {"Content-Type", std::string(mt::kImageManifest)}};
      return ScriptedTransport::Deliver(req, 200, req.method == "HEAD" ? "" : it->second, h);
    }
    return ScriptedTransport::Deliver(req, 404, "");
  }

  std::map<std::string, std::string> blobs;      // digest -> bytes
  std::map<std::string, std::string> manifests;  // tag or digest -> bytes
  int posts = 0;
  int blob_puts = 0;  // PUT ?digest= requests whose body arrived in full
  int manifest_puts = 0;

 private:
  static Result<std::string> ReadBody(const Request& req) {
    if (!req.open_body) return req.body;
    STRATA_ASSIGN_OR_RETURN(BodyReader reader, req.open_body());
    std::string out;
    char buf[4096];
    for (int i = 0; i < 1 << 20; ++i) {
      STRATA_ASSIGN_OR_RETURN(size_t n, reader(buf, sizeof(buf)));
      if (n == 0) return out;
      out.append(buf, n);
    }
    return MakeError(ErrorCode::kInternal, "body too long");
  }

  Result<Response> Upload(const Request& req, const std::string& id, const std::string& query) {
    if (req.method == "POST") {
      ++posts;
      std::string loc = fmt::format("/v2/app/blobs/uploads/u{}", next_id_);
      sessions_[fmt::format("u{}", next_id_++)] = "";
      return ScriptedTransport::Deliver(req, 202, "", {{"Location", loc}, {"Range", "0-0"}});
    }
    auto it = sessions_.find(id);
    if (it == sessions_.end())
      return ScriptedTransport::Deliver(
          req, 404,
          R"({"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown"}]})");
    if (req.method == "DELETE") {
      sessions_.erase(it);
      return ScriptedTransport::Deliver(req, 204, "");
    }
    // A body that fails to arrive (the sender aborted) leaves the session as it was.
    STRATA_ASSIGN_OR_RETURN(std::string body, ReadBody(req));
    if (req.method == "PATCH") {
      it->second += body;
      return ScriptedTransport::Deliver(req, 202, "",
                                        {{"Location", "/v2/app/blobs/uploads/" + id},
                                         {"Range", fmt::format("0-{}", it->second.size() - 1)}});
    }
    if (req.method != "PUT" || !query.starts_with("digest="))
      return ScriptedTransport::Deliver(req, 400, "");
    if (fail_blob_puts > 0) {
      --fail_blob_puts;
      return MakeError(ErrorCode::kUnavailable, "PUT: connection reset by peer");
    }
    std::string content = it->second + body;
    std::string digest = oci::Digest::Of(content).ToString();
    if (query.substr(7) != UrlEncode(digest))
      return ScriptedTransport::Deliver(req, 400, R"({"errors":[{"code":"DIGEST_INVALID"}]})");
    sessions_.erase(it);
    blobs[digest] = content;
    ++blob_puts;
    if (lose_blob_puts > 0) {
      --lose_blob_puts;
      return MakeError(ErrorCode::kUnavailable, "PUT: connection reset by peer");
    }
    return ScriptedTransport::Deliver(req, 201, "", {{"Docker-Content-Digest", digest}});
  }

  std::mutex mu_;
  std::map<std::string, std::string> sessions_;
  int next_id_ = 1;
};

struct LocalImage {
  oci::Descriptor manifest;
  oci::Descriptor config;
  oci::Descriptor layer;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strata::testing::MakeTempDir();
    auto s = oci::Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
    fake_ = std::make_shared<ScriptedTransport>(
        [this](const Request& req) { return registry_.Handle(req); });
    clock_ = std::make_shared<FakeClock>();
    client_ = std::make_unique<Client>(fake_, nullptr, ClientOptions{}, clock_);
  }

  LocalImage MakeImage(oci::Store& store, const std::string& layer_bytes) {
    LocalImage img;
    img.layer = *store.Put(layer_bytes, std::string(mt::kLayerTarGzip));
    nlohmann::json config = {
        {"architecture", "amd64"},
        {"os", "linux"},
        {"rootfs", {{"type", "layers"}, {"diff_ids", {img.layer.digest.ToString()}}}}};
    img.config = *store.Put(config.dump(), std::string(mt::kImageConfig));
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", mt::kImageManifest},
                               {"config",
                                {{"mediaType", mt::kImageConfig},
                                 {"digest", img.config.digest.ToString()},
                                 {"size", img.config.size}}},
                               {"layers",
                                {{{"mediaType", mt::kLayerTarGzip},
                                  {"digest", img.layer.digest.ToString()},
                                  {"size", img.layer.size}}}}};
    img.manifest = *store.Put(manifest.dump(), std::string(mt::kImageManifest));
    EXPECT_TRUE(store.Tag(*oci::Reference::Parse("app:1"), img.manifest).has_value());
    return img;
  }

  // Overwrites a committed (read-only) blob in place with bytes of the same size.
  static void Corrupt(const fs::path& path) {
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto bytes = ReadFile(path);
    ASSERT_TRUE(bytes.has_value());
    std::string b = *bytes;
    b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x5a);
    strata::testing::WriteTestFile(path, b, 0444);
  }

  int CountRequests(const std::string& method, const std::string& url_part) {
    int n = 0;
    for (const auto& r : fake_->requests())
      if (r.method == method && r.url.find(url_part) != std::string::npos) ++n;
    return n;
  }

  oci::Reference Dest() { return *oci::Reference::Parse("reg.example/app:1"); }

  ScopedTempDir dir_;
  std::unique_ptr<oci::Store> store_;
  FakeRegistry registry_;
  std::shared_ptr<ScriptedTransport> fake_;
  std::shared_ptr<FakeClock> clock_;
  std::unique_ptr<Client> client_;
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
  EXPECT_EQ(registry_.blobs.count(img.layer.digest.ToString()), 1u);
  EXPECT_EQ(registry_.manifests.at("1"), *store_->ReadBlob(img.manifest.digest));
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
  EXPECT_EQ(registry_.blobs.at(img.layer.digest.ToString()), std::string(10000, 'c'));
}

TEST_F(ClientTest, BlobStillAbsentAfterAFailedPutIsUploadedInANewSession) {
  auto img = MakeImage(*store_, std::string(3000, 'b'));
  registry_.fail_blob_puts = 1;  // not applied
  PushOptions opts;
  opts.jobs = 1;
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), opts));
  EXPECT_EQ(registry_.posts, 3);  // the failed blob got a second session
  EXPECT_EQ(registry_.blobs.count(img.layer.digest.ToString()), 1u);
  EXPECT_EQ(registry_.blobs.count(img.config.digest.ToString()), 1u);
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
  registry_.manifests["1"] = "{\"other\":true}";
  int puts = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) -> Result<Response> {
    if (req.method == "PUT" && req.url.find("/manifests/") != std::string::npos) {
      ++puts;
      return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
    }
    return registry_.Handle(req);
  });
  Client client(fake, nullptr, ClientOptions{}, clock_);
  PushOptions opts;
  opts.max_resumes = 2;
  auto r = client.Push(*store_, "app:1", Dest(), opts);
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
  EXPECT_EQ(registry_.blobs.count(img.layer.digest.ToString()), 0u);
  EXPECT_EQ(registry_.blobs.count(actual.ToString()), 0u);
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
  EXPECT_EQ(registry_.blobs.count(img.layer.digest.ToString()), 0u);
  EXPECT_GE(CountRequests("DELETE", "/blobs/uploads/"), 1);
}

TEST_F(ClientTest, PullRepairsACorruptLocalBlobAndKeepsTheOthers) {
  auto src = oci::Store::Open(dir_.path() / "src");
  ASSERT_TRUE(src.has_value());
  auto img = MakeImage(**src, std::string(5000, 'p'));
  ASSERT_OK(client_->Push(**src, "app:1", Dest(), {}));

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
