// Integration tests against the real CNCF Distribution registry and real
// clients (skopeo). Each test starts its own registry and stops it.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "oci/media_types.h"
#include "registry/client.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"
#include "tools/curl/curl_transport.h"

namespace strata::registry {
namespace {

using strata::testing::MakeTempDir;
using strata::testing::RunCommand;
using testing::FaultProxy;
using testing::MakeTestImage;
using testing::ProxyAction;
using testing::ProxyRequest;
using testing::RegistryProcess;
namespace mt = oci::media_type;

// Records every event as text (to grep for secrets) and counts kinds.
class RecordingSink : public ProgressSink {
 public:
  void OnEvent(const ProgressEvent& e) override {
    std::lock_guard<std::mutex> l(mu_);
    lines.push_back(fmt::format("{} {} {} {} {}", static_cast<int>(e.kind), e.digest.ToString(),
                                e.size, e.bytes, e.detail));
    ++counts[e.kind];
  }
  std::mutex mu_;
  std::vector<std::string> lines;
  std::map<ProgressEvent::Kind, int> counts;
};

std::unique_ptr<oci::Store> OpenStore(const std::filesystem::path& p) {
  auto s = oci::Store::Open(p);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return std::move(*s);
}

oci::Reference Ref(const std::string& s) {
  auto r = oci::Reference::Parse(s);
  EXPECT_TRUE(r.has_value()) << s;
  return *r;
}

ClientOptions FastRetries() {
  ClientOptions o;
  o.retry.initial_backoff = std::chrono::milliseconds(20);
  o.retry.max_backoff = std::chrono::milliseconds(200);
  o.retry.max_total = std::chrono::milliseconds(20000);
  return o;
}

std::unique_ptr<Client> PlainClient(std::shared_ptr<const CredentialStore> creds = nullptr) {
  return MakeCurlClient(std::move(creds), FastRetries());
}

nlohmann::json SkopeoInspect(const std::string& image, const std::string& extra = "") {
  auto r = RunCommand(
      fmt::format("skopeo inspect --tls-verify=false {} docker://{} 2>&1", extra, image));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output, nullptr, false);
}

class RegistryIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!strata::testing::HaveTool("skopeo")) GTEST_SKIP() << "skopeo not installed";
    registry_ = std::make_unique<RegistryProcess>(RegistryProcess::Options{});
    ASSERT_TRUE(registry_->ok()) << registry_->error();
  }
  std::string Host() const { return registry_->host(); }
  std::unique_ptr<RegistryProcess> registry_;
};

