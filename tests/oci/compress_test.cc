#include "oci/compress.h"

#include <zlib.h>

#include <atomic>
#include <functional>
#include <map>
#include <random>
#include <string>

#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

class StringSink : public ByteSink {
 public:
  Status Write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
    return OkStatus();
  }
  Status Close() override {
    ++closes;
    return OkStatus();
  }
  std::string out;
  int closes = 0;
};

class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string s, size_t chunk = 1000) : s_(std::move(s)), chunk_(chunk) {}
  Result<size_t> Read(void* buf, size_t size) override {
    size_t n = std::min({size, chunk_, s_.size() - pos_});
    std::memcpy(buf, s_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string s_;
  size_t chunk_;
  size_t pos_ = 0;
};

// Half text-like (compressible), half random bytes, deterministic.
std::string MixedData(size_t size, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(size);
  while (s.size() < size) {
    if ((s.size() / 10000) % 2 == 0) {
      s += "line " + std::to_string(rng() % 1000) + " of some fairly repetitive text\n";
    } else {
      s.push_back(static_cast<char>(rng()));
    }
  }
  s.resize(size);
  return s;
}

std::string Compress(const std::string& data, CompressOptions opts, size_t write_chunk = 7777) {
  StringSink sink;
  auto c = NewCompressor(opts, &sink);
  EXPECT_TRUE(c.has_value());
  for (size_t off = 0; off < data.size(); off += write_chunk) {
    EXPECT_OK((*c)->Write(data.data() + off, std::min(write_chunk, data.size() - off)));
  }
  EXPECT_OK((*c)->Close());
  EXPECT_EQ(sink.closes, 1);
  return sink.out;
}

Result<std::string> Decompress(const std::string& data, Compression c) {
  StringSource src(data);
  STRATA_ASSIGN_OR_RETURN(auto d, NewDecompressor(c, &src));
  std::string out;
  char buf[3000];
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, d->Read(buf, sizeof(buf)));
    if (n == 0) break;
    out.append(buf, n);
  }
  return out;
}

// zlib's own gunzip, member by member: proves that the output is a series
// of complete, valid gzip members (each ends with Z_STREAM_END, its CRC and
// length checked by zlib) and nothing else. `members` gets their count.
std::string ZlibGunzip(const std::string& gz, int* members = nullptr) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  char buf[65536];
  int count = 0;
  do {
    int rc;
    do {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof(buf);
      rc = inflate(&zs, Z_NO_FLUSH);
      out.append(buf, sizeof(buf) - zs.avail_out);
    } while (rc == Z_OK);
    EXPECT_EQ(rc, Z_STREAM_END) << "member " << count;
    if (rc != Z_STREAM_END) break;
    ++count;
    inflateReset(&zs);
  } while (zs.avail_in > 0);
  inflateEnd(&zs);
  if (members != nullptr) *members = count;
  return out;
}

TEST(CompressTest, GzipRoundTripsAtBlockBoundaries) {
  for (size_t size : {size_t{0}, size_t{1}, kGzipFixedChunk - 1, kGzipFixedChunk,
                      kGzipFixedChunk + 1, 3 * kGzipFixedChunk + 12345}) {
    std::string data = MixedData(size);
    std::string gz = Compress(data, {.compression = Compression::kGzip, .threads = 2});
    // One member per started chunk (one for the empty stream), as with one thread.
    int members = 0;
    EXPECT_EQ(ZlibGunzip(gz, &members), data) << size;
    EXPECT_EQ(static_cast<size_t>(members),
              std::max<size_t>(1, (size + kGzipFixedChunk - 1) / kGzipFixedChunk))
        << size;
    EXPECT_EQ(gz, Compress(data, {.compression = Compression::kGzip, .threads = 1})) << size;
    ASSERT_OK_AND_ASSIGN(std::string back, Decompress(gz, Compression::kGzip));
    EXPECT_EQ(back, data) << size;
  }
}

