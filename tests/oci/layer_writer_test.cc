#include "oci/layer_writer.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "oci/chunk_cache.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"
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

// Rootless: overlayfs mounted with userxattr marks opaque dirs with
// user.overlay.opaque; the writer reads it as it reads the trusted one and
// never copies a user.overlay.* xattr into the layer.
TEST(LayerWriterTest, UserXattrOverlayUpperOpaqueBecomesOciOpaque) {
  auto upper = MakeTempDir();
  fs::create_directories(upper.path() / "opq");
  WriteTestFile(upper.path() / "opq/kept", "k");
  if (::setxattr((upper.path() / "opq").c_str(), "user.overlay.opaque", "y", 1, 0) != 0) {
    GTEST_SKIP() << "no user xattrs here";
  }
  ASSERT_EQ(::setxattr((upper.path() / "opq").c_str(), "user.overlay.origin", "x", 1, 0), 0);
  ASSERT_EQ(::setxattr((upper.path() / "opq/kept").c_str(), "user.keep", "v", 1, 0), 0);
  auto entries = ListTar(Tar(upper.path(), {.overlay_upper = true}));
  std::vector<std::string> names;
  for (const auto& e : entries) {
    names.push_back(e.path);
    for (const auto& x : e.xattrs) EXPECT_FALSE(x.starts_with("user.overlay.")) << e.path;
  }
  EXPECT_THAT(names, ::testing::ElementsAre("opq/", "opq/.wh..wh..opq", "opq/kept"));
  const TarEntryInfo* kept = Find(entries, "opq/kept");
  ASSERT_NE(kept, nullptr);
  EXPECT_THAT(kept->xattrs, ::testing::Contains(::testing::HasSubstr("user.keep")));
}

TEST(LayerWriterTest, UserXattrOverlayRedirectIsUnimplemented) {
  auto upper = MakeTempDir();
  fs::create_directories(upper.path() / "moved");
  if (::setxattr((upper.path() / "moved").c_str(), "user.overlay.redirect", "/old", 4, 0) != 0) {
    GTEST_SKIP() << "no user xattrs here";
  }
  StringSink sink;
  auto s = WriteTar(upper.path(), {.overlay_upper = true}, &sink);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnimplemented);
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

// A tar from outside is cut every kGzipFixedChunk bytes; committing it again
// copies every member and gives the same blob.
TEST(LayerWriterTest, CommitTarStreamGzipReusesFixedChunks) {
  auto src = MakeTempDir();
  std::string text;
  for (int i = 0; text.size() < 3 * kGzipFixedChunk; ++i) text += fmt::format("row {}\n", i);
  WriteTestFile(src.path() / "rows.txt", text);
  std::string tar = Tar(src.path());
  auto dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(dir.path() / "store"));
  testing::StringSource in1(tar);
  ASSERT_OK_AND_ASSIGN(LayerInfo first, CommitTarStream(*store, &in1, {}));
  EXPECT_EQ(first.chunks.compressed, 4);  // 3 MiB of text plus the tar's headers
  EXPECT_EQ(ReadLayerTar(*store, first.descriptor), tar);
  testing::StringSource in2(tar);
  ASSERT_OK_AND_ASSIGN(LayerInfo again, CommitTarStream(*store, &in2, {.threads = 1}));
  EXPECT_EQ(again.descriptor.digest, first.descriptor.digest);
  EXPECT_EQ(again.chunks.reused, 4);
  EXPECT_EQ(again.chunks.compressed, 0);
}

// The walker tells a listener where each header and its data start: the
// offsets point at real ustar headers, and the tar bytes are the same as
// without a listener.
class RecordingListener : public TarEntryListener {
 public:
  Status OnEntryHeader(uint64_t offset, std::string_view path, int64_t size) override {
    headers.push_back({offset, std::string(path), size});
    return OkStatus();
  }
  Status OnEntryData(uint64_t offset) override {
    data.push_back(offset);
    return OkStatus();
  }
  struct Header {
    uint64_t offset;
    std::string path;
    int64_t size;
  };
  std::vector<Header> headers;
  std::vector<uint64_t> data;
};