TEST_F(RegistryIntegrationTest, PushIsAcceptedBySkopeoAndRepushSkipsEverything) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "store");
  auto img = MakeTestImage(*store, "app:1", {200000, 5000, 70000});
  auto client = PlainClient();
  RecordingSink sink;
  PushOptions opts;
  opts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(auto pushed,
                       client->Push(*store, "app:1", Ref(Host() + "/team/app:1"), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(pushed.blobs_uploaded, 4);

  auto j = SkopeoInspect(Host() + "/team/app:1");
  EXPECT_EQ(j.value("Digest", ""), img.manifest.digest.ToString());
  EXPECT_EQ(j["Layers"].size(), 3u);
  // skopeo copy verifies every blob against its digest.
  auto out = MakeTempDir();
  auto r = RunCommand(
      fmt::format("skopeo copy --src-tls-verify=false docker://{}/team/app:1 oci:{}:x 2>&1", Host(),
                  (out.path() / "layout").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto again, client->Push(*store, "app:1", Ref(Host() + "/team/app:1"), {}));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(again.blobs_uploaded, 0);
  EXPECT_EQ(again.blobs_skipped, 4);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST_F(RegistryIntegrationTest, ChunkedUploadAndPullRoundTrip) {
  auto dir = MakeTempDir();
  auto src = OpenStore(dir.path() / "src");
  auto img = MakeTestImage(*src, "big:1", {700000, 1000});
  auto client = PlainClient();
  PushOptions opts;
  opts.monolithic_max = 64 * 1024;
  opts.chunk_size = 200 * 1024;
  ASSERT_OK_AND_ASSIGN(auto pushed, client->Push(*src, "big:1", Ref(Host() + "/big:1"), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);

  auto dst = OpenStore(dir.path() / "dst");
  RecordingSink sink;
  PullOptions popts;
  popts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(auto pulled, client->Pull(*dst, Ref(Host() + "/big:1"), popts));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);
  EXPECT_EQ(pulled.blobs_fetched, 3);
  for (const auto& l : img.layers) EXPECT_TRUE(dst->Has(l.digest));
  ASSERT_OK_AND_ASSIGN(auto loaded, dst->LoadImage(Host() + "/big:1"));
  EXPECT_EQ(loaded.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(loaded.manifest.layers.size(), 2u);

  // A second pull fetches nothing.
  ASSERT_OK_AND_ASSIGN(auto again, client->Pull(*dst, Ref(Host() + "/big:1"), {}));
  EXPECT_EQ(again.blobs_fetched, 0);
  EXPECT_EQ(again.blobs_skipped, 3);
  // Pull by digest.
  auto by_digest = Ref(Host() + "/big@" + img.manifest.digest.ToString());
  auto dst2 = OpenStore(dir.path() / "dst2");
  ASSERT_OK_AND_ASSIGN(auto pd, client->Pull(*dst2, by_digest, {}));
  EXPECT_EQ(pd.manifest.digest, img.manifest.digest);
}

TEST_F(RegistryIntegrationTest, PullsDockerSchema2ImageThatSkopeoPushed) {
  auto dir = MakeTempDir();
  auto src = OpenStore(dir.path() / "src");
  MakeTestImage(*src, "app:1", {30000, 20000});
  auto client = PlainClient();
  ASSERT_OK(client->Push(*src, "app:1", Ref(Host() + "/oci:1"), {}));
  auto r = RunCommand(fmt::format(
      "skopeo copy --src-tls-verify=false --dest-tls-verify=false --format v2s2 docker://{0}/oci:1 "
      "docker://{0}/v2s2:1 2>&1",
      Host()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto dst = OpenStore(dir.path() / "dst");
  ASSERT_OK_AND_ASSIGN(auto pulled, client->Pull(*dst, Ref(Host() + "/v2s2:1"), {}));
  EXPECT_EQ(pulled.manifest.media_type, mt::kDockerManifest);
  ASSERT_OK_AND_ASSIGN(auto img, dst->LoadImage(Host() + "/v2s2:1"));
  EXPECT_EQ(img.manifest.config.media_type, mt::kDockerConfig);
  auto j = SkopeoInspect(Host() + "/v2s2:1");
  EXPECT_EQ(j.value("Digest", ""), pulled.manifest.digest.ToString());
}

TEST_F(RegistryIntegrationTest, PushesAndPullsAMultiPlatformIndex) {
  auto dir = MakeTempDir();
  auto src = OpenStore(dir.path() / "src");
  auto amd = MakeTestImage(*src, "", {10000}, "amd64");
  auto arm = MakeTestImage(*src, "", {12000}, "arm64");
  nlohmann::json index = {
      {"schemaVersion", 2},
      {"mediaType", mt::kImageIndex},
      {"manifests",
       {{{"mediaType", mt::kImageManifest},
         {"digest", amd.manifest.digest.ToString()},
         {"size", amd.manifest.size},
         {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
        {{"mediaType", mt::kImageManifest},
         {"digest", arm.manifest.digest.ToString()},
         {"size", arm.manifest.size},
         {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}}}}}};
  ASSERT_OK_AND_ASSIGN(auto idesc, src->Put(index.dump(), std::string(mt::kImageIndex)));
  ASSERT_OK(src->Tag(Ref("multi:1"), idesc));
  auto client = PlainClient();
  ASSERT_OK_AND_ASSIGN(auto pushed, client->Push(*src, "multi:1", Ref(Host() + "/multi:1"), {}));
  EXPECT_EQ(pushed.descriptor.digest, idesc.digest);
  auto raw = RunCommand(
      fmt::format("skopeo inspect --tls-verify=false --raw docker://{}/multi:1", Host()));
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(oci::Digest::Of(raw.output), idesc.digest);

  // Copied by skopeo (all platforms), pulled back for arm64.
  auto r = RunCommand(fmt::format(
      "skopeo copy --all --src-tls-verify=false --dest-tls-verify=false docker://{0}/multi:1 "
      "docker://{0}/copied:1 2>&1",
      Host()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto dst = OpenStore(dir.path() / "dst");
  PullOptions opts;
  ASSERT_OK_AND_ASSIGN(opts.platform, oci::Platform::Parse("linux/arm64"));
  ASSERT_OK_AND_ASSIGN(auto pulled, client->Pull(*dst, Ref(Host() + "/copied:1"), opts));
  ASSERT_TRUE(pulled.index.has_value());
  EXPECT_EQ(pulled.manifest.digest, arm.manifest.digest);
  EXPECT_TRUE(dst->Has(arm.layers[0].digest));
  EXPECT_FALSE(dst->Has(amd.layers[0].digest));
  EXPECT_TRUE(dst->Has(pulled.index->digest));
}

TEST_F(RegistryIntegrationTest, MountsBlobsFromAnotherRepository) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  MakeTestImage(*store, "app:1", {40000, 40000});
  auto client = PlainClient();
  ASSERT_OK(client->Push(*store, "app:1", Ref(Host() + "/base/app:1"), {}));
  PushOptions opts;
  opts.mount_from = {"base/app"};
  ASSERT_OK_AND_ASSIGN(auto r, client->Push(*store, "app:1", Ref(Host() + "/other/app:2"), opts));
  EXPECT_EQ(r.blobs_mounted, 3);
  EXPECT_EQ(r.blobs_uploaded, 0);
  SkopeoInspect(Host() + "/other/app:2");
}

TEST_F(RegistryIntegrationTest, UnknownTagIsNotFoundNamingRegistryAndRepo) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  auto r = PlainClient()->Pull(*store, Ref(Host() + "/nope/app:9"), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(Host() + "/nope/app"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("MANIFEST_UNKNOWN"), std::string::npos) << r.error().message();
}

TEST_F(RegistryIntegrationTest, PodmanPullsAndRunsWhatWePushed) {
  if (!strata::testing::HaveTool("podman") || !strata::testing::HaveTool("runc"))
    GTEST_SKIP() << "podman/runc not installed";
  auto dir = MakeTempDir();
  const auto rootfs = dir.path() / "rootfs";
  auto r = RunCommand(fmt::format(
      "{0}/tools/make-busybox-rootfs.sh {1} && tar cf {2}/layer.tar --numeric-owner -C {1} . && "
      "gzip -n -c {2}/layer.tar > {2}/layer.tgz 2>&1",
      STRATA_SOURCE_DIR, rootfs.string(), dir.path().string()));
  if (r.exit_code != 0) GTEST_SKIP() << "no busybox rootfs: " << r.output;
  auto store = OpenStore(dir.path() / "s");
  ASSERT_OK_AND_ASSIGN(auto diff, oci::DigestFile((dir.path() / "layer.tar").string()));
  ASSERT_OK_AND_ASSIGN(auto tgz, ReadFile(dir.path() / "layer.tgz"));
  ASSERT_OK_AND_ASSIGN(auto layer, store->Put(tgz, std::string(mt::kLayerTarGzip)));
  nlohmann::json config = {{"architecture", oci::Platform::Host().architecture},
                           {"os", "linux"},
                           {"config", {{"Env", {"PATH=/bin"}}, {"Cmd", {"/bin/sh"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", {diff.ToString()}}}}};
  ASSERT_OK_AND_ASSIGN(auto cdesc, store->Put(config.dump(), std::string(mt::kImageConfig)));
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", mt::kImageManifest},
                             {"config",
                              {{"mediaType", mt::kImageConfig},
                               {"digest", cdesc.digest.ToString()},
                               {"size", cdesc.size}}},
                             {"layers",
                              {{{"mediaType", mt::kLayerTarGzip},
                                {"digest", layer.digest.ToString()},
                                {"size", layer.size}}}}};
  ASSERT_OK_AND_ASSIGN(auto mdesc, store->Put(manifest.dump(), std::string(mt::kImageManifest)));
  ASSERT_OK(store->Tag(Ref("bb:1"), mdesc));
  ASSERT_OK(PlainClient()->Push(*store, "bb:1", Ref(Host() + "/bb:1"), {}));

  const std::string podman = fmt::format(
      "podman --root {0}/proot --runroot {0}/prun --storage-driver vfs", dir.path().string());
  r = RunCommand(fmt::format("{} pull -q --tls-verify=false {}/bb:1 2>&1", podman, Host()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r =
      RunCommand(fmt::format("{} run --rm --runtime runc --network none --ulimit nofile=1024:1024 "
                             "--ulimit nproc=1024:1024 "
                             "{}/bb:1 echo hello-from-strata 2>&1",
                             podman, Host()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("hello-from-strata"), std::string::npos) << r.output;
  RunCommand(podman + " rmi -af >/dev/null 2>&1");
}

// ---------------------------------------------------------------------------
// TLS + htpasswd registry.

class TlsRegistryIntegrationTest : public ::testing::Test {
 protected:
  static constexpr const char* kUser = "ci-user";
  static constexpr const char* kPassword = "pw-Zq81-secret";
  void SetUp() override {
    if (!strata::testing::HaveTool("skopeo")) GTEST_SKIP() << "skopeo not installed";
    registry_ = std::make_unique<RegistryProcess>(RegistryProcess::Options{true, kUser, kPassword});
    ASSERT_TRUE(registry_->ok()) << registry_->error();
  }
  std::unique_ptr<Client> MakeClient(std::shared_ptr<const CredentialStore> creds) {
    ClientOptions o = FastRetries();
    o.certs_dirs = {registry_->certs_dir()};
    return MakeCurlClient(std::move(creds), o);
  }
  std::unique_ptr<RegistryProcess> registry_;
};

TEST_F(TlsRegistryIntegrationTest, LoginPushPullWithBasicAuthAndNoSecretLeaks) {
  auto dir = MakeTempDir();
  const std::string host = registry_->host();
  std::vector<std::string> messages;

  CredentialSources src;
  src.authfile = dir.path() / "auth.json";
  auto creds = std::make_shared<CredentialStore>(src, nullptr);
  auto client = MakeClient(creds);

  auto bad = client->CheckLogin(host, AuthConfig{kUser, "wrong", ""});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kUnauthenticated);
  messages.push_back(bad.error().message());
  ASSERT_OK(client->CheckLogin(host, AuthConfig{kUser, kPassword, ""}));
  ASSERT_OK(creds->Login(host, AuthConfig{kUser, kPassword, ""}));

  // Anonymous push is refused.
  auto store = OpenStore(dir.path() / "s");
  auto img = MakeTestImage(*store, "app:1", {50000});
  auto anon = MakeClient(nullptr)->Push(*store, "app:1", Ref(host + "/app:1"), {});
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().code(), ErrorCode::kUnauthenticated) << anon.error().message();
  messages.push_back(anon.error().message());

  RecordingSink sink;
  PushOptions opts;
  opts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(auto pushed, client->Push(*store, "app:1", Ref(host + "/app:1"), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  auto r =
      RunCommand(fmt::format("skopeo inspect --cert-dir {} --creds {}:{} docker://{}/app:1 2>&1",
                             (registry_->certs_dir() / host).string(), kUser, kPassword, host));
  EXPECT_EQ(r.exit_code, 0) << r.output;

  auto dst = OpenStore(dir.path() / "d");
  PullOptions popts;
  popts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(auto pulled, client->Pull(*dst, Ref(host + "/app:1"), popts));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);

  // Without trusting the CA the TLS handshake fails.
  ClientOptions untrusted = FastRetries();
  untrusted.certs_dirs = {dir.path() / "empty"};
  auto tls_fail = MakeCurlClient(creds, untrusted)->Pull(*dst, Ref(host + "/app:1"), {});
  ASSERT_FALSE(tls_fail);
  messages.push_back(tls_fail.error().message());
  // --tls-verify=false accepts it.
  ClientOptions insecure = FastRetries();
  insecure.tls_verify = false;
  insecure.certs_dirs = {dir.path() / "empty"};
  ASSERT_OK(MakeCurlClient(creds, insecure)->Pull(*dst, Ref(host + "/app:1"), {}));

  ASSERT_OK(creds->Logout(host));
  auto after = client->Pull(*dst, Ref(host + "/app:1"), {});
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), ErrorCode::kUnauthenticated);
  messages.push_back(after.error().message());

  const std::string encoded = Base64Encode(std::string(kUser) + ":" + kPassword);
  for (const auto& m : messages) {
    EXPECT_EQ(m.find(kPassword), std::string::npos) << m;
    EXPECT_EQ(m.find(encoded), std::string::npos) << m;
  }
  EXPECT_FALSE(sink.lines.empty());
  for (const auto& l : sink.lines) {
    EXPECT_EQ(l.find(kPassword), std::string::npos) << l;
    EXPECT_EQ(l.find(encoded), std::string::npos) << l;
  }
}

TEST_F(TlsRegistryIntegrationTest, WrongPasswordSaysAuthenticationFailedForWhichUser) {
  auto dir = MakeTempDir();
  const std::string host = registry_->host();
  CredentialSources good;
  good.creds = AuthConfig{kUser, kPassword, ""};
  auto store = OpenStore(dir.path() / "s");
  MakeTestImage(*store, "app:1", {1000});
  ASSERT_OK(MakeClient(std::make_shared<CredentialStore>(good, nullptr))
                ->Push(*store, "app:1", Ref(host + "/app:1"), {}));

  CredentialSources wrong;
  wrong.creds = AuthConfig{kUser, "not-the-Pw-77", ""};
  auto client = MakeClient(std::make_shared<CredentialStore>(wrong, nullptr));
  auto dst = OpenStore(dir.path() / "d");
  auto pulled = client->Pull(*dst, Ref(host + "/app:1"), {});
  ASSERT_FALSE(pulled);
  EXPECT_EQ(pulled.error().code(), ErrorCode::kUnauthenticated);
  auto login = client->CheckLogin(host, AuthConfig{kUser, "not-the-Pw-77", ""});
  ASSERT_FALSE(login);
  EXPECT_EQ(login.error().code(), ErrorCode::kUnauthenticated);
  for (const auto& m : {pulled.error().message(), login.error().message()}) {
    EXPECT_NE(m.find(fmt::format("authentication failed for registry {} as user {}", host, kUser)),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("strata login " + host), std::string::npos) << m;
    EXPECT_EQ(m.find("not-the-Pw-77"), std::string::npos) << m;
    EXPECT_EQ(m.find(Base64Encode(std::string(kUser) + ":not-the-Pw-77")), std::string::npos) << m;
  }
  // Anonymous: says that credentials are missing and how to log in.
  auto anon = MakeClient(nullptr)->Pull(*dst, Ref(host + "/app:1"), {});
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(anon.error().message().find("strata login " + host), std::string::npos)
      << anon.error().message();
}

TEST_F(TlsRegistryIntegrationTest, UntrustedCaSaysTlsVerificationFailedAndWhereCertsAreLookedUp) {
  auto dir = MakeTempDir();
  const std::string host = registry_->host();
  ClientOptions o = FastRetries();
  o.certs_dirs = {dir.path() / "containers-certs.d", dir.path() / "docker-certs.d"};
  auto dst = OpenStore(dir.path() / "d");
  auto t0 = std::chrono::steady_clock::now();
  auto r = MakeCurlClient(nullptr, o)->Pull(*dst, Ref(host + "/app:1"), {});
  ASSERT_FALSE(r);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // not retried
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("TLS verification failed for " + host), std::string::npos) << m;
  EXPECT_NE(m.find("certificate"), std::string::npos) << m;  // curl's reason
  EXPECT_NE(m.find((dir.path() / "containers-certs.d" / host).string()), std::string::npos) << m;
  EXPECT_NE(m.find((dir.path() / "docker-certs.d" / host).string()), std::string::npos) << m;
  EXPECT_NE(m.find("system store"), std::string::npos) << m;
  EXPECT_NE(m.find("--tls-verify=false"), std::string::npos) << m;
  EXPECT_EQ(m.find("HTTP 400"), std::string::npos) << m;
}

TEST_F(TlsRegistryIntegrationTest, TrustsACaFromTheDockerCertsDir) {
  // The default lookup is /etc/containers/certs.d then /etc/docker/certs.d.
  EXPECT_EQ(ClientOptions{}.certs_dirs,
            (std::vector<std::filesystem::path>{"/etc/containers/certs.d", "/etc/docker/certs.d"}));
  auto dir = MakeTempDir();
  const std::string host = registry_->host();
  CredentialSources src;
  src.creds = AuthConfig{kUser, kPassword, ""};
  ClientOptions o = FastRetries();
  o.certs_dirs = {dir.path() / "containers-certs.d", registry_->certs_dir()};
  auto store = OpenStore(dir.path() / "s");
  auto img = MakeTestImage(*store, "app:1", {1000});
  ASSERT_OK_AND_ASSIGN(auto pushed,
                       MakeCurlClient(std::make_shared<CredentialStore>(src, nullptr), o)
                           ->Push(*store, "app:1", Ref(host + "/app:1"), {}));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
}

// ---------------------------------------------------------------------------
// Fault injection through a loopback proxy in front of the plain registry.

class FaultIntegrationTest : public RegistryIntegrationTest {
 protected:
  // Pushes a small image straight to the registry; returns it.
  testing::TestImage Seed(oci::Store& store, const std::string& repo, std::vector<size_t> sizes) {
    auto img = MakeTestImage(store, "seed:1", sizes);
    auto r = PlainClient()->Push(store, "seed:1", Ref(Host() + "/" + repo + ":1"), {});
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return img;
  }
  static bool IsBlobGet(const ProxyRequest& r, const oci::Digest& d) {
    return r.method == "GET" && r.target.find("/blobs/" + d.ToString()) != std::string::npos;
  }
};

TEST_F(FaultIntegrationTest, PushMountsPulledBaseLayersAndUploadsOnlyTheAppLayer) {
  // Every request goes through a counting proxy: the registry's domain is
  // the proxy's, for the pull (which records where the blobs are) as for
  // the push (which mounts from there).
  FaultProxy proxy(registry_->port(), [](const ProxyRequest&) { return ProxyAction::Forward(); });
  const std::string host = "127.0.0.1:" + std::to_string(proxy.port());
  auto dir = MakeTempDir();
  auto seed_store = OpenStore(dir.path() / "seed");
  auto base = Seed(*seed_store, "base", {300000, 200000});

  auto store = OpenStore(dir.path() / "s");
  auto client = PlainClient();
  ASSERT_OK(client->Pull(*store, Ref(host + "/base:1"), {}));
  // An app image on top of the base: its layers plus one of its own.
  const std::string app_layer = "app layer bytes " + std::string(5000, 'x');
  ASSERT_OK_AND_ASSIGN(oci::Descriptor layer,
                       store->Put(app_layer, std::string(mt::kLayerTarGzip)));
  ASSERT_OK_AND_ASSIGN(std::string base_config, store->ReadBlob(base.config.digest));
  auto config = nlohmann::json::parse(base_config);
  config["rootfs"]["diff_ids"].push_back(oci::Digest::Of("app diff").ToString());
  ASSERT_OK_AND_ASSIGN(oci::Descriptor cfg,
                       store->Put(config.dump(), std::string(mt::kImageConfig)));
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : base.layers)
    layers.push_back(
        {{"mediaType", l.media_type}, {"digest", l.digest.ToString()}, {"size", l.size}});
  layers.push_back({{"mediaType", mt::kLayerTarGzip},
                    {"digest", layer.digest.ToString()},
                    {"size", layer.size}});
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", mt::kImageManifest},
      {"config",
       {{"mediaType", mt::kImageConfig}, {"digest", cfg.digest.ToString()}, {"size", cfg.size}}},
      {"layers", layers}};
  ASSERT_OK_AND_ASSIGN(oci::Descriptor m,
                       store->Put(manifest.dump(), std::string(mt::kImageManifest)));
  ASSERT_OK(store->Tag(Ref("app:1"), m));

  const size_t before = proxy.requests().size();
  ASSERT_OK_AND_ASSIGN(auto pushed, client->Push(*store, "app:1", Ref(host + "/app:1"), {}));
  EXPECT_EQ(pushed.blobs_mounted, 2);   // the base layers
  EXPECT_EQ(pushed.blobs_uploaded, 2);  // the app layer and the new config
  EXPECT_EQ(pushed.bytes_uploaded, layer.size + cfg.size);
  // What crossed the wire: the bodies of the push's PUT and PATCH requests.
  int64_t sent = 0;
  int mounts = 0;
  auto requests = proxy.requests();
  for (size_t i = before; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.method == "POST" && r.target.find("from=base") != std::string::npos) ++mounts;
    if ((r.method == "PUT" || r.method == "PATCH") && r.target.find("/blobs/") != std::string::npos)
      sent += std::stoll(r.Header("Content-Length").empty() ? "0" : r.Header("Content-Length"));
  }
  EXPECT_EQ(mounts, 2);
  EXPECT_EQ(sent, layer.size + cfg.size);
  EXPECT_LT(sent, 10000);  // the base is 500 kB
  // The registry serves the whole image (skopeo verifies every blob).
  auto out = MakeTempDir();
  auto r =
      RunCommand(fmt::format("skopeo copy --src-tls-verify=false docker://{}/app:1 oci:{}:x 2>&1",
                             Host(), (out.path() / "layout").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(FaultIntegrationTest, ResumesABlobDownloadAfterAConnectionReset) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {600000});
  std::atomic<int> cuts{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (IsBlobGet(r, img.layers[0].digest) && cuts++ == 0) return ProxyAction::Cut(150000);
    return ProxyAction::Forward();
  });
  auto dst = OpenStore(dir.path() / "dst");
  RecordingSink sink;
  PullOptions opts;
  opts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(
      auto pulled,
      PlainClient()->Pull(*dst, Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port())), opts));
  EXPECT_TRUE(dst->Has(img.layers[0].digest));
  bool saw_range = false;
  for (const auto& r : proxy.requests())
    if (IsBlobGet(r, img.layers[0].digest) && r.Header("Range").starts_with("bytes="))
      saw_range = true;
  EXPECT_TRUE(saw_range);
  EXPECT_GE(sink.counts[ProgressEvent::Kind::kBlobRetrying], 1);
}

TEST_F(FaultIntegrationTest, RetriesAServerErrorThenSucceeds) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  Seed(*seed, "app", {1000});
  std::atomic<int> manifest_gets{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (r.target.find("/manifests/") != std::string::npos && manifest_gets++ == 0)
      return ProxyAction::Respond(500, R"({"errors":[{"code":"UNKNOWN","message":"boom"}]})");
    return ProxyAction::Forward();
  });
  auto dst = OpenStore(dir.path() / "dst");
  ASSERT_OK(PlainClient()->Pull(*dst, Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port())), {}));
  EXPECT_EQ(manifest_gets.load(), 2);
}

TEST_F(FaultIntegrationTest, HonoursRetryAfterOn429) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  MakeTestImage(*store, "app:1", {1000});
  std::atomic<int> heads{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (r.method == "HEAD" && heads++ == 0)
      return ProxyAction::Respond(429, "", {{"Retry-After", "1"}});
    return ProxyAction::Forward();
  });
  PushOptions opts;
  opts.jobs = 1;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(PlainClient()->Push(*store, "app:1",
                                Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port())), opts));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(950));
  EXPECT_GE(heads.load(), 3);
}

