#include "oci/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/media_types.h"
#include "oci/snapshots.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    auto s = Store::Open(dir_.path() / "store");
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_ = std::move(*s);
  }

  // A tiny image: one "layer" blob, a config, a manifest. Returns the
  // manifest descriptor.
  Descriptor MakeImage(const std::string& salt) {
    auto layer = store_->Put("layer-" + salt, std::string(media_type::kLayerTar));
    EXPECT_TRUE(layer.has_value());
    ImageConfig cfg;
    cfg.os = "linux";
    cfg.architecture = Platform::Host().architecture;
    cfg.diff_ids.push_back(layer->digest);
    cfg.config.env.push_back("SALT=" + salt);
    auto c = store_->Put(cfg.Serialize(), std::string(media_type::kImageConfig));
    EXPECT_TRUE(c.has_value());
    Manifest m;
    m.media_type = media_type::kImageManifest;
    m.config = *c;
    m.layers.push_back(*layer);
    auto md = store_->Put(m.Serialize(), std::string(media_type::kImageManifest));
    EXPECT_TRUE(md.has_value());
    return *md;
  }

  ScopedTempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, LayoutIsAnOciImageLayout) {
  auto root = store_->root();
  EXPECT_TRUE(fs::exists(root / "oci-layout"));
  EXPECT_TRUE(fs::exists(root / "index.json"));
  EXPECT_TRUE(fs::is_directory(root / "blobs" / "sha256"));
  auto idx = store_->ReadIndex();
  ASSERT_OK(idx);
  EXPECT_EQ(idx->schema_version, 2);
}

TEST_F(StoreTest, IngestVerifiesAndCommitsReadOnly) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->Ingest());
  ASSERT_OK(w.Write("hello "));
  ASSERT_OK(w.Write("world"));
  ASSERT_OK_AND_ASSIGN(auto d, w.Commit("application/octet-stream", Digest::Of("hello world"), 11));
  EXPECT_EQ(d.size, 11);
  EXPECT_TRUE(store_->Has(d.digest));
  struct stat st;
  ASSERT_EQ(::stat(store_->BlobPath(d.digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(fs::is_empty(store_->IngestDir()));
  ASSERT_OK_AND_ASSIGN(auto bytes, store_->ReadBlob(d.digest));
  EXPECT_EQ(bytes, "hello world");
}

TEST_F(StoreTest, DigestMismatchLeavesNothingBehind) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->Ingest());
  ASSERT_OK(w.Write("evil bytes"));
  Digest expected = Digest::Of("good bytes");
  auto r = w.Commit("application/octet-stream", expected);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(expected.ToString()));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(Digest::Of("evil bytes").ToString()));
  EXPECT_FALSE(store_->Has(expected));
  EXPECT_FALSE(store_->Has(Digest::Of("evil bytes")));
  EXPECT_TRUE(fs::is_empty(store_->IngestDir()));
  ASSERT_OK_AND_ASSIGN(auto blobs, store_->ListBlobs());
  EXPECT_TRUE(blobs.empty());
}

TEST_F(StoreTest, SizeMismatchFails) {
  ASSERT_OK_AND_ASSIGN(auto w, store_->Ingest());
  ASSERT_OK(w.Write("abc"));
  auto r = w.Commit("x", Digest::Of("abc"), 4);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("size mismatch"));
}

TEST_F(StoreTest, AbandonedWriterRemovesIngestFile) {
  {
    ASSERT_OK_AND_ASSIGN(auto w, store_->Ingest());
    ASSERT_OK(w.Write("partial"));
  }
  EXPECT_TRUE(fs::is_empty(store_->IngestDir()));
}

