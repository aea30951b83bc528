// ClientFixture: a registry::Client over a FakeRegistry (tests/registry/
// fake_registry.h) with a FakeClock, a store in a temp dir, and helpers to
// make images and to look at the requests the client sent.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "oci/media_types.h"
#include "oci/store.h"
#include "registry/client.h"
#include "tests/registry/fake_registry.h"
#include "tests/registry/fakes.h"
#include "tests/testing/test_util.h"

namespace strata::registry::testing {

struct LocalImage {
  oci::Descriptor manifest;
  oci::Descriptor config;
  oci::Descriptor layer;
  std::string manifest_bytes;
};

class ClientFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strata::testing::MakeTempDir();
    store_ = OpenStore("store");
    fake_ = registry_.Transport();
    clock_ = std::make_shared<FakeClock>();
    client_ = NewClient();
  }

  std::unique_ptr<oci::Store> OpenStore(const std::string& name) {
    auto s = oci::Store::Open(dir_.path() / name);
    EXPECT_TRUE(s.has_value()) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }

  // A client over the fake registry; `auth` as if given by --creds.
  std::unique_ptr<Client> NewClient(ClientOptions options = {},
                                    std::optional<AuthConfig> auth = std::nullopt) {
    std::shared_ptr<const CredentialStore> creds;
    if (auth) {
      CredentialSources sources;
      sources.creds = auth;
      sources.home = dir_.path() / "home";  // no real ~/.docker
      creds = std::make_shared<CredentialStore>(std::move(sources), nullptr);
    }
    return std::make_unique<Client>(fake_, std::move(creds), std::move(options), clock_);
  }

  static std::string ManifestJson(const oci::Descriptor& config,
                                  const std::vector<oci::Descriptor>& layers) {
    nlohmann::json ls = nlohmann::json::array();
    for (const auto& l : layers)
      ls.push_back(
          {{"mediaType", l.media_type}, {"digest", l.digest.ToString()}, {"size", l.size}});
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", oci::media_type::kImageManifest},
                        {"config",
                         {{"mediaType", oci::media_type::kImageConfig},
                          {"digest", config.digest.ToString()},
                          {"size", config.size}}},
                        {"layers", ls}};
    return m.dump();
  }

  static std::string ConfigJson(const std::string& arch, const oci::Digest& diff_id) {
    nlohmann::json config = {{"architecture", arch},
                             {"os", "linux"},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.ToString()}}}}};
    return config.dump();
  }

  // An image of one layer in `store`, tagged `tag` (if not empty).
  LocalImage MakeImage(oci::Store& store, const std::string& layer_bytes,
                       const std::string& tag = "app:1", const std::string& arch = "amd64") {
    LocalImage img;
    img.layer = *store.Put(layer_bytes, std::string(oci::media_type::kLayerTarGzip));
    img.layer.media_type = oci::media_type::kLayerTarGzip;
    img.config =
        *store.Put(ConfigJson(arch, img.layer.digest), std::string(oci::media_type::kImageConfig));
    img.manifest_bytes = ManifestJson(img.config, {img.layer});
    img.manifest = *store.Put(img.manifest_bytes, std::string(oci::media_type::kImageManifest));
    if (!tag.empty()) {
      EXPECT_TRUE(store.Tag(*oci::Reference::Parse(tag), img.manifest).has_value());
    }
    return img;
  }

  // An image of one layer served by the fake registry in `repo` under `tag`.
  LocalImage ServeImage(const std::string& repo, const std::string& tag,
                        const std::string& layer_bytes, const std::string& arch = "amd64") {
    LocalImage img;
    auto& r = registry_.repo(repo);
    img.layer.digest = oci::Digest::Of(layer_bytes);
    img.layer.size = static_cast<int64_t>(layer_bytes.size());
    img.layer.media_type = oci::media_type::kLayerTarGzip;
    r.blobs[img.layer.digest.ToString()] = layer_bytes;
    const std::string config = ConfigJson(arch, img.layer.digest);
    img.config.digest = oci::Digest::Of(config);
    img.config.size = static_cast<int64_t>(config.size());
    img.config.media_type = oci::media_type::kImageConfig;
    r.blobs[img.config.digest.ToString()] = config;
    img.manifest_bytes = ManifestJson(img.config, {img.layer});
    registry_.PutManifest(repo, tag, img.manifest_bytes,
                          std::string(oci::media_type::kImageManifest));
    img.manifest.digest = oci::Digest::Of(img.manifest_bytes);
    img.manifest.size = static_cast<int64_t>(img.manifest_bytes.size());
    img.manifest.media_type = oci::media_type::kImageManifest;
    return img;
  }

  // Overwrites a committed (read-only) blob in place with bytes of the same size.
  static void Corrupt(const std::filesystem::path& path) {
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto bytes = ReadFile(path);
    ASSERT_TRUE(bytes.has_value());
    std::string b = *bytes;
    b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x5a);
    strata::testing::WriteTestFile(path, b, 0444);
  }

  // The requests with `method` whose URL contains `url_part`.
  std::vector<Request> Sent(const std::string& method, const std::string& url_part) {
    std::vector<Request> out;
    for (const auto& r : fake_->requests())
      if ((method.empty() || r.method == method) && r.url.find(url_part) != std::string::npos)
        out.push_back(r);
    return out;
  }
  int CountRequests(const std::string& method, const std::string& url_part) {
    return static_cast<int>(Sent(method, url_part).size());
  }

  static oci::Reference Ref(const std::string& s) { return *oci::Reference::Parse(s); }
  oci::Reference Dest() { return Ref("reg.example/app:1"); }

  ScopedTempDir dir_;
  std::unique_ptr<oci::Store> store_;
  FakeRegistry registry_;
  std::shared_ptr<ScriptedTransport> fake_;
  std::shared_ptr<FakeClock> clock_;
  std::unique_ptr<Client> client_;
};

}  // namespace strata::registry::testing