TEST_F(FaultIntegrationTest, BlobWithWrongBytesFailsAndLeavesTheStoreUnchanged) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {5000});
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (IsBlobGet(r, img.layers[0].digest))
      return ProxyAction::Respond(200, std::string(static_cast<size_t>(img.layers[0].size), 'x'));
    return ProxyAction::Forward();
  });
  auto dst = OpenStore(dir.path() / "dst");
  const auto ref = Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port()));
  auto r = PlainClient()->Pull(*dst, ref, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << r.error().message();
  EXPECT_NE(r.error().message().find(img.layers[0].digest.ToString()), std::string::npos);
  EXPECT_FALSE(dst->Has(img.layers[0].digest));
  EXPECT_FALSE(dst->Resolve(ref).has_value());
  ASSERT_OK_AND_ASSIGN(auto blobs, dst->ListBlobs());
  for (const auto& b : blobs) EXPECT_NE(b, img.layers[0].digest);
}

// A proxy that plays a token-auth registry: /v2/ needs a Bearer token from
// its own /token endpoint, which accepts only `password`.
ProxyAction TokenAuth(const ProxyRequest& r, int port, const std::string& user,
                      const std::string& password, const std::string& token) {
  if (r.target.starts_with("/token")) {
    if (r.Header("Authorization") == "Basic " + Base64Encode(user + ":" + password))
      return ProxyAction::Respond(200, fmt::format(R"({{"token":"{}","expires_in":300}})", token));
    return ProxyAction::Respond(401, R"({"details":"incorrect username or password"})");
  }
  if (r.Header("Authorization") != "Bearer " + token) {
    return ProxyAction::Respond(
        401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
        {{"WWW-Authenticate",
          fmt::format(R"(Bearer realm="http://127.0.0.1:{}/token",service="fake-registry")",
                      port)}});
  }
  ProxyAction a = ProxyAction::Forward();
  a.strip_authorization = true;
  return a;
}

