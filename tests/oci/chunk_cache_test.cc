#include "oci/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "oci/layer_writer.h"
#include "oci/store.h"
#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;

const std::string kParams = GzipMemberParams(1);

class ChunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }
  // A blob "AAAA...BBBB...": two fake members of 100 bytes at 0 and 100.
  Digest PutBlob() {
    auto d = store_->Put(std::string(100, 'A') + std::string(100, 'B'), "application/octet-stream");
    EXPECT_TRUE(d.has_value());
    return d->digest;
  }
  fs::path TablePath(const Digest& blob) { return store_->ChunksDir() / "sha256" / blob.hex(); }
  std::vector<GzipMember> TwoMembers() {
    return {{.chunk = Digest::Of("a"), .offset = 0, .length = 100, .size = 1},
            {.chunk = Digest::Of("b"), .offset = 100, .length = 100, .size = 2}};
  }
  std::string Fetch(const ChunkCache& c, std::string_view chunk, uint64_t size) {
    std::vector<uint8_t> out;
    if (!c.Fetch(Digest::Of(chunk), size, &out)) return "<none>";
    return std::string(out.begin(), out.end());
  }

  ScopedTempDir dir_ = MakeTempDir();
  std::unique_ptr<Store> store_;
};

TEST_F(ChunkCacheTest, WrittenTableIsFoundAgain) {
  Digest blob = PutBlob();
  ASSERT_OK(WriteChunkTable(*store_, blob, kParams, TwoMembers()));
  EXPECT_TRUE(fs::exists(TablePath(blob)));
  auto cache = ChunkCache::Load(*store_, kParams);
  EXPECT_EQ(cache->tables(), 1u);
  EXPECT_EQ(cache->members(), 2u);
  EXPECT_EQ(Fetch(*cache, "a", 1), std::string(100, 'A'));
  EXPECT_EQ(Fetch(*cache, "b", 2), std::string(100, 'B'));
  EXPECT_EQ(Fetch(*cache, "b", 3), "<none>");  // size must match too
  EXPECT_EQ(Fetch(*cache, "c", 1), "<none>");
}

TEST_F(ChunkCacheTest, EmptyListWritesNoTable) {
  Digest blob = PutBlob();
  ASSERT_OK(WriteChunkTable(*store_, blob, kParams, {}));
  EXPECT_FALSE(fs::exists(TablePath(blob)));
}

TEST_F(ChunkCacheTest, OtherParamsMissingBlobsAndGarbageAreIgnored) {
  Digest blob = PutBlob();
  ASSERT_OK(WriteChunkTable(*store_, blob, GzipMemberParams(6), TwoMembers()));
  EXPECT_EQ(ChunkCache::Load(*store_, kParams)->members(), 0u);

  // A table of a blob that is not in the store.
  Digest gone = Digest::Of("not stored");
  ASSERT_OK(WriteChunkTable(*store_, gone, kParams, TwoMembers()));
  EXPECT_EQ(ChunkCache::Load(*store_, kParams)->members(), 0u);

  // Garbage, a wrong magic, lines that do not parse or point outside.
  ASSERT_OK(WriteFileAtomic(TablePath(blob), "\x01\x02 binary junk\n"));
  EXPECT_EQ(ChunkCache::Load(*store_, kParams)->members(), 0u);
  std::string a = Digest::Of("a").hex();
  std::string b = Digest::Of("b").hex();
  ASSERT_OK(WriteFileAtomic(TablePath(blob),
                            "strata-chunks 1\nparams " + kParams + "\n" + a + " 0 100\n" + a +
                                " 150 100 1\n" + b + " x 100 2\n" + b + " 100 100 2 extra\n" +
                                "zz 0 10 1\n" + a + " 0 0 1\n" + b + " 100 100 2\n"));
  auto cache = ChunkCache::Load(*store_, kParams);
  EXPECT_EQ(cache->members(), 1u);
  EXPECT_EQ(Fetch(*cache, "a", 1), "<none>");
  EXPECT_EQ(Fetch(*cache, "b", 2), std::string(100, 'B'));
  // An unreadable table (a directory in its place) is skipped.
  fs::remove(TablePath(blob));
  fs::create_directories(TablePath(blob));
  EXPECT_EQ(ChunkCache::Load(*store_, kParams)->members(), 0u);
}

TEST_F(ChunkCacheTest, KeepsTheNewestTables) {
  std::vector<Digest> blobs;
  for (size_t i = 0; i < ChunkCache::kMaxTables + 2; ++i) {
    Digest d = Digest::Of("blob " + std::to_string(i));
    ASSERT_OK(WriteChunkTable(*store_, d, kParams, TwoMembers()));
    // Strictly increasing mtimes, older than now, whatever the clock.
    struct timespec times[2] = {{static_cast<time_t>(1000000 + i), 0},
                                {static_cast<time_t>(1000000 + i), 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, TablePath(d).c_str(), times, 0), 0);
    blobs.push_back(d);
  }
  Digest last = Digest::Of("the newest");
  ASSERT_OK(WriteChunkTable(*store_, last, kParams, TwoMembers()));
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(store_->ChunksDir() / "sha256")) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, ChunkCache::kMaxTables);
  EXPECT_TRUE(fs::exists(TablePath(last)));
  EXPECT_FALSE(fs::exists(TablePath(blobs[0])));
  EXPECT_FALSE(fs::exists(TablePath(blobs[1])));
  EXPECT_FALSE(fs::exists(TablePath(blobs[2])));
  EXPECT_TRUE(fs::exists(TablePath(blobs[3])));
}

TEST_F(ChunkCacheTest, SweepAndPruneDropTablesOfDeletedBlobs) {
  Digest blob = PutBlob();
  ASSERT_OK(WriteChunkTable(*store_, blob, kParams, TwoMembers()));
  ASSERT_OK(WriteChunkTable(*store_, Digest::Of("gone"), kParams, TwoMembers()));
  EXPECT_EQ(SweepChunkTables(*store_), 1);
  EXPECT_TRUE(fs::exists(TablePath(blob)));

  // A committed gzip layer has a table; prune deletes the unreferenced blob
  // and its table with it.
  auto src = MakeTempDir();
  for (int i = 0; i < 20; ++i) {
    WriteTestFile(src.path() / fmt::format("f{}", i),
                  std::string(5000, static_cast<char>('a' + i)));
  }
  ASSERT_OK_AND_ASSIGN(LayerInfo info, CommitLayer(*store_, src.path(), {}));
  EXPECT_TRUE(fs::exists(TablePath(info.descriptor.digest)));
  ASSERT_OK_AND_ASSIGN(auto report, store_->Prune({}));
  EXPECT_GE(report.blobs_removed, 2);
  EXPECT_FALSE(fs::exists(TablePath(info.descriptor.digest)));
  EXPECT_FALSE(fs::exists(TablePath(blob)));
}

}  // namespace
}  // namespace strata::oci
