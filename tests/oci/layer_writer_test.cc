#include "oci/layer_writer.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include "oci/media_types.h"
#include "tests/oci/layer_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using ::strata::oci::testing::ListTar;
using ::strata::oci::testing::MakeRichTree;
using ::strata::oci::testing::ReadLayerTar;
using ::strata::oci::testing::SetMtime;
using ::strata::oci::testing::TarEntryInfo;
using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;

class StringSink : public ByteSink {
 public:
  Status Write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
    return OkStatus();
  }
  Status Close() override { return OkStatus(); }
  std::string out;
};

std::string Tar(const fs::path& dir, TarOptions opts = {}) {
  StringSink sink;
  auto s = WriteTar(dir, opts, &sink);
  EXPECT_TRUE(s.has_value()) << s.error().message();
  return sink.out;
}

const TarEntryInfo* Find(const std::vector<TarEntryInfo>& entries, std::string_view path) {
  for (const auto& e : entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

TEST(LayerWriterTest, WritesEveryEntryTypeSortedWithNumericOwners) {
  auto tmp = MakeTempDir();
  MakeRichTree(tmp.path());
  auto entries = ListTar(Tar(tmp.path()));
  ASSERT_FALSE(entries.empty());
  std::vector<std::string> names;
  for (const auto& e : entries) {
    names.push_back(e.path);
    EXPECT_FALSE(e.has_uname) << e.path;
    EXPECT_FALSE(e.has_atime) << e.path;
    EXPECT_FALSE(e.has_ctime) << e.path;
  }
  // Parents precede children; siblings in byte order.
  EXPECT_LT(std::find(names.begin(), names.end(), "etc/") - names.begin(),
            std::find(names.begin(), names.end(), "etc/empty") - names.begin());
  EXPECT_LT(std::find(names.begin(), names.end(), "etc/empty") - names.begin(),
            std::find(names.begin(), names.end(), "etc/hostname") - names.begin());

  const auto* su = Find(entries, "usr/bin/su");
  ASSERT_NE(su, nullptr);
  EXPECT_EQ(su->type, 'f');
  EXPECT_EQ(su->mode, 04755u);
  const auto* link = Find(entries, "usr/bin/su-hardlink");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, 'h');
  EXPECT_EQ(link->link, "usr/bin/su");
  const auto* wall = Find(entries, "usr/bin/wall");
  ASSERT_NE(wall, nullptr);
  EXPECT_EQ(wall->mode, 02711u);
  const auto* tmpdir = Find(entries, "tmp/");
  ASSERT_NE(tmpdir, nullptr);
  EXPECT_EQ(tmpdir->type, 'd');
  EXPECT_EQ(tmpdir->mode, 01777u);
  const auto* sym = Find(entries, "usr/hostname-link");
  ASSERT_NE(sym, nullptr);
  EXPECT_EQ(sym->type, 'l');
  EXPECT_EQ(sym->link, "../etc/hostname");
  const auto* fifo = Find(entries, "tmp/fifo");
  ASSERT_NE(fifo, nullptr);
  EXPECT_EQ(fifo->type, 'p');
  const auto* host = Find(entries, "etc/hostname");
  ASSERT_NE(host, nullptr);
  EXPECT_THAT(host->xattrs, ::testing::Contains("user.comment"));
  EXPECT_NE(Find(entries,
                 "a-directory-name-that-is-rather-long-to-exceed-the-ustar-name-field/"
                 "and-a-file-name-that-is-also-quite-long-so-the-path-needs-pax.txt"),
            nullptr);
  EXPECT_NE(Find(entries, "caf\xc3\xa9.txt"), nullptr);
  if (::geteuid() == 0) {
    EXPECT_EQ(host->uid, 1234);
    EXPECT_EQ(host->gid, 5678);
    const auto* dev = Find(entries, "dev/null");
    ASSERT_NE(dev, nullptr);
    EXPECT_EQ(dev->type, 'c');
    const auto* ping = Find(entries, "usr/bin/ping");
    ASSERT_NE(ping, nullptr);
    EXPECT_THAT(ping->xattrs, ::testing::Contains("security.capability"));
  }
}

TEST(LayerWriterTest, SourceDateEpochClampsLaterMtimesOnly) {
  auto tmp = MakeTempDir();
  WriteTestFile(tmp.path() / "old", "o");
  WriteTestFile(tmp.path() / "new", "n");
  SetMtime(tmp.path() / "old", 1000);
  SetMtime(tmp.path() / "new", 2000000000);
  auto entries = ListTar(Tar(tmp.path(), {.source_date_epoch = 1500000000}));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(Find(entries, "old")->mtime, 1000);
  EXPECT_EQ(Find(entries, "new")->mtime, 1500000000);
}

// Builds the same logical tree in `dir`, creating entries in the given order.
void BuildTree(const fs::path& dir, bool reverse) {
  std::vector<std::pair<std::string, std::string>> files = {
      {"b/x", "1"}, {"a/y", "2"}, {"a/z", std::string(300000, 'z')}, {"c", "3"}, {"b/a", "4"}};
  if (reverse) std::reverse(files.begin(), files.end());
  for (const auto& [p, c] : files) WriteTestFile(dir / p, c, 0644);
  fs::create_symlink("a/y", dir / "link");
  fs::create_hard_link(dir / "c", dir / "c2");
  for (const auto& p : {"a", "b"}) ::chmod((dir / p).c_str(), 0755);
}

TEST(LayerWriterTest, SameTreeGivesSameDigestsInAnyDirAndCreationOrder) {
  auto store_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(store_dir.path() / "store"));
  auto one = MakeTempDir();
  auto two = MakeTempDir();
  BuildTree(one.path(), false);
  sleep(1);  // different real mtimes (and inodes): the clamp must erase them
  BuildTree(two.path(), true);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    LayerWriterOptions opts;
    opts.compress.compression = c;
    opts.tar.source_date_epoch = 1234567890;
    opts.compress.threads = 1;
    ASSERT_OK_AND_ASSIGN(LayerInfo a, CommitLayer(*store, one.path(), opts));
    opts.compress.threads = 4;
    ASSERT_OK_AND_ASSIGN(LayerInfo b, CommitLayer(*store, two.path(), opts));
    EXPECT_EQ(a.diff_id, b.diff_id) << CompressionName(c);
    EXPECT_EQ(a.descriptor.digest, b.descriptor.digest) << CompressionName(c);
    EXPECT_EQ(a.descriptor.media_type, LayerMediaType(c));
  }
}