TEST_F(FaultIntegrationTest, RejectingTokenEndpointIsUnauthenticatedWithoutLeaks) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  Seed(*seed, "app", {1000});
  const std::string token = "tok-9f8e7d-secret";
  int port = 0;
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    return TokenAuth(r, port, "robot", "right-pw-123", token);
  });
  port = proxy.port();
  const auto ref = Ref(fmt::format("127.0.0.1:{}/app:1", port));
  auto dst = OpenStore(dir.path() / "dst");

  CredentialSources wrong;
  wrong.creds = AuthConfig{"robot", "wrong-pw-456", ""};
  RecordingSink sink;
  PullOptions opts;
  opts.progress = &sink;
  auto r = PlainClient(std::make_shared<CredentialStore>(wrong, nullptr))->Pull(*dst, ref, opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated) << r.error().message();
  EXPECT_NE(r.error().message().find("rejected"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find("wrong-pw-456"), std::string::npos);

  CredentialSources right;
  right.creds = AuthConfig{"robot", "right-pw-123", ""};
  ASSERT_OK_AND_ASSIGN(
      auto ok,
      PlainClient(std::make_shared<CredentialStore>(right, nullptr))->Pull(*dst, ref, opts));
  for (const auto& l : sink.lines) {
    EXPECT_EQ(l.find(token), std::string::npos) << l;
    EXPECT_EQ(l.find("right-pw-123"), std::string::npos) << l;
  }
}

