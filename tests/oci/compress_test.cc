#include "oci/compress.h"

#include <zlib.h>

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

// zlib's own gunzip: proves that the parallel output is one valid member.
std::string ZlibGunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  char buf[65536];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  EXPECT_EQ(zs.avail_in, 0u) << "bytes after the first gzip member";
  inflateEnd(&zs);
  return out;
}

TEST(CompressTest, GzipRoundTripsAtBlockBoundaries) {
  for (size_t size : {size_t{0}, size_t{1}, kGzipBlockSize - 1, kGzipBlockSize, kGzipBlockSize + 1,
                      3 * kGzipBlockSize + 12345}) {
    std::string data = MixedData(size);
    std::string gz = Compress(data, {.compression = Compression::kGzip, .threads = 2});
    EXPECT_EQ(ZlibGunzip(gz), data) << size;
    ASSERT_OK_AND_ASSIGN(std::string back, Decompress(gz, Compression::kGzip));
    EXPECT_EQ(back, data) << size;
  }
}

TEST(CompressTest, GzipOutputIdenticalForAnyThreadCount) {
  std::string data = MixedData(5 * kGzipBlockSize + 999);
  for (int level : {1, 6}) {
    std::string one =
        Compress(data, {.compression = Compression::kGzip, .level = level, .threads = 1});
    std::string two =
        Compress(data, {.compression = Compression::kGzip, .level = level, .threads = 2});
    std::string four =
        Compress(data, {.compression = Compression::kGzip, .level = level, .threads = 4}, 100000);
    EXPECT_EQ(one, two) << "level " << level;
    EXPECT_EQ(one, four) << "level " << level;
    EXPECT_LT(one.size(), data.size());
  }
}

// Random blocks are written as deflate stored blocks (no CPU spent on
// deflate); mixed with compressible blocks the stream must still be one valid
// gzip member, identical for any thread count, and barely larger than input.
TEST(CompressTest, IncompressibleBlocksAreStoredAndStillValid) {
  std::mt19937 rng(7);
  std::string data;
  for (size_t i = 0; i < 3 * kGzipBlockSize + 4321; ++i) data.push_back(static_cast<char>(rng()));
  data += MixedData(2 * kGzipBlockSize);
  for (size_t i = 0; i < kGzipBlockSize / 2; ++i) data.push_back(static_cast<char>(rng()));
  std::string one = Compress(data, {.compression = Compression::kGzip, .threads = 1});
  std::string two = Compress(data, {.compression = Compression::kGzip, .threads = 2});
  EXPECT_EQ(one, two);
  EXPECT_EQ(ZlibGunzip(one), data);
  ASSERT_OK_AND_ASSIGN(std::string back, Decompress(one, Compression::kGzip));
  EXPECT_EQ(back, data);
  // Stored random bytes cost 5 bytes per 64 KiB; the mixed part compresses.
  EXPECT_LT(one.size(), data.size());
  // A stream that is random to its end finishes with a final stored block.
  std::string random_only = data.substr(0, 2 * kGzipBlockSize);
  std::string gz = Compress(random_only, {.compression = Compression::kGzip, .threads = 2});
  EXPECT_EQ(ZlibGunzip(gz), random_only);
  EXPECT_LE(gz.size(), random_only.size() + 64 + 5 * (random_only.size() / 65535 + 1));
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
