#include "oci/manifest.h"

#include "oci/image_config.h"
#include "oci/json_util.h"
#include "oci/media_types.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST(DescriptorTest, RoundTripKeepsUnknownFields) {
  nlohmann::json j = {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                      {"digest", kD1},
                      {"size", 42},
                      {"annotations", {{"a", "b"}}},
                      {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}},
                      {"x-foreign", {1, 2, 3}}};
  auto d = Descriptor::FromJson(j);
  ASSERT_OK(d);
  EXPECT_EQ(d->size, 42);
  EXPECT_EQ(d->annotations.at("a"), "b");
  ASSERT_TRUE(d->platform.has_value());
  EXPECT_EQ(d->ToJson(), j);
}

TEST(DescriptorTest, RejectsBadDigestAndNegativeSize) {
  auto bad = Descriptor::FromJson({{"mediaType", "x"}, {"digest", "sha256:nope"}, {"size", 1}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), ::testing::HasSubstr("sha256:nope"));
  auto neg = Descriptor::FromJson({{"mediaType", "x"}, {"digest", kD1}, {"size", -1}});
  ASSERT_FALSE(neg.has_value());
  auto wrong_type = Descriptor::FromJson({{"mediaType", "x"}, {"digest", kD1}, {"size", "1"}});
  ASSERT_FALSE(wrong_type.has_value());
}

TEST(ManifestTest, ParseAndRoundTrip) {
  nlohmann::json j = {
      {"schemaVersion", 2},
      {"mediaType", media_type::kImageManifest},
      {"config", {{"mediaType", media_type::kImageConfig}, {"digest", kD1}, {"size", 7}}},
      {"layers", {{{"mediaType", media_type::kLayerTarGzip}, {"digest", kD2}, {"size", 9}}}},
      {"annotations", {{"org.opencontainers.image.created", "2026-01-01T00:00:00Z"}}},
      {"foreign", "kept"}};
  auto m = Manifest::Parse(j.dump());
  ASSERT_OK(m);
  EXPECT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->config.size, 7);
  EXPECT_EQ(m->ToJson(), j);
}

TEST(ManifestTest, DockerSchema2IsAccepted) {
  nlohmann::json j = {
      {"schemaVersion", 2},
      {"mediaType", media_type::kDockerManifest},
      {"config", {{"mediaType", media_type::kDockerConfig}, {"digest", kD1}, {"size", 7}}},
      {"layers", {{{"mediaType", media_type::kDockerLayerGzip}, {"digest", kD2}, {"size", 9}}}}};
  auto m = Manifest::Parse(j.dump());
  ASSERT_OK(m);
  EXPECT_EQ(*DetectManifestMediaType(j.dump()), media_type::kDockerManifest);
}

TEST(ManifestTest, RejectsGarbage) {
  EXPECT_FALSE(Manifest::Parse("{").has_value());
  EXPECT_FALSE(Manifest::Parse("[]").has_value());
  EXPECT_FALSE(Manifest::Parse(R"({"schemaVersion":1})").has_value());
  EXPECT_FALSE(Manifest::Parse(R"({"schemaVersion":2})").has_value());
  EXPECT_FALSE(
      Manifest::Parse(
          R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{}})")
          .has_value());
}