TEST_F(FaultIntegrationTest, RedirectToAnotherHostDropsAuthorization) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {20000});
  const std::string token = "tok-redirect-secret";
  // "Blob storage": another authority (localhost vs 127.0.0.1), no auth.
  FaultProxy storage(registry_->port(), [](const ProxyRequest&) { return ProxyAction::Forward(); });
  int port = 0;
  FaultProxy front(registry_->port(), [&](const ProxyRequest& r) {
    if (IsBlobGet(r, img.layers[0].digest) && r.Header("Authorization") == "Bearer " + token)
      return ProxyAction::Respond(
          307, "", {{"Location", fmt::format("http://localhost:{}{}", storage.port(), r.target)}});
    return TokenAuth(r, port, "robot", "pw", token);
  });
  port = front.port();
  CredentialSources src;
  src.creds = AuthConfig{"robot", "pw", ""};
  auto dst = OpenStore(dir.path() / "dst");
  ASSERT_OK(PlainClient(std::make_shared<CredentialStore>(src, nullptr))
                ->Pull(*dst, Ref(fmt::format("127.0.0.1:{}/app:1", port)), {}));
  EXPECT_TRUE(dst->Has(img.layers[0].digest));
  auto at_storage = storage.requests();
  ASSERT_FALSE(at_storage.empty());
  for (const auto& r : at_storage) EXPECT_EQ(r.Header("Authorization"), "") << r.target;
  bool front_saw_token = false;
  for (const auto& r : front.requests())
    if (r.Header("Authorization") == "Bearer " + token) front_saw_token = true;
  EXPECT_TRUE(front_saw_token);
}

