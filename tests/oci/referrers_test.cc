#include "oci/referrers.h"

#include <filesystem>

#include "oci/media_types.h"
#include "oci/store.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

class ReferrersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    auto s = Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }

  Descriptor MakeImage(const std::string& salt) {
    auto layer = store_->Put("layer-" + salt, std::string(media_type::kLayerTar));
    EXPECT_TRUE(layer.has_value());
    ImageConfig cfg;
    cfg.os = "linux";
    cfg.architecture = Platform::Host().architecture;
    cfg.diff_ids.push_back(layer->digest);
    cfg.config.env.push_back("SALT=" + salt);
    auto c = store_->Put(cfg.Serialize(), std::string(media_type::kImageConfig));
    EXPECT_TRUE(c.has_value());
    Manifest m;
    m.media_type = media_type::kImageManifest;
    m.config = *c;
    m.layers.push_back(*layer);
    auto md = store_->Put(m.Serialize(), std::string(media_type::kImageManifest));
    EXPECT_TRUE(md.has_value());
    return *md;
  }

  ScopedTempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ReferrersTest, AttestationManifestIsAnArtifactWithSubject) {
  auto img = MakeImage("a");
  auto att = PutAttestation(*store_, img, R"({"_type":"x"})", kSbomArtifactType, kSpdxPredicateType,
                            "2024-01-01T00:00:00Z");
  ASSERT_OK(att);
  EXPECT_EQ(att->artifact_type, kSbomArtifactType);
  auto bytes = store_->ReadBlob(att->digest);
  ASSERT_OK(bytes);
  auto m = Manifest::Parse(*bytes);
  ASSERT_OK(m);
  EXPECT_EQ(m->artifact_type, kSbomArtifactType);
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->digest, img.digest);
  EXPECT_EQ(m->config.media_type, media_type::kEmptyJson);
  EXPECT_EQ(m->config.digest, Digest::Of("{}"));
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].media_type, kInTotoMediaType);
  EXPECT_EQ(m->layers[0].annotations.at(std::string(kAnnotationPredicateType)), kSpdxPredicateType);
  EXPECT_TRUE(store_->Has(m->config.digest));
  EXPECT_EQ(*store_->ReadBlob(m->layers[0].digest), R"({"_type":"x"})");
  // Deterministic: the same inputs give the same manifest digest.
  auto again = PutAttestation(*store_, img, R"({"_type":"x"})", kSbomArtifactType,
                              kSpdxPredicateType, "2024-01-01T00:00:00Z");
  ASSERT_OK(again);
  EXPECT_EQ(again->digest, att->digest);
  auto list = ListReferrers(*store_, img.digest);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].digest, att->digest);
  EXPECT_EQ((*list)[0].artifact_type, kSbomArtifactType);
}

TEST_F(ReferrersTest, ListIsSortedAndKindsAreTold) {
  auto img = MakeImage("a");
  auto sbom = PutAttestation(*store_, img, "{\"s\":1}", kSbomArtifactType, kSpdxPredicateType, "");
  auto prov = PutAttestation(*store_, img, "{\"p\":1}", kProvenanceArtifactType,
                             kSlsaProvenanceV1PredicateType, "");
  ASSERT_OK(sbom);
  ASSERT_OK(prov);
  auto list = ListReferrers(*store_, img.digest);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_LT((*list)[0].digest.ToString(), (*list)[1].digest.ToString());
  for (const auto& r : *list) {
    EXPECT_EQ(*ReferrerIsKind(r, "sbom"), r.digest == sbom->digest);
    EXPECT_EQ(*ReferrerIsKind(r, "provenance"), r.digest == prov->digest);
  }
  EXPECT_FALSE(ReferrerIsKind((*list)[0], "vex").has_value());
  auto none = ListReferrers(*store_, MakeImage("b").digest);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(ReferrersTest, RefusesSubjectNotInStore) {
  auto d = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("nothing"), 7);
  auto att = PutAttestation(*store_, d, "{}", kSbomArtifactType, kSpdxPredicateType, "");
  ASSERT_FALSE(att.has_value());
  EXPECT_EQ(att.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(ReferrersTest, TagSchemaTagAndMerge) {
  auto d = Digest::Of("x");
  EXPECT_EQ(ReferrersTag(d), "sha256-" + d.hex());
  auto a = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("a"), 1);
  auto b = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("b"), 2);
  auto merged = MergeReferrers({b}, {a, b});
  ASSERT_EQ(merged.size(), 2u);
  auto idx = ReferrersIndex(merged);
  EXPECT_EQ(idx.media_type, media_type::kImageIndex);
  EXPECT_EQ(idx.manifests.size(), 2u);
  EXPECT_EQ(ReferrersIndex({a, b}).Serialize(), ReferrersIndex({b, a}).Serialize());
}

