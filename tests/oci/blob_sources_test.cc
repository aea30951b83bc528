#include "oci/blob_sources.h"

#include <thread>

#include "oci/media_types.h"
#include "oci/store.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

class BlobSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    auto s = Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }
  Digest Blob(const std::string& content) {
    auto d = store_->Put(content, std::string(media_type::kLayerTar));
    EXPECT_TRUE(d.has_value());
    return d->digest;
  }
  ScopedTempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(BlobSourcesTest, NoRecordReadsAsEmpty) {
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, Digest::Of("nothing")));
  EXPECT_TRUE(got.empty());
}

TEST_F(BlobSourcesTest, MostRecentFirstEachRepositoryOnce) {
  const Digest d = Blob("layer");
  ASSERT_OK(RecordBlobSource(*store_, d, {"127.0.0.1:5000", "base"}));
  ASSERT_OK(RecordBlobSource(*store_, d, {"docker.io", "library/debian"}));
  ASSERT_OK(RecordBlobSource(*store_, d, {"127.0.0.1:5000", "base"}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, d));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (BlobLocation{"127.0.0.1:5000", "base"}));
  EXPECT_EQ(got[1], (BlobLocation{"docker.io", "library/debian"}));
  EXPECT_TRUE(fs::exists(store_->root() / "sources" / "sha256" / d.hex()));
}

TEST_F(BlobSourcesTest, KeepsOnlyTheMostRecentRepositories) {
  const Digest d = Blob("layer");
  for (size_t i = 0; i < kMaxBlobSources + 3; ++i)
    ASSERT_OK(RecordBlobSource(*store_, d, {"r", "repo" + std::to_string(i)}));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, d));
  ASSERT_EQ(got.size(), kMaxBlobSources);
  EXPECT_EQ(got.front().repository, "repo" + std::to_string(kMaxBlobSources + 2));
  EXPECT_EQ(got.back().repository, "repo3");
}

TEST_F(BlobSourcesTest, RejectsEmptyNames) {
  auto s = RecordBlobSource(*store_, Blob("x"), {"", "repo"});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(BlobSourcesTest, CorruptRecordReadsAsEmptyAndIsReplaced) {
  const Digest d = Blob("layer");
  ASSERT_OK(MakeDirs(store_->SourcesDir() / "sha256"));
  ASSERT_OK(WriteFileAtomic(store_->SourcesDir() / "sha256" / d.hex(), "{not json"));
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, d));
  EXPECT_TRUE(got.empty());
  ASSERT_OK(RecordBlobSource(*store_, d, {"r", "a"}));
  ASSERT_OK_AND_ASSIGN(got, ReadBlobSources(*store_, d));
  EXPECT_EQ(got, (std::vector<BlobLocation>{{"r", "a"}}));
}

TEST_F(BlobSourcesTest, ConcurrentRecordsOfOneBlobAreAllKept) {
  const Digest d = Blob("layer");
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      EXPECT_TRUE(RecordBlobSource(*store_, d, {"r", "repo" + std::to_string(i)}).has_value());
    });
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, d));
  EXPECT_EQ(got.size(), 4u);
}

TEST_F(BlobSourcesTest, PruneDropsTheRecordsOfSweptBlobsOnly) {
  const Digest kept = Blob("kept");
  const Digest dropped = Blob("dropped");
  ASSERT_OK(RecordBlobSource(*store_, kept, {"r", "a"}));
  ASSERT_OK(RecordBlobSource(*store_, dropped, {"r", "a"}));
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({.extra_roots = [&]() -> Result<std::vector<Digest>> {
    return std::vector<Digest>{kept};
  }}));
  EXPECT_EQ(r.sources_removed, 1);
  ASSERT_OK_AND_ASSIGN(auto got, ReadBlobSources(*store_, kept));
  EXPECT_EQ(got.size(), 1u);
  ASSERT_OK_AND_ASSIGN(got, ReadBlobSources(*store_, dropped));
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(fs::exists(store_->SourcesDir() / "sha256" / dropped.hex()));
}

}  // namespace
}  // namespace strata::oci