TEST(CompressTest, GzipOutputIdenticalForAnyThreadCount) {
  std::string data = MixedData(5 * kGzipFixedChunk + 999);
  for (int level : {0, 1, 6, 9}) {
    // libdeflate's level 12 (strata 9) is slow: a shorter input will do.
    std::string in = level == 9 ? data.substr(0, 2 * kGzipFixedChunk + 77) : data;
    std::string one =
        Compress(in, {.compression = Compression::kGzip, .level = level, .threads = 1});
    for (int threads : {2, 4, 8}) {
      std::string other =
          Compress(in, {.compression = Compression::kGzip, .level = level, .threads = threads},
                   threads == 4 ? 100000 : 7777);
      EXPECT_EQ(one, other) << "level " << level << " threads " << threads;
    }
    if (level > 0) {
      EXPECT_LT(one.size(), in.size());
    }
    int members = 0;
    EXPECT_EQ(ZlibGunzip(one, &members), in);
    EXPECT_EQ(static_cast<size_t>(members), (in.size() + kGzipFixedChunk - 1) / kGzipFixedChunk);
  }
}

// Levels 0..9 keep their meaning: 0 stores, higher levels never grow the
// output on compressible data, and each maps onto a documented libdeflate
// level (part of the reuse key of a member).
TEST(CompressTest, GzipLevelsMapOntoLibdeflate) {
  EXPECT_THAT(GzipMemberParams(-1), ::testing::EndsWith(" level=1"));
  EXPECT_THAT(GzipMemberParams(1), ::testing::StartsWith("libdeflate-"));
  EXPECT_THAT(GzipMemberParams(6), ::testing::EndsWith(" level=6"));
  EXPECT_THAT(GzipMemberParams(9), ::testing::EndsWith(" level=12"));
  std::string text;
  for (int i = 0; text.size() < 600000; ++i) text += fmt::format("entry {} value {}\n", i, i % 97);
  std::string l0 = Compress(text, {.compression = Compression::kGzip, .level = 0, .threads = 2});
  std::string l1 = Compress(text, {.compression = Compression::kGzip, .level = 1, .threads = 2});
  std::string l6 = Compress(text, {.compression = Compression::kGzip, .level = 6, .threads = 2});
  EXPECT_GT(l0.size(), text.size());  // stored blocks
  EXPECT_LT(l1.size(), text.size() / 3);
  EXPECT_LE(l6.size(), l1.size());
  for (const auto* gz : {&l0, &l1, &l6}) EXPECT_EQ(ZlibGunzip(*gz), text);
}