TEST(LayerWriterTest, ListenerGetsTheOffsetOfEveryHeader) {
  auto tmp = MakeTempDir();
  MakeRichTree(tmp.path());
  StringSink sink;
  RecordingListener rec;
  ASSERT_OK(WriteTar(tmp.path(), {}, &sink, &rec));
  EXPECT_EQ(sink.out, Tar(tmp.path()));
  auto entries = ListTar(sink.out);
  ASSERT_EQ(rec.headers.size(), entries.size());
  ASSERT_EQ(rec.data.size(), entries.size());
  for (size_t i = 0; i < rec.headers.size(); ++i) {
    const auto& h = rec.headers[i];
    ASSERT_LT(h.offset + 512, sink.out.size());
    EXPECT_EQ(h.offset % 512, 0u) << h.path;
    // ustar magic; typeflag 'x' when a PAX extension header comes first.
    EXPECT_EQ(sink.out.substr(h.offset + 257, 5), "ustar") << h.path;
    // The data follows the header, or the PAX extension and the header.
    char type = sink.out[h.offset + 156];
    if (type != 'x') {
      EXPECT_EQ(rec.data[i] - h.offset, 512u) << h.path;
    }
    EXPECT_EQ((rec.data[i] - h.offset) % 512, 0u) << h.path;
    EXPECT_GT(rec.data[i], h.offset);
    if (i > 0) {
      EXPECT_GE(h.offset, rec.data[i - 1] + rec.headers[i - 1].size) << h.path;
    }
  }
  const auto* big = &rec.headers[0];
  for (const auto& h : rec.headers) {
    if (h.size > big->size) big = &h;
  }
  EXPECT_GE(big->size, 1024 * 1024);  // MakeRichTree's 1 MiB file
}

// Writes a file without WriteTestFile's fsyncs (trees of many files).
void WritePlain(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// A tree of `n` compressible files of ~6 KiB in a few dirs; file `changed`
// gets different content.
void MakeTextTree(const fs::path& dir, int n, int changed = -1) {
  for (int i = 0; i < n; ++i) {
    std::string body;
    for (int line = 0; body.size() < 6000; ++line) {
      body += fmt::format("file {} line {}: {}\n", i, line,
                          i == changed ? "this one changed" : "the usual text");
    }
    WritePlain(dir / fmt::format("d{}/file-{:04}.txt", i % 7, i), body);
    SetMtime(dir / fmt::format("d{}/file-{:04}.txt", i % 7, i), 1700000000);
  }
}

std::string ReadBlobFile(const Store& store, const Digest& d) {
  std::ifstream in(store.BlobPath(d), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

LayerWriterOptions FixedOptions() {
  LayerWriterOptions opts;
  opts.tar.source_date_epoch = 1700000000;
  return opts;
}

// The blob of a tree is the same bytes whether it was compressed fresh or
// mostly copied from an earlier layer's members.
TEST(LayerWriterTest, IncrementalCommitGivesTheFreshBlob) {
  auto v1 = MakeTempDir();
  auto v2 = MakeTempDir();
  MakeTextTree(v1.path(), 700);
  MakeTextTree(v2.path(), 700, /*changed=*/350);

  auto fresh_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto fresh_store, Store::Open(fresh_dir.path() / "store"));
  ASSERT_OK_AND_ASSIGN(LayerInfo fresh, CommitLayer(*fresh_store, v2.path(), FixedOptions()));
  EXPECT_EQ(fresh.chunks.reused, 0);
  EXPECT_GE(fresh.chunks.compressed, 10);

  auto inc_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto inc_store, Store::Open(inc_dir.path() / "store"));
  ASSERT_OK_AND_ASSIGN(LayerInfo first, CommitLayer(*inc_store, v1.path(), FixedOptions()));
  EXPECT_NE(first.descriptor.digest, fresh.descriptor.digest);
  LayerWriterOptions opts = FixedOptions();
  opts.compress.threads = 1;  // and a different thread count
  ASSERT_OK_AND_ASSIGN(LayerInfo inc, CommitLayer(*inc_store, v2.path(), opts));
  EXPECT_EQ(inc.descriptor.digest, fresh.descriptor.digest);
  EXPECT_EQ(ReadBlobFile(*inc_store, inc.descriptor.digest),
            ReadBlobFile(*fresh_store, fresh.descriptor.digest));
  EXPECT_EQ(inc.diff_id, fresh.diff_id);
  // One file changed: its chunk and at most one neighbour are deflated again.
  const int64_t total = inc.chunks.reused + inc.chunks.compressed + inc.chunks.stored;
  EXPECT_EQ(total, fresh.chunks.compressed + fresh.chunks.stored);
  EXPECT_LE(inc.chunks.compressed, 3);
  EXPECT_GE(inc.chunks.reused, total - 3);
  // Committing the same tree again copies every member.
  ASSERT_OK_AND_ASSIGN(LayerInfo again, CommitLayer(*inc_store, v2.path(), FixedOptions()));
  EXPECT_EQ(again.descriptor.digest, fresh.descriptor.digest);
  EXPECT_EQ(again.chunks.compressed, 0);
}

// Chunk tables that lie (offsets shifted or swapped, lengths off, garbage)
// never change a blob: every member is verified before it is copied.
TEST(LayerWriterTest, CorruptChunkTablesNeverCorruptABlob) {
  auto v1 = MakeTempDir();
  MakeTextTree(v1.path(), 400);
  auto fresh_dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto fresh_store, Store::Open(fresh_dir.path() / "store"));
  ASSERT_OK_AND_ASSIGN(LayerInfo fresh, CommitLayer(*fresh_store, v1.path(), FixedOptions()));
  const fs::path table = fresh_store->ChunksDir() / "sha256" / fresh.descriptor.digest.hex();
  ASSERT_OK_AND_ASSIGN(std::string original, ReadFile(table));

  // The member lines: chunk hex, offset, length, size.
  struct Row {
    std::string hex;
    uint64_t offset, length, size;
  };
  std::vector<Row> rows;
  {
    std::istringstream in(original);
    std::string line;
    for (int n = 0; std::getline(in, line); ++n) {
      if (n < 2) continue;  // magic, params
      std::istringstream f(line);
      Row r;
      ASSERT_TRUE(f >> r.hex >> r.offset >> r.length >> r.size) << line;
      rows.push_back(r);
    }
  }
  ASSERT_GE(rows.size(), 5u);
  // Rewrites every member line as "<hex> edit(i)".
  using Edit = std::function<std::string(size_t)>;
  auto rewrite = [&](const Edit& edit) {
    std::string out = original.substr(0, original.find('\n', original.find('\n') + 1) + 1);
    for (size_t i = 0; i < rows.size(); ++i) out += rows[i].hex + " " + edit(i) + "\n";
    return out;
  };
  auto fmt_row = [](uint64_t o, uint64_t l, uint64_t s) {
    return fmt::format("{} {} {}", o, l, s);
  };
  std::vector<std::pair<std::string, Edit>> edits = {
      {"shifted",
       [&](size_t i) { return fmt_row(rows[i].offset + 7, rows[i].length, rows[i].size); }},
      {"longer",
       [&](size_t i) { return fmt_row(rows[i].offset, rows[i].length + 10, rows[i].size); }},
      {"shorter",
       [&](size_t i) { return fmt_row(rows[i].offset, rows[i].length - 10, rows[i].size); }},
      {"next member's place",
       [&](size_t i) {
         const Row& n = rows[(i + 1) % rows.size()];
         return fmt_row(n.offset, n.length, rows[i].size);
       }},
      {"garbage", [&](size_t) { return std::string("-1 zz 0"); }},
  };
  for (const auto& [name, edit] : edits) {
    auto dir = MakeTempDir();
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(dir.path() / "store"));
    ASSERT_OK_AND_ASSIGN(LayerInfo first, CommitLayer(*store, v1.path(), FixedOptions()));
    ASSERT_EQ(first.descriptor.digest, fresh.descriptor.digest);
    ASSERT_OK(WriteFileAtomic(store->ChunksDir() / "sha256" / first.descriptor.digest.hex(),
                              rewrite(edit)));
    ASSERT_OK_AND_ASSIGN(LayerInfo again, CommitLayer(*store, v1.path(), FixedOptions()));
    EXPECT_EQ(again.descriptor.digest, fresh.descriptor.digest) << name;
    EXPECT_EQ(ReadBlobFile(*store, again.descriptor.digest),
              ReadBlobFile(*fresh_store, fresh.descriptor.digest))
        << name;
    EXPECT_EQ(again.chunks.reused, 0) << name;
    EXPECT_EQ(again.chunks.compressed, fresh.chunks.compressed) << name;
  }
}

