#include "registry/referrers.h"

#include "oci/manifest.h"
#include "oci/referrers.h"
#include "tests/registry/client_fixture.h"

namespace strata::registry::testing {
namespace {

using ::testing::HasSubstr;

class ReferrersPushTest : public ClientFixture {
 protected:
  // An image in the store with an SBOM and a provenance attestation.
  LocalImage ImageWithAttestations() {
    LocalImage img = MakeImage(*store_, "layer-bytes", "app:1");
    img.manifest.media_type = oci::media_type::kImageManifest;
    sbom_ = *oci::PutAttestation(*store_, img.manifest, R"({"sbom":1})", oci::kSbomArtifactType,
                                 oci::kSpdxPredicateType, "");
    prov_ =
        *oci::PutAttestation(*store_, img.manifest, R"({"prov":1})", oci::kProvenanceArtifactType,
                             oci::kSlsaProvenanceV1PredicateType, "");
    return img;
  }
  oci::Reference Dest() { return *oci::Reference::Parse("reg.example/team/app:1"); }
  int Count(const std::string& method, const std::string& path_part) {
    int n = 0;
    for (const auto& r : fake_->requests()) {
      if (r.method == method && r.url.find(path_part) != std::string::npos) ++n;
    }
    return n;
  }
  oci::Descriptor sbom_, prov_;
};

TEST_F(ReferrersPushTest, TagSchemaWhenTheRegistryHasNoReferrersApi) {
  LocalImage img = ImageWithAttestations();
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), {}));
  auto r = PushReferrers(*client_, *store_, img.manifest.digest, Dest(), {});
  ASSERT_OK(r);
  EXPECT_EQ(r->pushed, 2);
  EXPECT_TRUE(r->tag_schema);
  auto& repo = registry_.repo("team/app");
  const std::string tag = oci::ReferrersTag(img.manifest.digest);
  ASSERT_TRUE(repo.manifests.count(tag));
  auto idx = oci::Index::Parse(repo.manifests[tag]);
  ASSERT_OK(idx);
  ASSERT_EQ(idx->manifests.size(), 2u);
  EXPECT_TRUE(repo.manifests.count(sbom_.digest.ToString()));
  EXPECT_TRUE(repo.manifests.count(prov_.digest.ToString()));
  // The image's tag still names the image (the artifacts go by digest).
  EXPECT_EQ(oci::Digest::Of(repo.manifests["1"]), img.manifest.digest);
  // Read back through the tag schema, and one blob.
  auto listed = ListRemoteReferrers(*client_, Dest(), img.manifest.digest);
  ASSERT_OK(listed);
  EXPECT_TRUE(listed->tag_schema);
  ASSERT_EQ(listed->referrers.size(), 2u);
  EXPECT_EQ(listed->referrers[0].artifact_type.empty(), false);
  auto m = FetchSmallBlob(*client_, Dest(), sbom_, true);
  ASSERT_OK(m);
  auto parsed = oci::Manifest::Parse(*m);
  ASSERT_OK(parsed);
  auto stmt = FetchSmallBlob(*client_, Dest(), parsed->layers[0], false);
  ASSERT_OK(stmt);
  EXPECT_EQ(*stmt, R"({"sbom":1})");
  // A second push changes nothing: the index is not PUT again.
  const int puts = Count("PUT", "/manifests/" + tag);
  ASSERT_OK(PushReferrers(*client_, *store_, img.manifest.digest, Dest(), {}));
  EXPECT_EQ(Count("PUT", "/manifests/" + tag), puts);
}