// The stream is several members; the system's gzip accepts and checks it.
TEST(CompressTest, MultiMemberStreamPassesGzipTest) {
  std::string data = MixedData(3 * kGzipFixedChunk + 4321, 3);
  std::string gz = Compress(data, {.compression = Compression::kGzip, .threads = 2});
  int members = 0;
  EXPECT_EQ(ZlibGunzip(gz, &members), data);
  EXPECT_EQ(members, 4);
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(gz, Compression::kGzip));
  EXPECT_EQ(back, data);
  if (!testing::HaveTool("gzip")) GTEST_SKIP() << "no gzip on PATH";
  auto dir = testing::MakeTempDir();
  testing::WriteTestFile(dir.path() / "l.gz", gz);
  testing::WriteTestFile(dir.path() / "l", data);
  auto r = testing::RunCommand(
      fmt::format("gzip -t {0}/l.gz && gzip -dc {0}/l.gz | cmp - {0}/l", dir.path().string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Random chunks are written as deflate stored blocks (no CPU spent on
// deflate); mixed with compressible chunks the stream must still be valid
// gzip, identical for any thread count, and barely larger than input.
TEST(CompressTest, IncompressibleBlocksAreStoredAndStillValid) {
  std::mt19937 rng(7);
  std::string data;
  for (size_t i = 0; i < 3 * kGzipFixedChunk + 4321; ++i) data.push_back(static_cast<char>(rng()));
  data += MixedData(2 * kGzipFixedChunk);
  for (size_t i = 0; i < kGzipFixedChunk / 2; ++i) data.push_back(static_cast<char>(rng()));
  std::string one = Compress(data, {.compression = Compression::kGzip, .threads = 1});
  std::string two = Compress(data, {.compression = Compression::kGzip, .threads = 2});
  EXPECT_EQ(one, two);
  EXPECT_EQ(ZlibGunzip(one), data);
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(one, Compression::kGzip));
  EXPECT_EQ(back, data);
  // Stored random bytes cost 5 bytes per 64 KiB; the mixed part compresses.
  EXPECT_LT(one.size(), data.size());
  // A stream that is random to its end finishes with a final stored block.
  std::string random_only = data.substr(0, 2 * kGzipFixedChunk);
  std::string gz = Compress(random_only, {.compression = Compression::kGzip, .threads = 2});
  EXPECT_EQ(ZlibGunzip(gz), random_only);
  EXPECT_LE(gz.size(), random_only.size() + 64 + 5 * (random_only.size() / 65535 + 1));
}

// ---------------------------------------------------------------------------
// LayerCompressor: members at tar boundaries, records, reuse.

// Compresses `data` through a LayerCompressor told the given entry headers
// (offset, path, data size; data right after a 512-byte header).
struct Entry {
  uint64_t offset;
  std::string path;
  int64_t size;
};
struct LayerOutput {
  std::string gz;
  ChunkStats stats;
  std::vector<GzipMember> members;
};
LayerOutput CompressLayer(const std::string& data, const std::vector<Entry>& entries,
                          const GzipMemberCache* cache, int threads = 2) {
  StringSink sink;
  auto c = NewLayerCompressor({.compression = Compression::kGzip, .threads = threads},
                              {.tar_entries = true, .cache = cache, .record_members = true}, &sink);
  EXPECT_TRUE(c.has_value());
  uint64_t pos = 0;
  auto write_to = [&](uint64_t end) {
    while (pos < end) {
      size_t n = std::min<uint64_t>(end - pos, 5000);
      EXPECT_OK((*c)->Write(data.data() + pos, n));
      pos += n;
    }
  };
  for (const auto& e : entries) {
    write_to(e.offset);
    EXPECT_OK((*c)->OnEntryHeader(e.offset, e.path, e.size));
    write_to(e.offset + 512);
    EXPECT_OK((*c)->OnEntryData(e.offset + 512));
  }
  write_to(data.size());
  EXPECT_OK((*c)->Close());
  return {sink.out, (*c)->stats(), (*c)->members()};
}

// A "tar" of `n` text entries of `size` bytes each (content, not format).
std::string FakeTar(int n, size_t size, std::vector<Entry>* entries, int changed = -1) {
  std::string data;
  for (int i = 0; i < n; ++i) {
    entries->push_back({data.size(), fmt::format("dir/file-{:04}", i), static_cast<int64_t>(size)});
    data += std::string(512, 'h');
    std::string body;
    for (int line = 0; body.size() < size; ++line) {
      body += fmt::format("file {} line {} {}\n", i, line, i == changed ? "CHANGED" : "same");
    }
    body.resize(size);
    data += body;
  }
  return data;
}

// An in-memory GzipMemberCache over a compressed stream and its members; a
// `tamper` function may spoil what Fetch returns.
class FakeMemberCache : public GzipMemberCache {
 public:
  FakeMemberCache(const LayerOutput& from, std::function<void(std::string*)> tamper = {})
      : params_(GzipMemberParams(1)), tamper_(std::move(tamper)) {
    for (const auto& m : from.members) {
      members_[m.chunk.hex()] = {from.gz.substr(m.offset, m.length), m.size};
    }
  }
  const std::string& params() const override { return params_; }
  bool Fetch(const Digest& chunk, uint64_t size, std::vector<uint8_t>* out) const override {
    auto it = members_.find(chunk.hex());
    if (it == members_.end() || it->second.second != size) return false;
    std::string bytes = it->second.first;
    if (tamper_) tamper_(&bytes);
    out->assign(bytes.begin(), bytes.end());
    ++fetches;
    return true;
  }
  mutable std::atomic<int> fetches{0};

 private:
  std::string params_;
  std::function<void(std::string*)> tamper_;
  std::map<std::string, std::pair<std::string, uint64_t>> members_;
};

TEST(LayerCompressorTest, MembersEndAtTheChunkersBoundaries) {
  std::vector<Entry> entries;
  std::string data = FakeTar(400, 3000, &entries);
  LayerOutput out = CompressLayer(data, entries, nullptr);
  // The cuts TarChunker decides, replayed here.
  TarChunker chunker;
  std::vector<uint64_t> cuts;
  for (const auto& e : entries) {
    ASSERT_OK(chunker.OnEntryHeader(e.offset, e.path, e.size));
    if (chunker.CutAt(e.offset)) cuts.push_back(e.offset);
    ASSERT_OK(chunker.OnEntryData(e.offset + 512));
  }
  ASSERT_GE(cuts.size(), 3u);
  ASSERT_EQ(out.members.size(), cuts.size() + 1);  // every member deflated here
  uint64_t start = 0;
  for (size_t i = 0; i < out.members.size(); ++i) {
    uint64_t end = i < cuts.size() ? cuts[i] : data.size();
    EXPECT_EQ(out.members[i].size, end - start) << i;
    EXPECT_EQ(out.members[i].chunk, Digest::Of(std::string_view(data).substr(start, end - start)));
    start = end;
  }
  EXPECT_EQ(out.stats.compressed, static_cast<int64_t>(out.members.size()));
  int members = 0;
  EXPECT_EQ(ZlibGunzip(out.gz, &members), data);
  EXPECT_EQ(static_cast<size_t>(members), out.members.size());
  // Any thread count, the same bytes.
  EXPECT_EQ(CompressLayer(data, entries, nullptr, 1).gz, out.gz);
  EXPECT_EQ(CompressLayer(data, entries, nullptr, 8).gz, out.gz);
}

TEST(LayerCompressorTest, ReusedMembersGiveTheSameBytes) {
  std::vector<Entry> before_entries, after_entries;
  std::string before = FakeTar(400, 3000, &before_entries);
  std::string after = FakeTar(400, 3000, &after_entries, /*changed=*/200);
  LayerOutput first = CompressLayer(before, before_entries, nullptr);
  LayerOutput fresh = CompressLayer(after, after_entries, nullptr);
  FakeMemberCache cache(first);
  LayerOutput again = CompressLayer(after, after_entries, &cache);
  EXPECT_EQ(again.gz, fresh.gz);
  EXPECT_EQ(again.stats.compressed, 1);
  EXPECT_EQ(again.stats.reused, static_cast<int64_t>(fresh.members.size()) - 1);
  // The records of a reused stream are those of a fresh one.
  ASSERT_EQ(again.members.size(), fresh.members.size());
  for (size_t i = 0; i < fresh.members.size(); ++i) {
    EXPECT_EQ(again.members[i].offset, fresh.members[i].offset);
    EXPECT_EQ(again.members[i].length, fresh.members[i].length);
  }
}

TEST(LayerCompressorTest, BadCachedMembersAreNeverUsed) {
  std::vector<Entry> entries;
  std::string data = FakeTar(300, 3000, &entries);
  LayerOutput fresh = CompressLayer(data, entries, nullptr);
  std::string other_member = fresh.gz.substr(fresh.members[1].offset, fresh.members[1].length);
  const std::vector<std::function<void(std::string*)>> tampers = {
      [](std::string* b) { (*b)[b->size() / 2] ^= 0x20; },  // body
      [](std::string* b) { (*b)[b->size() - 6] ^= 1; },     // CRC
      [](std::string* b) { (*b)[b->size() - 2] ^= 1; },     // ISIZE
      [](std::string* b) { (*b)[9] = 3; },                  // header OS
      [](std::string* b) { b->resize(b->size() / 2); },     // truncated
      [](std::string* b) { b->clear(); },                   // empty
      [](std::string* b) {
        b->insert(b->size() - 8, std::string(2, '\0'));
      },                                           // bytes after the data
      [&](std::string* b) { *b = other_member; },  // another chunk's member
  };
  for (size_t i = 0; i < tampers.size(); ++i) {
    FakeMemberCache cache(fresh, tampers[i]);
    LayerOutput out = CompressLayer(data, entries, &cache);
    EXPECT_GT(cache.fetches.load(), 0) << i;
    EXPECT_EQ(out.gz, fresh.gz) << i;
    EXPECT_EQ(out.stats.reused, i == 7 ? 1 : 0) << i;  // member 1 is right for its own chunk
  }
}

TEST(LayerCompressorTest, CacheWithOtherParamsIsNotAsked) {
  std::vector<Entry> entries;
  std::string data = FakeTar(100, 3000, &entries);
  LayerOutput fresh = CompressLayer(data, entries, nullptr);
  FakeMemberCache cache(fresh);
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto c, NewLayerCompressor({.compression = Compression::kGzip, .level = 6},
                                                  {.tar_entries = true, .cache = &cache}, &sink));
  ASSERT_OK(c->Write(data));
  ASSERT_OK(c->Close());
  EXPECT_EQ(cache.fetches.load(), 0);
  EXPECT_EQ(c->stats().reused, 0);
}

// Without boundaries a tar-entries stream still ends a member every 16 MiB.
TEST(LayerCompressorTest, MembersAreBoundedWithoutBoundaries) {
  std::string data = MixedData(16 * 1024 * 1024 + 5000, 9);
  LayerOutput out = CompressLayer(data, {}, nullptr);
  int members = 0;
  EXPECT_EQ(ZlibGunzip(out.gz, &members), data);
  EXPECT_EQ(members, 2);
}

TEST(LayerCompressorTest, BoundaryAfterItsBytesIsInternal) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto c, NewLayerCompressor({.compression = Compression::kGzip},
                                                  {.tar_entries = true}, &sink));
  ASSERT_OK(c->Write(std::string(2048, 'x')));
  auto s = c->OnEntryHeader(1024, "late", 0);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInternal);
}