TEST_F(FaultIntegrationTest, ChunkedUploadResumesFromTheRegistryOffset) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  auto img = MakeTestImage(*store, "app:1", {500000});
  std::atomic<int> patches{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (r.method == "PATCH" && patches++ == 1)
      return ProxyAction::Respond(503,
                                  R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})");
    return ProxyAction::Forward();
  });
  PushOptions opts;
  opts.monolithic_max = 1024;
  opts.chunk_size = 128 * 1024;
  ClientOptions co = FastRetries();
  co.retry.max_attempts = 1;  // let the client's resume logic handle it
  auto client = MakeCurlClient(nullptr, co);
  const std::string dest = fmt::format("127.0.0.1:{}/app:1", proxy.port());
  ASSERT_OK(client->Push(*store, "app:1", Ref(dest), opts));
  bool saw_status = false;
  for (const auto& r : proxy.requests())
    if (r.method == "GET" && r.target.find("/blobs/uploads/") != std::string::npos)
      saw_status = true;
  EXPECT_TRUE(saw_status);
  auto j = SkopeoInspect(Host() + "/app:1");
  EXPECT_EQ(j.value("Digest", ""), img.manifest.digest.ToString());
}

bool IsFinishingBlobPut(const ProxyRequest& r) {
  return r.method == "PUT" && r.target.find("/blobs/uploads/") != std::string::npos &&
         r.target.find("digest=") != std::string::npos;
}