TEST_F(StoreTest, ExistingBlobIsNeverRewritten) {
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("same", "x"));
  struct stat before;
  ASSERT_EQ(::stat(store_->BlobPath(d.digest).c_str(), &before), 0);
  ASSERT_OK_AND_ASSIGN(auto w, store_->Ingest());
  ASSERT_OK(w.Write("same"));
  ASSERT_OK(w.Commit("x", d.digest));
  struct stat after;
  ASSERT_EQ(::stat(store_->BlobPath(d.digest).c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST_F(StoreTest, CorruptBlobIsReportedNotServed) {
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("original content", "x"));
  auto path = store_->BlobPath(d.digest);
  ::chmod(path.c_str(), 0644);
  testing::WriteTestFile(path, "tampered content");
  auto r = store_->ReadBlob(d.digest);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(d.digest.ToString()));
  auto report = store_->Fsck();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr(d.digest.ToString()));
}

TEST_F(StoreTest, TagResolveUntagAndMovingKeepsOldImage) {
  Descriptor a = MakeImage("a");
  Descriptor b = MakeImage("b");
  auto ref = *Reference::Parse("app:1");
  ASSERT_OK(store_->Tag(ref, a));
  ASSERT_OK_AND_ASSIGN(auto r1, store_->Resolve("app:1"));
  EXPECT_EQ(r1.digest, a.digest);
  ASSERT_OK_AND_ASSIGN(auto r1b, store_->Resolve("docker.io/library/app:1"));
  EXPECT_EQ(r1b.digest, a.digest);
  ASSERT_OK(store_->Tag(ref, b));
  ASSERT_OK_AND_ASSIGN(auto r2, store_->Resolve("app:1"));
  EXPECT_EQ(r2.digest, b.digest);
  // The old image is intact and addressable by digest.
  ASSERT_OK_AND_ASSIGN(auto old, store_->LoadImage(a.digest.ToString()));
  EXPECT_EQ(*old.config.config.GetEnv("SALT"), "a");
  ASSERT_OK_AND_ASSIGN(auto images, store_->ListImages());
  EXPECT_EQ(images.size(), 1u);
  // Short ID prefix resolves a tagged image.
  ASSERT_OK_AND_ASSIGN(auto byprefix, store_->Resolve(b.digest.hex().substr(0, 12)));
  EXPECT_EQ(byprefix.digest, b.digest);
  ASSERT_OK(store_->Untag(ref));
  EXPECT_EQ(store_->Resolve("app:1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->Untag(ref).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(store_->Has(b.digest));
}

TEST_F(StoreTest, LoadImageRefusesLayerAndDiffIdCountMismatch) {
  auto layer = store_->Put("layer-x", std::string(media_type::kLayerTar));
  ImageConfig cfg;
  cfg.os = "linux";
  cfg.architecture = "amd64";  // no diff_ids, but the manifest lists a layer
  auto c = store_->Put(cfg.Serialize(), std::string(media_type::kImageConfig));
  Manifest m;
  m.media_type = media_type::kImageManifest;
  m.config = *c;
  m.layers.push_back(*layer);
  ASSERT_OK_AND_ASSIGN(auto md,
                       store_->Put(m.Serialize(), std::string(media_type::kImageManifest)));
  auto img = store_->LoadImage(md);
  ASSERT_FALSE(img.has_value());
  EXPECT_EQ(img.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(img.error().message(), ::testing::HasSubstr(md.digest.ToString()));
  EXPECT_THAT(img.error().message(), ::testing::HasSubstr("1 layers but the config lists 0"));
}

TEST_F(StoreTest, TagRequiresManifestInStore) {
  auto d = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("nope"), 4);
  auto s = store_->Tag(*Reference::Parse("x"), d);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(StoreTest, IndexJsonNamesTagsWithRefNameAnnotation) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("localhost:5000/team/app:v1"), a));
  ASSERT_OK_AND_ASSIGN(auto idx, store_->ReadIndex());
  ASSERT_EQ(idx.manifests.size(), 1u);
  EXPECT_EQ(idx.manifests[0].annotations.at(std::string(kAnnotationRefName)),
            "localhost:5000/team/app:v1");
}