TEST(LayerCompressorTest, ZstdAndNoneIgnoreBoundaries) {
  for (Compression comp : {Compression::kZstd, Compression::kNone}) {
    StringSink sink;
    ASSERT_OK_AND_ASSIGN(auto c, NewLayerCompressor({.compression = comp, .threads = 1},
                                                    {.tar_entries = true}, &sink));
    ASSERT_OK(c->OnEntryHeader(0, "f", 5));
    ASSERT_OK(c->Write("hello"));
    ASSERT_OK(c->Close());
    ASSERT_OK_AND_ASSIGN(std::string back, Decompress(sink.out, comp));
    EXPECT_EQ(back, "hello");
    EXPECT_TRUE(c->members().empty());
  }
}

TEST(CompressTest, GzipHeaderCarriesNoTimestampOrHost) {
  std::string gz = Compress("hello", {.compression = Compression::kGzip, .threads = 1});
  ASSERT_GE(gz.size(), 10u);
  EXPECT_EQ(gz.substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
}

TEST(CompressTest, GzipLevelOutOfRangeIsInvalidArgument) {
  StringSink sink;
  auto c = NewCompressor({.compression = Compression::kGzip, .level = 10}, &sink);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
}

TEST(CompressTest, ZstdOutputIdenticalForAnyWorkerCount) {
  // Larger than several zstd jobs (4 MiB each) so that workers really split it.
  std::string data = MixedData(13 * 1024 * 1024, 7);
  std::string one = Compress(data, {.compression = Compression::kZstd, .threads = 1}, 1 << 20);
  std::string two = Compress(data, {.compression = Compression::kZstd, .threads = 2}, 65536);
  std::string four = Compress(data, {.compression = Compression::kZstd, .threads = 4}, 1 << 20);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, four);
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(one, Compression::kZstd));
  EXPECT_EQ(back, data);
}