TEST_F(FaultIntegrationTest, LostResponseToAnAppliedBlobPutStillPushes) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  auto img = MakeTestImage(*store, "app:1", {30000, 300000});
  std::mutex mu;
  std::set<std::string> dropped;  // each finishing PUT's response is lost once
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (IsFinishingBlobPut(r)) {
      std::lock_guard<std::mutex> l(mu);
      std::string digest = r.target.substr(r.target.find("digest=") + 7);
      if (dropped.insert(digest).second) return ProxyAction::DropResponse();
    }
    return ProxyAction::Forward();
  });
  PushOptions opts;
  opts.monolithic_max = 100000;  // layer 0 monolithic, layer 1 chunked
  opts.chunk_size = 128 * 1024;
  const std::string dest = fmt::format("127.0.0.1:{}/lost/app:1", proxy.port());
  ASSERT_OK_AND_ASSIGN(auto pushed, PlainClient()->Push(*store, "app:1", Ref(dest), opts));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  EXPECT_EQ(dropped.size(), 3u);  // config and both layers lost their response
  int finishing_puts = 0;
  for (const auto& r : proxy.requests())
    if (IsFinishingBlobPut(r)) ++finishing_puts;
  EXPECT_EQ(finishing_puts, 3);  // none was replayed
  auto j = SkopeoInspect(Host() + "/lost/app:1");
  EXPECT_EQ(j.value("Digest", ""), img.manifest.digest.ToString());
  auto out = MakeTempDir();  // skopeo copy verifies every blob
  auto r = RunCommand(
      fmt::format("skopeo copy --src-tls-verify=false docker://{}/lost/app:1 oci:{}:x 2>&1", Host(),
                  (out.path() / "layout").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(FaultIntegrationTest, LostResponseToAnAppliedManifestPutStillPushes) {
  auto dir = MakeTempDir();
  auto store = OpenStore(dir.path() / "s");
  auto img = MakeTestImage(*store, "app:1", {2000});
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (r.method == "PUT" && r.target.find("/manifests/") != std::string::npos)
      return ProxyAction::DropResponse();  // every time: the registry applies it
    return ProxyAction::Forward();
  });
  const std::string dest = fmt::format("127.0.0.1:{}/lostm/app:1", proxy.port());
  ASSERT_OK_AND_ASSIGN(auto pushed, PlainClient()->Push(*store, "app:1", Ref(dest), {}));
  EXPECT_EQ(pushed.descriptor.digest, img.manifest.digest);
  int manifest_puts = 0;
  for (const auto& r : proxy.requests())
    if (r.method == "PUT" && r.target.find("/manifests/") != std::string::npos) ++manifest_puts;
  EXPECT_EQ(manifest_puts, 1);
  auto j = SkopeoInspect(Host() + "/lostm/app:1");
  EXPECT_EQ(j.value("Digest", ""), img.manifest.digest.ToString());
}

ClientOptions ShortLowSpeed() {
  ClientOptions o = FastRetries();
  o.low_speed_limit = 1024;
  o.low_speed_time = std::chrono::milliseconds(1000);
  return o;
}

TEST_F(FaultIntegrationTest, TricklingBlobDownloadIsAbandonedAndRetried) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {20000});
  std::atomic<int> gets{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (IsBlobGet(r, img.layers[0].digest) && gets++ == 0) return ProxyAction::Trickle(2);
    return ProxyAction::Forward();
  });
  auto dst = OpenStore(dir.path() / "dst");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(MakeCurlClient(nullptr, ShortLowSpeed())
                ->Pull(*dst, Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port())), {}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(gets.load(), 2);
  EXPECT_OK(dst->VerifyBlob(img.layers[0].digest));
}