TEST_F(ReferrersTest, PruneKeepsAttestationsOfTaggedImagesOnly) {
  auto kept = MakeImage("kept");
  auto gone = MakeImage("gone");
  auto ref = Reference::Parse("app:1");
  ASSERT_OK(ref);
  ASSERT_OK(store_->Tag(*ref, kept));
  auto k = PutAttestation(*store_, kept, "{\"k\":1}", kSbomArtifactType, kSpdxPredicateType, "");
  auto g = PutAttestation(*store_, gone, "{\"g\":1}", kSbomArtifactType, kSpdxPredicateType, "");
  ASSERT_OK(k);
  ASSERT_OK(g);
  auto kbytes = store_->ReadBlob(k->digest);
  auto km = Manifest::Parse(*kbytes);
  ASSERT_OK(km);
  auto report = store_->Prune({});
  ASSERT_OK(report);
  EXPECT_TRUE(store_->Has(k->digest));
  EXPECT_TRUE(store_->Has(km->layers[0].digest));
  EXPECT_TRUE(store_->Has(km->config.digest));
  EXPECT_FALSE(store_->Has(g->digest));
  EXPECT_FALSE(store_->Has(gone.digest));
  auto kl = ListReferrers(*store_, kept.digest);
  ASSERT_OK(kl);
  EXPECT_EQ(kl->size(), 1u);
  // The dead subject's record went with it.
  EXPECT_FALSE(fs::exists(store_->root() / "referrers" / "sha256" / gone.digest.hex()));
  // Untagging the image lets the next prune reclaim its attestation.
  ASSERT_OK(store_->Untag(*ref));
  ASSERT_OK(store_->Prune({}));
  EXPECT_FALSE(store_->Has(k->digest));
}

TEST_F(ReferrersTest, CorruptRecordIsDataLoss) {
  auto img = MakeImage("a");
  ASSERT_OK(PutAttestation(*store_, img, "{}", kSbomArtifactType, kSpdxPredicateType, ""));
  ASSERT_OK(WriteFileAtomic(store_->root() / "referrers" / "sha256" / img.digest.hex(), "{nope"));
  auto list = ListReferrers(*store_, img.digest);
  ASSERT_FALSE(list.has_value());
  EXPECT_EQ(list.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(list.error().message().find(img.digest.hex()), std::string::npos);
}

}  // namespace
}  // namespace strata::oci

namespace strata::oci {
namespace {

TEST_F(ReferrersTest, BuildkitIndexListsImageAndAttestationManifest) {
  auto img = MakeImage("a");
  auto idx_desc =
      PutBuildkitAttestationIndex(*store_, img, Platform::Host(),
                                  {{"{\"sbom\":1}", std::string(kSpdxPredicateType)},
                                   {"{\"prov\":1}", std::string(kSlsaProvenanceV1PredicateType)}});
  ASSERT_OK(idx_desc);
  auto idx = Index::Parse(*store_->ReadBlob(idx_desc->digest));
  ASSERT_OK(idx);
  ASSERT_EQ(idx->manifests.size(), 2u);
  EXPECT_EQ(idx->manifests[0].digest, img.digest);
  ASSERT_TRUE(idx->manifests[1].platform.has_value());
  EXPECT_EQ(idx->manifests[1].platform->os, "unknown");
  auto atts = BuildkitAttestations(*idx, img.digest);
  ASSERT_EQ(atts.size(), 1u);
  auto m = Manifest::Parse(*store_->ReadBlob(atts[0].digest));
  ASSERT_OK(m);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].annotations.at(std::string(kAnnotationPredicateType)),
            kSlsaProvenanceV1PredicateType);
  // The host platform still selects the image, and the whole index is kept
  // by prune once tagged.
  auto ref = Reference::Parse("app:bk");
  ASSERT_OK(store_->Tag(*ref, *idx_desc));
  auto loaded = store_->LoadImage("app:bk");
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->descriptor.digest, img.digest);
  ASSERT_OK(store_->Prune({}));
  EXPECT_TRUE(store_->Has(atts[0].digest));
  EXPECT_TRUE(store_->Has(m->layers[0].digest));
}

}  // namespace
}  // namespace strata::oci