TEST_F(StoreTest, FsckReportsMissingLayer) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  EXPECT_TRUE(store_->Fsck().ok());
  auto layer = Digest::Of("layer-a");
  ASSERT_EQ(::unlink(store_->BlobPath(layer).c_str()), 0);
  auto report = store_->Fsck();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr(layer.ToString()));
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr("app:latest"));
}

TEST_F(StoreTest, PruneKeepsTaggedBlobsAndCallerRootsAndSweepsTheRest) {
  Descriptor kept = MakeImage("kept");
  Descriptor dropped = MakeImage("dropped");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), kept));
  ASSERT_OK_AND_ASSIGN(auto cached, store_->Put("cached layer", "x"));
  // The store never reads the builder's files: a cache record is no root.
  testing::WriteTestFile(store_->CacheDir() / "k.json",
                         R"({"blobs":[")" + cached.digest.ToString() + R"("]})");
  {
    // A leftover from a killed writer.
    testing::WriteTestFile(store_->IngestDir() / "leftover", "partial");
  }
  int calls = 0;
  auto roots = [&]() -> Result<std::vector<Digest>> {
    ++calls;
    return std::vector<Digest>{cached.digest};
  };
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({.extra_roots = roots}));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.blobs_removed, 3);  // dropped's manifest, config, layer
  EXPECT_EQ(r.ingest_removed, 1);
  EXPECT_GT(r.bytes_freed, 0);
  EXPECT_TRUE(store_->Has(kept.digest));
  EXPECT_TRUE(store_->Has(cached.digest));
  EXPECT_FALSE(store_->Has(dropped.digest));
  EXPECT_TRUE(store_->Fsck().ok());
  ASSERT_OK_AND_ASSIGN(auto r2, store_->Prune({}));
  EXPECT_EQ(r2.blobs_removed, 1);
  EXPECT_FALSE(store_->Has(cached.digest));
  EXPECT_TRUE(store_->Has(kept.digest));
  EXPECT_TRUE(std::filesystem::exists(store_->CacheDir() / "k.json"));
}

TEST_F(StoreTest, PruneDeletesNothingWhenTheRootsCannotBeRead) {
  ASSERT_OK_AND_ASSIGN(auto loose, store_->Put("loose", "x"));
  auto r = store_->Prune({.extra_roots = []() -> Result<std::vector<Digest>> {
    return MakeError(ErrorCode::kDataLoss, "records unreadable");
  }});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_TRUE(store_->Has(loose.digest));
}

TEST_F(StoreTest, PruneKeepsSnapshotsOfTaggedImagesOnly) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  // MakeImage's single layer: its chainID is its diffID (the layer digest).
  Digest layer = Digest::Of("layer-a");
  Descriptor layer_desc = Descriptor::Of(std::string(media_type::kLayerTar), layer, 7);
  testing::WriteTestFile(dir_.path() / "up1" / "f", "x");
  testing::WriteTestFile(dir_.path() / "up2" / "f", "y");
  ASSERT_OK_AND_ASSIGN(auto keep,
                       AdoptSnapshot(*store_, dir_.path() / "up1", layer, layer_desc, layer));
  ASSERT_OK_AND_ASSIGN(auto stray, AdoptSnapshot(*store_, dir_.path() / "up2", Digest::Of("gone"),
                                                 layer_desc, Digest::Of("gone")));
  testing::WriteTestFile(store_->SnapshotsDir() / ".run-leftover" / "upper" / "f", "z");
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({}));
  EXPECT_EQ(r.snapshots_removed, 1);
  EXPECT_EQ(r.snapshot_leftovers_removed, 1);
  EXPECT_TRUE(fs::exists(keep / "f"));
  EXPECT_FALSE(fs::exists(stray.parent_path()));
  EXPECT_FALSE(fs::exists(store_->SnapshotsDir() / ".run-leftover"));
}

