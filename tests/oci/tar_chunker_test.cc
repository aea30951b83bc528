#include "oci/tar_chunker.h"

#include <fmt/format.h>

#include <limits>
#include <string>
#include <vector>

#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

// The name hash is part of the layer format: these values must never change.
TEST(TarChunkerTest, NameHashIsPinned) {
  EXPECT_EQ(TarChunker::NameHash(""), 0xf52a15e9a9b5e89bull);
  EXPECT_EQ(TarChunker::NameHash("usr/bin/ls"), 0xbd9f74e7938579f8ull);  // cuts: 0 mod 8
  EXPECT_EQ(TarChunker::NameHash("etc/hostname"), 0xf20b94045d763e59ull);
}

// Small entries: no cut before kMinChunk, then at the first name whose hash
// is 0 mod 8, and always once kMaxChunk is reached.
TEST(TarChunkerTest, SmallEntriesCutOnNamesAfterTheMinimum) {
  TarChunker c;
  uint64_t off = 0;
  std::vector<uint64_t> cuts;
  std::vector<std::string> cut_names;
  for (int i = 0; i < 2000; ++i) {
    std::string name = fmt::format("f{}", i);
    ASSERT_OK(c.OnEntryHeader(off, name, 1000));
    if (c.CutAt(off)) {
      cuts.push_back(off);
      cut_names.push_back(name);
    }
    ASSERT_OK(c.OnEntryData(off + 512));
    EXPECT_EQ(c.NextCutAfter(off + 512), kNone);  // nothing inside small entries
    off += 512 + 1024;
  }
  ASSERT_GT(cuts.size(), 4u);
  uint64_t last = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    uint64_t since = cuts[i] - last;
    EXPECT_GE(since, TarChunker::kMinChunk);
    EXPECT_TRUE(TarChunker::NameHash(cut_names[i]) % 8 == 0 || since >= TarChunker::kMaxChunk)
        << cut_names[i];
    last = cuts[i];
  }
}

TEST(TarChunkerTest, MaxChunkForcesACut) {
  TarChunker c;
  // Names that never cut by hash.
  uint64_t off = 0;
  int i = 0;
  int entries = 0;
  while (off <= TarChunker::kMaxChunk) {
    std::string name = fmt::format("n{}", i++);
    if (TarChunker::NameHash(name) % 8 == 0) continue;
    ASSERT_OK(c.OnEntryHeader(off, name, 100000));
    EXPECT_FALSE(c.CutAt(off)) << off;
    ASSERT_OK(c.OnEntryData(off + 512));
    off += 512 + 100352;
    ++entries;
  }
  std::string name = fmt::format("n{}", i);
  while (TarChunker::NameHash(name) % 8 == 0) name += "x";
  ASSERT_OK(c.OnEntryHeader(off, name, 10));
  EXPECT_TRUE(c.CutAt(off));
}

// A big entry starts its own chunk, is cut every kBigEntry bytes from its
// first data byte, and the next entry starts a new chunk.
TEST(TarChunkerTest, BigEntriesAreCutEveryMebibyte) {
  TarChunker c;
  const uint64_t big = 3 * TarChunker::kBigEntry + 100;
  ASSERT_OK(c.OnEntryHeader(0, "small", 10));
  ASSERT_OK(c.OnEntryData(512));
  ASSERT_OK(c.OnEntryHeader(1024, "big", static_cast<int64_t>(big)));
  EXPECT_TRUE(c.CutAt(1024));
  ASSERT_OK(c.OnEntryData(1024 + 512));
  const uint64_t data = 1536;
  EXPECT_EQ(c.NextCutAfter(data), data + TarChunker::kBigEntry);
  EXPECT_EQ(c.NextCutAfter(data + TarChunker::kBigEntry), data + 2 * TarChunker::kBigEntry);
  EXPECT_TRUE(c.CutAt(data + 2 * TarChunker::kBigEntry));
  EXPECT_EQ(c.NextCutAfter(data + 2 * TarChunker::kBigEntry), data + 3 * TarChunker::kBigEntry);
  EXPECT_EQ(c.NextCutAfter(data + 3 * TarChunker::kBigEntry), kNone);  // the rest: no cut
  const uint64_t next = data + ((big + 511) / 512) * 512;
  ASSERT_OK(c.OnEntryHeader(next, "after", 10));
  EXPECT_TRUE(c.CutAt(next));
}

TEST(TarChunkerTest, ExactlyOneMebibyteHasNoInnerCut) {
  TarChunker c;
  ASSERT_OK(c.OnEntryHeader(0, "big", static_cast<int64_t>(TarChunker::kBigEntry)));
  ASSERT_OK(c.OnEntryData(512));
  EXPECT_EQ(c.NextCutAfter(512), kNone);
}

TEST(TarChunkerTest, OffsetsGoingBackwardsAreInvalid) {
  TarChunker c;
  ASSERT_OK(c.OnEntryHeader(4096, "a", 0));
  auto s = c.OnEntryHeader(1024, "b", 0);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(c.OnEntryData(10).has_value());
}

}  // namespace
}  // namespace strata::oci