TEST_F(FaultIntegrationTest, AlwaysTricklingRegistryFailsSayingTooSlowWithinBoundedTime) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {20000});
  std::atomic<int> gets{0};
  FaultProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    if (IsBlobGet(r, img.layers[0].digest)) {
      ++gets;
      return ProxyAction::Trickle(2);
    }
    return ProxyAction::Forward();
  });
  auto dst = OpenStore(dir.path() / "dst");
  PullOptions opts;
  opts.max_resumes = 2;
  auto t0 = std::chrono::steady_clock::now();
  auto r = MakeCurlClient(nullptr, ShortLowSpeed())
               ->Pull(*dst, Ref(fmt::format("127.0.0.1:{}/app:1", proxy.port())), opts);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("too slow"), std::string::npos) << m;
  EXPECT_NE(m.find(img.layers[0].digest.ToString()), std::string::npos) << m;
  EXPECT_EQ(gets.load(), 3);  // the first try and two resumes
  EXPECT_FALSE(dst->Has(img.layers[0].digest));
}

TEST_F(FaultIntegrationTest, PullRepairsACorruptLocalBlobAndLeavesTheOthersAlone) {
  auto dir = MakeTempDir();
  auto seed = OpenStore(dir.path() / "seed");
  auto img = Seed(*seed, "app", {20000, 30000});
  auto dst = OpenStore(dir.path() / "dst");
  auto client = PlainClient();
  const auto ref = Ref(Host() + "/app:1");
  ASSERT_OK(client->Pull(*dst, ref, {}));
  const auto bad = dst->BlobPath(img.layers[0].digest);
  ASSERT_EQ(::chmod(bad.c_str(), 0644), 0);
  {
    auto r = RunCommand(
        fmt::format("printf 'XXXX' | dd of={} bs=1 seek=100 conv=notrunc 2>&1", bad.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  ASSERT_FALSE(dst->VerifyBlob(img.layers[0].digest));
  std::map<std::string, std::pair<ino_t, int64_t>> others;
  for (const auto& d : {img.layers[1].digest, img.config.digest, img.manifest.digest}) {
    struct stat st;
    ASSERT_EQ(::stat(dst->BlobPath(d).c_str(), &st), 0);
    others[d.ToString()] = {st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
  }

  RecordingSink sink;
  PullOptions opts;
  opts.progress = &sink;
  ASSERT_OK_AND_ASSIGN(auto pulled, client->Pull(*dst, ref, opts));
  EXPECT_EQ(pulled.blobs_fetched, 1);
  EXPECT_EQ(sink.counts[ProgressEvent::Kind::kBlobQuarantined], 1);
  ASSERT_OK(dst->VerifyBlob(img.layers[0].digest));
  for (const auto& [d, before] : others) {
    struct stat st;
    auto digest = *oci::Digest::Parse(d);
    ASSERT_EQ(::stat(dst->BlobPath(digest).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, before.first) << d;
    EXPECT_EQ(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, before.second) << d;
  }
  size_t quarantined = 0;
  for (const auto& e : std::filesystem::directory_iterator(dst->root() / "quarantine")) {
    (void)e;
    ++quarantined;
  }
  EXPECT_EQ(quarantined, 1u);
  ASSERT_OK_AND_ASSIGN(auto loaded, dst->LoadImage(Host() + "/app:1"));
  EXPECT_EQ(loaded.descriptor.digest, img.manifest.digest);
  EXPECT_TRUE(dst->Fsck().ok());
}

TEST_F(FaultIntegrationTest, PushRefusesACorruptLocalBlobBeforeFinalizing) {
  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "monolithic");
    auto dir = MakeTempDir();
    auto store = OpenStore(dir.path() / "s");
    auto img = MakeTestImage(*store, "app:1", {200000, 3000});
    const auto bad = store->BlobPath(img.layers[0].digest);
    ASSERT_EQ(::chmod(bad.c_str(), 0644), 0);
    auto w = RunCommand(
        fmt::format("printf 'XXXX' | dd of={} bs=1 seek=150000 conv=notrunc 2>&1", bad.string()));
    ASSERT_EQ(w.exit_code, 0) << w.output;
    ASSERT_OK_AND_ASSIGN(auto actual, oci::DigestFile(bad.string()));
    FaultProxy proxy(registry_->port(), [](const ProxyRequest&) { return ProxyAction::Forward(); });
    PushOptions opts;
    opts.jobs = 1;
    if (chunked) {
      opts.monolithic_max = 64 * 1024;
      opts.chunk_size = 64 * 1024;
    }
    const std::string repo = chunked ? "corrupt-chunked" : "corrupt-mono";
    auto r = PlainClient()->Push(*store, "app:1",
                                 Ref(fmt::format("127.0.0.1:{}/{}:1", proxy.port(), repo)), opts);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
    const std::string& m = r.error().message();
    EXPECT_NE(m.find("digest mismatch"), std::string::npos) << m;
    EXPECT_NE(m.find("expected " + img.layers[0].digest.ToString()), std::string::npos) << m;
    EXPECT_NE(m.find("actual " + actual.ToString()), std::string::npos) << m;
    // The registry has neither the blob under its name nor the manifest.
    auto head =
        RunCommand(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' -I "
                               "http://{}/v2/{}/blobs/{}",
                               Host(), repo, img.layers[0].digest.ToString()));
    EXPECT_EQ(head.output, "404");
    auto head_actual =
        RunCommand(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' -I "
                               "http://{}/v2/{}/blobs/{}",
                               Host(), repo, actual.ToString()));
    EXPECT_EQ(head_actual.output, "404");
    for (const auto& req : proxy.requests()) {
      EXPECT_FALSE(req.method == "PUT" && req.target.find("/manifests/") != std::string::npos);
      if (chunked) {  // the final PUT ?digest= is never sent
        EXPECT_FALSE(IsFinishingBlobPut(req) &&
                     req.target.find(img.layers[0].digest.hex()) != std::string::npos)
            << req.target;
      }
    }
  }
}

}  // namespace
}  // namespace strata::registry