TEST(IndexTest, ParseAndRoundTripWithPlatforms) {
  nlohmann::json j = {
      {"schemaVersion", 2},
      {"mediaType", media_type::kImageIndex},
      {"manifests",
       {{{"mediaType", media_type::kImageManifest},
         {"digest", kD1},
         {"size", 1},
         {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
        {{"mediaType", media_type::kImageManifest},
         {"digest", kD2},
         {"size", 2},
         {"platform", {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v7"}}}}}}};
  auto x = Index::Parse(j.dump());
  ASSERT_OK(x);
  ASSERT_EQ(x->manifests.size(), 2u);
  EXPECT_EQ(x->manifests[1].platform->variant, "v7");
  EXPECT_EQ(x->ToJson(), j);
  EXPECT_EQ(*DetectManifestMediaType(R"({"schemaVersion":2,"manifests":[]})"),
            media_type::kImageIndex);
}

TEST(PlatformTest, ParseAndMatch) {
  auto p = Platform::Parse("linux/arm64/v8");
  ASSERT_OK(p);
  EXPECT_EQ(p->ToString(), "linux/arm64");
  Platform arm64{
      .os = "linux", .architecture = "arm64", .variant = "v8", .os_version = "", .os_features = {}};
  EXPECT_TRUE(arm64.Matches(*p));
  EXPECT_TRUE(Platform::Parse("linux/x86_64")->Matches(*Platform::Parse("linux/amd64")));
  EXPECT_FALSE(Platform::Parse("linux/arm/v6")->Matches(*Platform::Parse("linux/arm/v7")));
  EXPECT_TRUE(Platform::Parse("linux/arm/v7")->Matches(*Platform::Parse("linux/arm")));
  EXPECT_FALSE(Platform::Parse("windows/amd64")->Matches(*Platform::Parse("linux/amd64")));
  EXPECT_FALSE(Platform::Parse("linux").has_value());
  EXPECT_FALSE(Platform::Parse("linux/amd64/v2/x").has_value());
  EXPECT_EQ(Platform::Host().os, "linux");
}

TEST(PlatformTest, FromMachineIsTheOneHostTable) {
  EXPECT_EQ(Platform::FromMachine("x86_64").ToString(), "linux/amd64");
  EXPECT_EQ(Platform::FromMachine("aarch64").ToString(), "linux/arm64");
  EXPECT_EQ(Platform::FromMachine("armv7l").ToString(), "linux/arm/v7");
  EXPECT_EQ(Platform::FromMachine("armv6l").ToString(), "linux/arm/v6");
  EXPECT_EQ(Platform::FromMachine("i686").ToString(), "linux/386");
  EXPECT_EQ(Platform::FromMachine("s390x").ToString(), "linux/s390x");
}

TEST(SelectManifestTest, FirstMatchingUsableEntry) {
  auto entry = [](const char* platform, const char* content) {
    Descriptor d =
        Descriptor::Of("application/vnd.oci.image.manifest.v1+json", Digest::Of(content), 1);
    if (platform) d.platform = *Platform::Parse(platform);
    return d;
  };
  Index idx;
  idx.manifests = {entry(nullptr, "attestation"), entry("linux/arm64", "arm"),
                   entry("linux/amd64", "amd-1"), entry("linux/amd64", "amd-2")};
  ASSERT_OK_AND_ASSIGN(size_t i, SelectManifest(idx, {.platform = *Platform::Parse("linux/amd64"),
                                                      .accept_unplatformed = false,
                                                      .usable = {}}));
  EXPECT_EQ(i, 2u);
  ASSERT_OK_AND_ASSIGN(size_t j, SelectManifest(idx, {.platform = *Platform::Parse("linux/amd64"),
                                                      .usable = [](const Descriptor& d) {
                                                        return d.digest != Digest::Of("amd-1");
                                                      }}));
  EXPECT_EQ(j, 3u);
  ASSERT_OK_AND_ASSIGN(size_t k, SelectManifest(idx, {.platform = *Platform::Parse("linux/amd64"),
                                                      .accept_unplatformed = true,
                                                      .usable = {}}));
  EXPECT_EQ(k, 0u);
  auto none = SelectManifest(
      idx,
      {.platform = *Platform::Parse("linux/s390x"), .accept_unplatformed = false, .usable = {}});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(none.error().message(), ::testing::HasSubstr("linux/arm64, linux/amd64"));
}

TEST(ImageConfigTest, RoundTripKeepsUnknownFieldsAndNullVsEmpty) {
  nlohmann::json j = {
      {"created", "2026-11-26T00:00:00Z"},
      {"architecture", "amd64"},
      {"os", "linux"},
      {"config",
       {{"Env", {"PATH=/bin", "A=b=c"}},
        {"Cmd", nlohmann::json::array()},
        {"Entrypoint", {"/bin/sh", "-c"}},
        {"ExposedPorts", {{"80/tcp", nlohmann::json::object()}}},
        {"Labels", {{"k", "v"}}},
        {"Healthcheck", {{"Test", {"CMD", "true"}}, {"Interval", 30000000000}, {"Retries", 3}}},
        {"Domainname", ""}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {kD1, kD2}}}},
      {"history",
       {{{"created_by", "RUN x"}, {"empty_layer", true}, {"x-extra", 1}},
        {{"created_by", "COPY y"}}}},
      {"moby.buildkit.buildinfo.v1", "e30="}};
  auto c = ImageConfig::Parse(j.dump());
  ASSERT_OK(c);
  EXPECT_EQ(*c->config.GetEnv("A"), "b=c");
  ASSERT_TRUE(c->config.cmd.has_value());
  EXPECT_TRUE(c->config.cmd->empty());
  EXPECT_EQ(c->diff_ids.size(), 2u);
  EXPECT_TRUE(c->history[0].empty_layer);
  EXPECT_EQ(c->config.healthcheck->retries, 3);
  EXPECT_EQ(c->ToJson(), j);
  c->config.SetEnv("PATH", "/usr/bin");
  EXPECT_EQ(c->config.env[0], "PATH=/usr/bin");
}

TEST(ImageConfigTest, RejectsBadDiffId) {
  auto c = ImageConfig::Parse(R"({"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}})");
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message(), ::testing::HasSubstr("sha256:zz"));
}

TEST(ImageConfigTest, FormatRfc3339) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace strata::oci

namespace strata::oci {
namespace {

// Regression (found by fuzzing `strata parse`): invalid UTF-8 in a string
// made nlohmann::json::dump throw and abort the process. It is replaced by
// U+FFFD, as Go's encoding/json does.
TEST(ImageConfigTest, InvalidUtf8NeverThrowsOnSerialize) {
  ImageConfig c;
  c.os = "linux";
  c.architecture = "amd64";
  c.config.env.push_back("A=\xff\xfe latin1 \xe9t\xe9");
  std::string out;
  EXPECT_NO_THROW(out = c.Serialize());
  EXPECT_NE(out.find("\xef\xbf\xbd"), std::string::npos);
  EXPECT_NO_THROW(DumpJson(nlohmann::json("\xc7"), 2));
}

}  // namespace
}  // namespace strata::oci
