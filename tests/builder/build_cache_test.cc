#include "builder/build_cache.h"

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
  // prune keeps the blob the record names...
  ASSERT_OK(store->Prune({}));
  EXPECT_TRUE(cache.Lookup(key).has_value());
  // ...unless --all, and then the record is a miss, not an error.
  ASSERT_OK(store->Prune({.all = true}));
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
