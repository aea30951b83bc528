#include "builder/engine/build_cache.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

TEST(CacheKeyTest, FieldsAreLengthPrefixed) {
  EXPECT_NE(CacheKey("k").Add("ab").Add("c").Finish(), CacheKey("k").Add("a").Add("bc").Finish());
  EXPECT_EQ(CacheKey("k").Add("a").Finish(), CacheKey("k").Add("a").Finish());
  EXPECT_NE(CacheKey("RUN").Add("a").Finish(), CacheKey("COPY").Add("a").Finish());
  EXPECT_NE(CacheKey("k").Add(std::vector<std::string>{"a", "b"}).Finish(),
            CacheKey("k").Add(std::vector<std::string>{"a"}).Add("b").Finish());
}

TEST(BuildCacheTest, RecordLookupAndMissWhenBlobIsGone) {
  auto dir = testing::MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, oci::Store::Open(dir.path() / "store"));
  BuildCache cache(*store);
  auto key = CacheKey("RUN").Add("x").Finish();
  EXPECT_FALSE(cache.Lookup(key).has_value());
  ASSERT_OK_AND_ASSIGN(auto layer,
                       store->Put("layer bytes", "application/vnd.oci.image.layer.v1.tar"));
  CacheRecord rec;
  rec.created_by = "RUN x";
  rec.created = "2026-11-26T00:00:00Z";
  rec.layer = layer;
  rec.diff_id = layer.digest;
  ASSERT_OK(cache.Record(key, rec));
  auto hit = cache.Lookup(key);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->created_by, "RUN x");
  EXPECT_EQ(hit->created, "2026-11-26T00:00:00Z");
  EXPECT_EQ(hit->layer.digest, layer.digest);
  // prune keeps the blob the record names when the records are its roots...
  ASSERT_OK_AND_ASSIGN(auto roots, CacheRecordRoots(*store));
  EXPECT_EQ(roots, std::vector<oci::Digest>{layer.digest});
  ASSERT_OK(store->Prune({.extra_roots = [&] { return CacheRecordRoots(*store); }}));
  EXPECT_TRUE(cache.Lookup(key).has_value());
  // ...unless --all drops them, and then the record is a miss, not an error.
  ASSERT_OK_AND_ASSIGN(auto dropped, DropCacheRecords(*store));
  EXPECT_EQ(dropped, 1);
  ASSERT_OK(store->Prune({}));
  EXPECT_FALSE(store->Has(layer.digest));
  EXPECT_FALSE(cache.Lookup(key).has_value());
}

TEST(BuildCacheTest, EmptyLayerRecordsNeedNoBlob) {
  auto dir = testing::MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, oci::Store::Open(dir.path() / "store"));
  BuildCache cache(*store);
  auto key = CacheKey("RUN").Add("true").Finish();
  CacheRecord rec;
  rec.created_by = "RUN true";
  rec.empty_layer = true;
  ASSERT_OK(cache.Record(key, rec));
  auto hit = cache.Lookup(key);
  ASSERT_TRUE(hit.has_value());
  EXPECT_TRUE(hit->empty_layer);
}

TEST(BuildCacheTest, CorruptRecordIsAMiss) {
  auto dir = testing::MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, oci::Store::Open(dir.path() / "store"));
  BuildCache cache(*store);
  auto key = CacheKey("RUN").Add("y").Finish();
  testing::WriteTestFile(store->CacheDir() / (key.hex() + ".json"), "{not json");
  EXPECT_FALSE(cache.Lookup(key).has_value());
}

}  // namespace
}  // namespace strata::builder

namespace strata::builder {
namespace {

TEST(BuildCacheTest, ExportImportRoundTripIntoAnotherStore) {
  auto dir = testing::MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto a, oci::Store::Open(dir.path() / "a"));
  ASSERT_OK_AND_ASSIGN(auto layer, a->Put("layer", "application/vnd.oci.image.layer.v1.tar"));
  CacheRecord with_layer;
  with_layer.created_by = "RUN x";
  with_layer.created = "2026-01-01T00:00:00Z";
  with_layer.layer = layer;
  with_layer.diff_id = layer.digest;
  CacheRecord meta;
  meta.created_by = "ENV A=1";
  meta.created = "2026-01-01T00:00:01Z";
  meta.empty_layer = true;
  auto k1 = CacheKey("RUN").Add("x").Finish();
  auto k2 = CacheKey("STEP").Add("ENV").Finish();
  ASSERT_OK_AND_ASSIGN(auto manifest, ExportCache(*a, {{k1, with_layer}, {k2, meta}}));
  ASSERT_OK_AND_ASSIGN(auto img, a->LoadImage(manifest));
  EXPECT_EQ(img.manifest.layers.size(), 1u);
  // "Pull" into another store: copy the blobs, then import.
  ASSERT_OK_AND_ASSIGN(auto b, oci::Store::Open(dir.path() / "b"));
  for (const auto& d : {manifest.digest, img.manifest.config.digest, layer.digest}) {
    ASSERT_OK_AND_ASSIGN(auto bytes, a->ReadBlob(d));
    ASSERT_OK(b->Put(bytes, "x"));
  }
  ASSERT_OK_AND_ASSIGN(auto img_b, b->LoadImage(manifest));
  ASSERT_OK_AND_ASSIGN(int n, ImportCache(*b, img_b));
  EXPECT_EQ(n, 2);
  BuildCache cache_b(*b);
  auto hit = cache_b.Lookup(k1);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->layer.digest, layer.digest);
  EXPECT_EQ(hit->created, "2026-01-01T00:00:00Z");
  EXPECT_TRUE(cache_b.Lookup(k2)->empty_layer);
  // Importing again adds nothing; an ordinary image is refused.
  EXPECT_EQ(*ImportCache(*b, img_b), 0);
  img_b.config.extra = nlohmann::json::object();
  EXPECT_EQ(ImportCache(*b, img_b).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::builder