TEST(CompressTest, NoneIsPassthrough) {
  std::string data = MixedData(100000);
  EXPECT_EQ(Compress(data, {.compression = Compression::kNone}), data);
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(data, Compression::kNone));
  EXPECT_EQ(back, data);
}

TEST(CompressTest, GzipAcceptsConcatenatedMembers) {
  std::string a = Compress("first ", {.compression = Compression::kGzip, .threads = 1});
  std::string b = Compress("second", {.compression = Compression::kGzip, .threads = 1});
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(a + b, Compression::kGzip));
  EXPECT_EQ(back, "first second");
}

TEST(CompressTest, TruncatedStreamsAreDataLoss) {
  std::string data = MixedData(400000);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    std::string z = Compress(data, {.compression = c, .threads = 1});
    auto r = Decompress(z.substr(0, z.size() - 5), c);
    ASSERT_FALSE(r.has_value()) << CompressionName(c);
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  }
}

TEST(CompressTest, GzipTrailingGarbageIsDataLoss) {
  std::string z = Compress("data", {.compression = Compression::kGzip, .threads = 1});
  auto r = Decompress(z + "garbage", Compression::kGzip);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
}

TEST(CompressTest, CorruptGzipIsDataLoss) {
  std::string z = Compress(MixedData(100000), {.compression = Compression::kGzip, .threads = 1});
  z[z.size() - 6] ^= 0x55;  // inside the CRC
  auto r = Decompress(z, Compression::kGzip);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
}