// A big file changed near its end: the 1 MiB pieces before the change are
// copied, the piece with the change is deflated again.
TEST(LayerWriterTest, ChangedBigFileReusesItsUnchangedPieces) {
  auto v1 = MakeTempDir();
  std::string big;
  for (int i = 0; big.size() < 5 * 1024 * 1024; ++i) big += fmt::format("record {} of a log\n", i);
  WriteTestFile(v1.path() / "big.log", big);
  SetMtime(v1.path() / "big.log", 1700000000);
  auto dir = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(dir.path() / "store"));
  ASSERT_OK_AND_ASSIGN(LayerInfo first, CommitLayer(*store, v1.path(), FixedOptions()));
  EXPECT_EQ(first.chunks.compressed, 6);  // header + 1 MiB, 3 x 1 MiB, the rest + end blocks
  big[big.size() - 100] = '#';
  WriteTestFile(v1.path() / "big.log", big);
  SetMtime(v1.path() / "big.log", 1700000000);
  ASSERT_OK_AND_ASSIGN(LayerInfo second, CommitLayer(*store, v1.path(), FixedOptions()));
  EXPECT_EQ(second.chunks.reused, 5);
  EXPECT_EQ(second.chunks.compressed, 1);
  ASSERT_OK_AND_ASSIGN(auto fresh_store, Store::Open(dir.path() / "fresh"));
  ASSERT_OK_AND_ASSIGN(LayerInfo fresh, CommitLayer(*fresh_store, v1.path(), FixedOptions()));
  EXPECT_EQ(second.descriptor.digest, fresh.descriptor.digest);
}

}  // namespace
}  // namespace strata::oci