// An interrupted delete (or creation) leaves a snapshot without its proof
// of completeness: prune removes it even when a tagged image uses that chain,
// and every temp/trash dir of a dead process with it.
TEST_F(StoreTest, PruneRemovesIncompleteSnapshotsAndLeftovers) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  auto half = store_->SnapshotsDir() / Digest::Of("layer-a").hex();
  testing::WriteTestFile(half / "f", "x");
  testing::WriteTestFile(half / "fs" / "f", "x");
  testing::WriteTestFile(store_->SnapshotsDir() / ".trash-1" / "fs" / "f", "y");
  testing::WriteTestFile(store_->SnapshotsDir() / ".tmp-1" / "fs" / "f", "y");
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({}));
  EXPECT_FALSE(fs::exists(half));
  EXPECT_TRUE(fs::is_empty(store_->SnapshotsDir()));
  EXPECT_EQ(r.snapshots_removed, 1);
  EXPECT_EQ(r.snapshot_leftovers_removed, 2);
}

TEST_F(StoreTest, FsckReportsIncompleteSnapshotsAndRepairRemovesThem) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  auto half = store_->SnapshotsDir() / Digest::Of("layer-a").hex();
  testing::WriteTestFile(half / "fs" / "f", "x");
  auto report = store_->Fsck();
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr(Digest::Of("layer-a").hex()));
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr("incomplete"));
  // A temp dir is a note, not a problem: it may belong to a running build.
  testing::WriteTestFile(store_->SnapshotsDir() / ".run-1" / "upper" / "f", "y");
  report = store_->Fsck();
  EXPECT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.leftovers.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto repaired, store_->RepairSnapshots());
  EXPECT_EQ(repaired.snapshots_removed, 1);
  EXPECT_EQ(repaired.leftovers_removed, 1);
  report = store_->Fsck();
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(report.leftovers.empty());
  EXPECT_TRUE(store_->Has(a.digest));
}

// Overwrites the start of a stored (read-only) blob, keeping its size.
void Scribble(const fs::path& blob) {
  ASSERT_EQ(::chmod(blob.c_str(), 0644), 0);
  int fd = ::open(blob.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "}{", 2, 0), 2);
  ::close(fd);
}

// A tagged image whose manifest cannot be read keeps an unknown set of blobs
// alive: prune must stop, name the image, and delete nothing.
TEST_F(StoreTest, PruneStopsWhenATaggedManifestIsCorrupt) {
  Descriptor a = MakeImage("a");
  Descriptor b = MakeImage("b");
  Descriptor dropped = MakeImage("dropped");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  ASSERT_OK(store_->Tag(*Reference::Parse("other:2"), b));
  ASSERT_OK_AND_ASSIGN(auto before, store_->ListBlobs());
  Scribble(store_->BlobPath(a.digest));
  auto r = store_->Prune({});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("app:latest"));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(a.digest.ToString()));
  ASSERT_OK_AND_ASSIGN(auto after, store_->ListBlobs());
  EXPECT_EQ(after, before);
  EXPECT_TRUE(store_->Has(dropped.digest));
}

TEST_F(StoreTest, PruneStopsWhenATaggedImageConfigIsCorrupt) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  ASSERT_OK_AND_ASSIGN(auto img, store_->LoadImage("app"));
  Descriptor dropped = MakeImage("dropped");
  Scribble(store_->BlobPath(img.manifest.config.digest));
  auto r = store_->Prune({});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("app:latest"));
  EXPECT_TRUE(store_->Has(dropped.digest));
}

// A corrupt index.json is never "image not found" (build would pull over it).
TEST_F(StoreTest, CorruptIndexJsonIsDataLossNamingTheFile) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  testing::WriteTestFile(store_->root() / "index.json", "{\"manifests\": [");
  const std::string path = (store_->root() / "index.json").string();
  for (const auto& r : {store_->Resolve("app").error(), store_->Resolve("busybox").error(),
                        store_->ListImages().error(), store_->Prune({}).error(),
                        store_->Tag(*Reference::Parse("x"), a).error()}) {
    EXPECT_EQ(r.code(), ErrorCode::kDataLoss) << r.message();
    EXPECT_THAT(r.message(), ::testing::HasSubstr(path + " is corrupt"));
  }
  auto report = store_->Fsck();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.problems.back(), ::testing::HasSubstr("corrupt"));
}

