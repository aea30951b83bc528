#include "oci/digest.h"

#include <unordered_map>

#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

constexpr char kEmptySha256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, OfKnownVectors) {
  EXPECT_EQ(Digest::Of("").ToString(), kEmptySha256);
  EXPECT_EQ(Digest::Of("abc").ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, ParseRoundTrips) {
  auto d = Digest::Parse(kEmptySha256);
  ASSERT_OK(d);
  EXPECT_EQ(d->ToString(), kEmptySha256);
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha256);
  EXPECT_EQ(d->Short(), "e3b0c44298fc");
}

TEST(DigestTest, AcceptsSha512) {
  auto d = Digest::Parse("sha512:" + std::string(128, 'a'));
  ASSERT_OK(d);
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha512);
}

TEST(DigestTest, RejectsMalformedNamingTheString) {
  for (std::string bad : std::vector<std::string>{
           "", "sha256", "sha256:", "sha256:abc", "md5:" + std::string(32, 'a'),
           "sha256:" + std::string(64, 'A'), "sha256:" + std::string(63, 'a') + "g",
           "sha256:" + std::string(65, 'a'), ":" + std::string(64, 'a')}) {
    auto d = Digest::Parse(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(d.error().message(), ::testing::HasSubstr("\"" + bad + "\""));
  }
}

TEST(DigestTest, StreamingEqualsOneShot) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Digester h;
  for (size_t off = 0; off < data.size(); off += 777) {
    h.Update(data.data() + off, std::min<size_t>(777, data.size() - off));
  }
  EXPECT_EQ(h.bytes(), data.size());
  EXPECT_EQ(h.Finish(), Digest::Of(data));
  // Finish resets.
  EXPECT_EQ(h.Finish().ToString(), kEmptySha256);
}

TEST(DigestTest, UsableAsMapKey) {
  std::unordered_map<Digest, int> m;
  m[Digest::Of("a")] = 1;
  m[Digest::Of("b")] = 2;
  EXPECT_EQ(m[Digest::Of("a")], 1);
  EXPECT_EQ(m.size(), 2u);
}

TEST(DigestTest, DigestFileStreams) {
  auto dir = testing::MakeTempDir();
  testing::WriteTestFile(dir.path() / "f", "abc");
  uint64_t size = 0;
  auto d = DigestFile((dir.path() / "f").string(), &size);
  ASSERT_OK(d);
  EXPECT_EQ(*d, Digest::Of("abc"));
  EXPECT_EQ(size, 3u);
  EXPECT_EQ(DigestFile((dir.path() / "missing").string()).error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace strata::oci