TEST(LayerWriterTest, CommittedBlobDecompressesToTheDiffId) {
  auto store_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(store_dir.path() / "store"));
  auto src = MakeTempDir();
  MakeRichTree(src.path());
  for (Compression c : {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    LayerWriterOptions opts;
    opts.compress.compression = c;
    ASSERT_OK_AND_ASSIGN(LayerInfo info, CommitLayer(*store, src.path(), opts));
    EXPECT_EQ(info.descriptor.media_type, LayerMediaType(c));
    EXPECT_TRUE(store->Has(info.descriptor.digest));
    std::string tar = ReadLayerTar(*store, info.descriptor);
    EXPECT_EQ(Digest::Of(tar), info.diff_id);
    EXPECT_EQ(static_cast<int64_t>(tar.size()), info.uncompressed_size);
    EXPECT_EQ(tar.size() % 512, 0u);
  }
}

TEST(LayerWriterTest, OverlayUpperWhiteoutsBecomeOciWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod and trusted.* xattrs";
  auto upper = MakeTempDir();
  fs::create_directories(upper.path() / "opq");
  WriteTestFile(upper.path() / "opq/kept", "k");
  ASSERT_EQ(::setxattr((upper.path() / "opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(::setxattr((upper.path() / "opq").c_str(), "trusted.overlay.origin", "x", 1, 0), 0);
  ASSERT_EQ(::mknod((upper.path() / "gone").c_str(), S_IFCHR, ::makedev(0, 0)), 0);
  auto entries = ListTar(Tar(upper.path(), {.overlay_upper = true}));
  std::vector<std::string> names;
  for (const auto& e : entries) {
    names.push_back(e.path);
    for (const auto& x : e.xattrs) EXPECT_FALSE(x.starts_with("trusted.overlay.")) << e.path;
  }
  EXPECT_THAT(names, ::testing::ElementsAre(".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/kept"));
  EXPECT_EQ(entries[0].type, 'f');

  // Without overlay_upper the same dir is taken literally (a device, no marker).
  auto literal = ListTar(Tar(upper.path()));
  EXPECT_EQ(literal[0].path, "gone");
  EXPECT_EQ(literal[0].type, 'c');
  EXPECT_EQ(Find(literal, "opq/.wh..wh..opq"), nullptr);
}

TEST(LayerWriterTest, OverlayRedirectIsUnimplemented) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for trusted.* xattrs";
  auto upper = MakeTempDir();
  fs::create_directories(upper.path() / "moved");
  ASSERT_EQ(::setxattr((upper.path() / "moved").c_str(), "trusted.overlay.redirect", "/old", 4, 0),
            0);
  StringSink sink;
  auto s = WriteTar(upper.path(), {.overlay_upper = true}, &sink);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnimplemented);
}

TEST(LayerWriterTest, MissingDirIsNotFound) {
  StringSink sink;
  auto s = WriteTar("/nonexistent/strata-dir", {}, &sink);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
}

TEST(LayerWriterTest, CommitTarStreamKeepsTheBytes) {
  auto store_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(store_dir.path() / "store"));
  auto src = MakeTempDir();
  WriteTestFile(src.path() / "f", "content");
  std::string tar = Tar(src.path());
  testing::StringSource in(tar);
  ASSERT_OK_AND_ASSIGN(LayerInfo info,
                       CommitTarStream(*store, &in, {.compression = Compression::kZstd}));
  EXPECT_EQ(info.diff_id, Digest::Of(tar));
  EXPECT_EQ(ReadLayerTar(*store, info.descriptor), tar);
}

}  // namespace
}  // namespace strata::oci