TEST_F(StoreTest, PruneRefusesWhileAnotherProcessUsesTheStore) {
  auto other = Store::Open(store_->root());  // same process, separate lock fd
  ASSERT_OK(other);
  auto r = store_->Prune({});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  other->reset();
  ASSERT_OK(store_->Prune({}));
}

// Several processes tag and ingest at once; index.json stays valid and holds
// every tag, and fsck is clean.
TEST_F(StoreTest, ConcurrentWritersNeverCorruptTheStore) {
  constexpr int kProcs = 6;
  constexpr int kTagsEach = 15;
  auto root = store_->root();
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::Open(root);
      if (!s) ::_exit(10);
      for (int i = 0; i < kTagsEach; ++i) {
        std::string salt = std::to_string(p) + "-" + std::to_string(i);
        auto layer = (*s)->Put("layer-" + salt, std::string(media_type::kLayerTar));
        ImageConfig cfg;
        cfg.os = "linux";
        cfg.architecture = "amd64";
        cfg.diff_ids.push_back(layer->digest);
        auto c = (*s)->Put(cfg.Serialize(), std::string(media_type::kImageConfig));
        Manifest m;
        m.media_type = media_type::kImageManifest;
        m.config = *c;
        m.layers.push_back(*layer);
        auto md = (*s)->Put(m.Serialize(), std::string(media_type::kImageManifest));
        if (!md) ::_exit(11);
        if (!(*s)->Tag(*Reference::Parse("app:" + salt), *md)) ::_exit(12);
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  ASSERT_OK_AND_ASSIGN(auto images, store_->ListImages());
  EXPECT_EQ(images.size(), static_cast<size_t>(kProcs * kTagsEach));
  auto report = store_->Fsck();
  EXPECT_TRUE(report.ok()) << (report.problems.empty() ? "" : report.problems[0]);
}

// A writer killed mid-ingest leaves a store fsck accepts; prune cleans up.
TEST_F(StoreTest, KilledWriterLeavesStoreConsistent) {
  Descriptor a = MakeImage("a");
  ASSERT_OK(store_->Tag(*Reference::Parse("app"), a));
  auto root = store_->root();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = Store::Open(root);
    auto w = (*s)->Ingest();
    std::string chunk(1 << 16, 'z');
    for (int i = 0; i < 16; ++i) (void)w->Write(chunk);
    (void)!::write(ready[1], "x", 1);
    for (;;) {
      (void)w->Write(chunk);
      ::usleep(1000);
    }
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_FALSE(fs::is_empty(store_->IngestDir()));
  auto report = store_->Fsck();
  EXPECT_TRUE(report.ok());
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({}));
  EXPECT_EQ(r.ingest_removed, 1);
  EXPECT_TRUE(fs::is_empty(store_->IngestDir()));
  ASSERT_OK(store_->LoadImage("app"));
}

// --- VerifyBlob / QuarantineBlob ---

// Flips one byte of a committed (read-only) blob in place, keeping its size.
void CorruptBlobFile(const fs::path& path) {
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.has_value());
  std::string b = *bytes;
  b[0] = static_cast<char>(b[0] ^ 0x01);
  testing::WriteTestFile(path, b, 0444);
}