TEST(CompressTest, DetectsMagicBytes) {
  EXPECT_EQ(DetectCompression(std::string("\x1f\x8b\x08\x00", 4)), Compression::kGzip);
  EXPECT_EQ(DetectCompression(std::string("\x28\xb5\x2f\xfd", 4)), Compression::kZstd);
  EXPECT_EQ(DetectCompression("bin/"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
}

TEST(CompressTest, MediaTypeFollowsCompression) {
  EXPECT_EQ(LayerMediaType(Compression::kGzip), media_type::kLayerTarGzip);
  EXPECT_EQ(LayerMediaType(Compression::kZstd), media_type::kLayerTarZstd);
  EXPECT_EQ(LayerMediaType(Compression::kNone), media_type::kLayerTar);
}

// The one decompressor (NewAutoDecompressor / OpenDecompressedFile) reads
// every codec strata accepts, as the reference tools write it.
std::string ReadAllFrom(ByteSource& src) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = src.Read(buf, sizeof(buf));
    EXPECT_TRUE(n.has_value()) << testing::Describe(n);
    if (!n || *n == 0) return out;
    out.append(buf, *n);
  }
}

TEST(AutoDecompressTest, ReadsEveryCodecTheToolsWrite) {
  auto dir = testing::MakeTempDir();
  std::string data;
  for (int i = 0; i < 20000; ++i) data += fmt::format("line {}\n", i);
  testing::WriteTestFile(dir.path() / "plain", data);
  ASSERT_OK_AND_ASSIGN(auto plain, OpenDecompressedFile(dir.path() / "plain"));
  EXPECT_EQ(ReadAllFrom(*plain), data);
  for (const char* tool : {"gzip", "zstd", "xz", "bzip2", "lz4"}) {
    if (!testing::HaveTool(tool)) continue;
    const auto out = dir.path() / (std::string("f.") + tool);
    auto r = testing::RunCommand(
        fmt::format("{} -c < {} > {}", tool, (dir.path() / "plain").string(), out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_OK_AND_ASSIGN(auto src, OpenDecompressedFile(out));
    EXPECT_EQ(ReadAllFrom(*src), data) << tool;
  }
}

TEST(AutoDecompressTest, EmptyShortAndMissingInputs) {
  StringSource empty("");
  ASSERT_OK_AND_ASSIGN(auto e, NewAutoDecompressor(&empty));
  EXPECT_EQ(ReadAllFrom(*e), "");
  StringSource tiny("ab");
  ASSERT_OK_AND_ASSIGN(auto t, NewAutoDecompressor(&tiny));
  EXPECT_EQ(ReadAllFrom(*t), "ab");
  auto missing = OpenDecompressedFile("/nonexistent/strata-test");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(AutoDecompressTest, CorruptXzIsDataLoss) {
  // xz magic, then garbage.
  StringSource bad(std::string("\xfd\x37\x7a\x58\x5a\x00", 6) + std::string(100, 'x'));
  auto src = NewAutoDecompressor(&bad);
  Status failed = src ? Status(OkStatus()) : Status(Unexpected(src.error()));
  if (src) {
    char buf[64];
    for (;;) {
      auto n = (*src)->Read(buf, sizeof(buf));
      if (!n) {
        failed = Unexpected(n.error());
        break;
      }
      if (*n == 0) break;
    }
  }
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), ErrorCode::kDataLoss);
}

}  // namespace
}  // namespace strata::oci