TEST_F(ReferrersPushTest, TagSchemaKeepsOtherClientsReferrers) {
  LocalImage img = ImageWithAttestations();
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), {}));
  // Another tool's referrer is already listed under the tag.
  oci::Descriptor theirs = oci::Descriptor::Of(std::string(oci::media_type::kImageManifest),
                                               oci::Digest::Of("signature"), 9);
  theirs.artifact_type = "application/vnd.dev.cosign.artifact.sig.v1+json";
  registry_.PutManifest("team/app", oci::ReferrersTag(img.manifest.digest),
                        oci::ReferrersIndex({theirs}).Serialize(),
                        std::string(oci::media_type::kImageIndex));
  ASSERT_OK(PushReferrers(*client_, *store_, img.manifest.digest, Dest(), {}));
  auto listed = ListRemoteReferrers(*client_, Dest(), img.manifest.digest);
  ASSERT_OK(listed);
  EXPECT_EQ(listed->referrers.size(), 3u);
}

TEST_F(ReferrersPushTest, ReferrersApiLeavesTheTagAlone) {
  LocalImage img = ImageWithAttestations();
  // A registry with the referrers API: it lists the manifests whose
  // subject is the digest (computed from what was pushed).
  registry_.hook = [&](const Request& req) -> std::optional<Result<Response>> {
    const std::string marker = "/v2/team/app/referrers/";
    auto at = req.url.find(marker);
    if (req.method != "GET" || at == std::string::npos) return std::nullopt;
    const std::string subject = req.url.substr(at + marker.size());
    std::vector<oci::Descriptor> list;
    for (const auto& [ref, bytes] : registry_.repo("team/app").manifests) {
      if (!ref.starts_with("sha256:")) continue;
      auto m = oci::Manifest::Parse(bytes);
      if (!m || !m->subject || m->subject->digest.ToString() != subject) continue;
      auto d = oci::Descriptor::Of(std::string(oci::media_type::kImageManifest),
                                   oci::Digest::Of(bytes), static_cast<int64_t>(bytes.size()));
      d.artifact_type = m->artifact_type;
      d.annotations = m->annotations;
      list.push_back(d);
    }
    return ScriptedTransport::Deliver(
        req, 200, oci::ReferrersIndex(list).Serialize(),
        {{"Content-Type", std::string(oci::media_type::kImageIndex)}});
  };
  ASSERT_OK(client_->Push(*store_, "app:1", Dest(), {}));
  auto r = PushReferrers(*client_, *store_, img.manifest.digest, Dest(), {});
  ASSERT_OK(r);
  EXPECT_EQ(r->pushed, 2);
  EXPECT_FALSE(r->tag_schema);
  EXPECT_FALSE(registry_.repo("team/app").manifests.count(oci::ReferrersTag(img.manifest.digest)));
  EXPECT_EQ(Count("PUT", "/manifests/sha256-"), 0);
  auto listed = ListRemoteReferrers(*client_, Dest(), img.manifest.digest);
  ASSERT_OK(listed);
  EXPECT_FALSE(listed->tag_schema);
  ASSERT_EQ(listed->referrers.size(), 2u);
  for (const auto& d : listed->referrers) {
    EXPECT_TRUE(d.digest == sbom_.digest || d.digest == prov_.digest);
  }
}

TEST_F(ReferrersPushTest, NothingToPushWithoutReferrers) {
  LocalImage img = MakeImage(*store_, "plain", "app:1");
  auto r = PushReferrers(*client_, *store_, img.manifest.digest, Dest(), {});
  ASSERT_OK(r);
  EXPECT_EQ(r->pushed, 0);
  EXPECT_EQ(Count("GET", "/referrers/"), 0);
}

TEST_F(ReferrersPushTest, CorruptBlobIsRefused) {
  LocalImage img = ImageWithAttestations();
  oci::Descriptor d = sbom_;
  registry_.repo("team/app").manifests[d.digest.ToString()] = "tampered";
  registry_.repo("team/app").media_types[d.digest.ToString()] =
      std::string(oci::media_type::kImageManifest);
  auto m = FetchSmallBlob(*client_, Dest(), d, true);
  ASSERT_FALSE(m.has_value());
  EXPECT_THAT(m.error().message(), HasSubstr(d.digest.ToString()));
}

}  // namespace
}  // namespace strata::registry::testing