TEST_F(StoreTest, VerifyBlobAcceptsIntactAndNamesACorruptBlob) {
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("verify me", "application/octet-stream"));
  ASSERT_OK(store_->VerifyBlob(d.digest));
  CorruptBlobFile(store_->BlobPath(d.digest));
  auto r = store_->VerifyBlob(d.digest);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(r.error().message().find(d.digest.ToString()), std::string::npos)
      << r.error().message();
  auto missing = store_->VerifyBlob(Digest::Of("never stored"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(StoreTest, QuarantineMovesACorruptBlobAsideSoAGoodCopyCanBeCommitted) {
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("precious bytes", "application/octet-stream"));
  ASSERT_OK_AND_ASSIGN(auto other, store_->Put("bystander", "application/octet-stream"));
  struct stat other_before;
  ASSERT_EQ(::stat(store_->BlobPath(other.digest).c_str(), &other_before), 0);
  CorruptBlobFile(store_->BlobPath(d.digest));
  ASSERT_OK_AND_ASSIGN(std::string corrupt, ReadFile(store_->BlobPath(d.digest)));

  ASSERT_OK_AND_ASSIGN(fs::path moved, store_->QuarantineBlob(d.digest));
  ASSERT_FALSE(moved.empty());
  EXPECT_EQ(moved.parent_path(), store_->root() / "quarantine");
  EXPECT_TRUE(moved.filename().string().starts_with("sha256-" + d.digest.hex()));
  EXPECT_FALSE(store_->Has(d.digest));
  ASSERT_OK_AND_ASSIGN(std::string kept, ReadFile(moved));
  EXPECT_EQ(kept, corrupt);  // moved, not rewritten

  // Put skips digests it has; now it commits a good copy again.
  ASSERT_OK(store_->Put("precious bytes", "application/octet-stream"));
  ASSERT_OK(store_->VerifyBlob(d.digest));
  struct stat st;
  ASSERT_EQ(::stat(store_->BlobPath(d.digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  struct stat other_after;
  ASSERT_EQ(::stat(store_->BlobPath(other.digest).c_str(), &other_after), 0);
  EXPECT_EQ(other_after.st_ino, other_before.st_ino);
  ASSERT_OK(store_->VerifyBlob(other.digest));
}

TEST_F(StoreTest, QuarantineLeavesAnIntactOrMissingBlobAlone) {
  // Another process may have committed a good copy since the caller found
  // the blob corrupt: quarantining must not take it away.
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("good copy", "application/octet-stream"));
  ASSERT_OK_AND_ASSIGN(fs::path moved, store_->QuarantineBlob(d.digest));
  EXPECT_TRUE(moved.empty());
  ASSERT_OK(store_->VerifyBlob(d.digest));
  EXPECT_TRUE(fs::is_empty(store_->root() / "quarantine"));
  ASSERT_OK_AND_ASSIGN(fs::path none, store_->QuarantineBlob(Digest::Of("absent")));
  EXPECT_TRUE(none.empty());
}

TEST_F(StoreTest, AddUntaggedListsAnImageOnceWithoutATag) {
  Descriptor img = MakeImage("untagged");
  ASSERT_OK(store_->AddUntagged(img));
  ASSERT_OK(store_->AddUntagged(img));
  ASSERT_OK_AND_ASSIGN(auto idx, store_->ReadIndex());
  ASSERT_EQ(idx.manifests.size(), 1u);
  EXPECT_EQ(idx.manifests[0].digest, img.digest);
  EXPECT_TRUE(idx.manifests[0].annotations.empty());
  ASSERT_OK_AND_ASSIGN(auto images, store_->ListImages());
  EXPECT_TRUE(images.empty());  // no tag
  ASSERT_OK_AND_ASSIGN(auto r, store_->Prune({}));
  EXPECT_EQ(r.blobs_removed, 0);  // index.json keeps it
  ASSERT_OK_AND_ASSIGN(auto d, store_->Resolve(img.digest.ToString()));
  EXPECT_EQ(d.digest, img.digest);
  auto missing = store_->AddUntagged(
      Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("absent"), 6));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(StoreTest, BlobsAreTheLocalBlobStore) {
  ASSERT_OK_AND_ASSIGN(auto d, store_->Put("via store", "x"));
  EXPECT_TRUE(store_->blobs().Has(d.digest));
  EXPECT_EQ(store_->blobs().BlobPath(d.digest), store_->BlobPath(d.digest));
  ASSERT_OK_AND_ASSIGN(auto listed, store_->blobs().List());
  ASSERT_OK_AND_ASSIGN(auto listed_by_store, store_->ListBlobs());
  EXPECT_EQ(listed, listed_by_store);
}

}  // namespace
}  // namespace strata::oci
