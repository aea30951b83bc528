#include "oci/archive.h"

#include <sys/stat.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "oci/media_types.h"
#include "tests/oci/archive_test_util.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::TarEntry;

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strata::testing::MakeTempDir();
    auto a = Store::Open(dir_.path() / "a");
    ASSERT_TRUE(a.has_value()) << a.error().message();
    src_ = std::move(*a);
    auto b = Store::Open(dir_.path() / "b");
    ASSERT_TRUE(b.has_value()) << b.error().message();
    dst_ = std::move(*b);
    layer1_ = testing::MakeTar({{"etc", "", TarEntry::Type::kDir},
                                {"etc/hostname", "strata\n"},
                                {"bin", "", TarEntry::Type::kDir}});
    layer2_ = testing::MakeTar(
        {{"app", "", TarEntry::Type::kDir}, {"app/data.bin", std::string(200000, 'x') + "end"}});
    auto md = testing::AddImage(*src_, "hello:latest", {layer1_, layer2_});
    ASSERT_TRUE(md.has_value()) << md.error().message();
    manifest_ = *md;
    // The destination already holds something, so "unchanged" is not "empty".
    auto other = testing::AddImage(*dst_, "other:1", {testing::MakeTar({{"o", "other"}})});
    ASSERT_TRUE(other.has_value()) << other.error().message();
  }

  fs::path Path(std::string_view name) { return dir_.path() / name; }

  // Loads `archive` into dst_ expecting failure; checks the store did not
  // change and no staging dir was left behind. Returns the error.
  Error ExpectRejected(const fs::path& archive) {
    std::string before = testing::StoreFingerprint(*dst_);
    auto r = Load(*dst_, archive);
    EXPECT_FALSE(r.has_value());
    EXPECT_EQ(testing::StoreFingerprint(*dst_), before);
    EXPECT_TRUE(fs::is_empty(dst_->IngestDir()));
    return r.has_value() ? Error(ErrorCode::kInternal, "loaded") : r.error();
  }

  ScopedTempDir dir_;
  std::unique_ptr<Store> src_;
  std::unique_ptr<Store> dst_;
  std::string layer1_;
  std::string layer2_;
  Descriptor manifest_;
};

TEST_F(ArchiveTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseArchiveFormat("oci-archive"), ArchiveFormat::kOciArchive);
  EXPECT_EQ(*ParseArchiveFormat("docker-archive"), ArchiveFormat::kDockerArchive);
  EXPECT_EQ(ParseArchiveFormat("tarball").error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(ArchiveTest, OciArchiveRoundTripKeepsEveryDigest) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  ASSERT_TRUE(files.count("oci-layout"));
  ASSERT_TRUE(files.count("blobs/sha256/" + manifest_.digest.hex()));
  auto index = json::parse(files["index.json"]);
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_EQ(index["manifests"][0]["digest"], manifest_.digest.ToString());
  EXPECT_EQ(index["manifests"][0]["annotations"][std::string(kAnnotationRefName)], "hello:latest");

  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("hello.tar")));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_TRUE(loaded[0].ref.has_value());
  EXPECT_EQ(loaded[0].ref->Familiar(), "hello:latest");
  EXPECT_EQ(loaded[0].descriptor.digest, manifest_.digest);
  ASSERT_OK_AND_ASSIGN(auto img, dst_->LoadImage("hello:latest"));
  EXPECT_EQ(img.descriptor.digest, manifest_.digest);
  EXPECT_TRUE(dst_->Fsck().ok());
  EXPECT_TRUE(fs::is_empty(dst_->IngestDir()));
}

TEST_F(ArchiveTest, DockerArchiveHasDockerLayoutWithVerifiedUncompressedLayers) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  ASSERT_EQ(manifest.size(), 1u);
  EXPECT_EQ(manifest[0]["RepoTags"], json::array({"hello:latest"}));
  std::string config_name = manifest[0]["Config"];
  EXPECT_EQ(config_name, img.manifest.config.digest.hex() + ".json");
  EXPECT_EQ(files[config_name], img.config_bytes);
  ASSERT_EQ(manifest[0]["Layers"].size(), 2u);
  EXPECT_EQ(files[manifest[0]["Layers"][0]], layer1_);
  EXPECT_EQ(files[manifest[0]["Layers"][1]], layer2_);
  auto repositories = json::parse(files["repositories"]);
  EXPECT_EQ(repositories["hello"]["latest"], img.config.diff_ids[1].hex());
}

TEST_F(ArchiveTest, DockerArchiveRoundTripStoresUncompressedLayers) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("hello.tar")));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].ref->Familiar(), "hello:latest");
  ASSERT_OK_AND_ASSIGN(auto orig, src_->LoadImage("hello:latest"));
  ASSERT_OK_AND_ASSIGN(auto img, dst_->LoadImage("hello:latest"));
  EXPECT_EQ(img.config_bytes, orig.config_bytes);  // image ID preserved
  ASSERT_EQ(img.manifest.layers.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(img.manifest.layers[i].media_type, media_type::kLayerTar);
    EXPECT_EQ(img.manifest.layers[i].digest, orig.config.diff_ids[i]);
  }
  ASSERT_OK_AND_ASSIGN(auto l1, dst_->ReadBlob(img.manifest.layers[0].digest));
  EXPECT_EQ(l1, layer1_);
  EXPECT_TRUE(dst_->Fsck().ok());

  // Saving the loaded (now uncompressed) image again gives the same archive.
  ASSERT_OK(SaveDockerArchive(*dst_, {"hello:latest"}, Path("again.tar")));
  EXPECT_EQ(testing::ReadTarFiles(Path("again.tar")), testing::ReadTarFiles(Path("hello.tar")));
}

TEST_F(ArchiveTest, DockerArchiveDecompressesZstdLayers) {
  ASSERT_OK(testing::AddImage(*src_, "zstd:1", {layer1_, layer2_}, testing::LayerCodec::kZstd));
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("zstd:1"));
  EXPECT_EQ(img.manifest.layers[0].media_type, media_type::kLayerTarZstd);
  ASSERT_OK(SaveDockerArchive(*src_, {"zstd:1"}, Path("zstd.tar")));
  auto files = testing::ReadTarFiles(Path("zstd.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  EXPECT_EQ(files[manifest[0]["Layers"][0]], layer1_);
  EXPECT_EQ(files[manifest[0]["Layers"][1]], layer2_);
}

TEST_F(ArchiveTest, LoadsGzipCompressedDockerArchive) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  ASSERT_OK_AND_ASSIGN(auto raw, ReadFile(Path("hello.tar")));
  ASSERT_OK(WriteFileAtomic(Path("hello.tar.gz"), testing::Gzip(raw)));
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("hello.tar.gz")));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_OK(dst_->LoadImage("hello:latest"));
}

TEST_F(ArchiveTest, DockerArchiveGzipLayerIsStoredCompressedAndChecked) {
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  std::string gz = testing::Gzip(layer1_);
  json manifest = json::array(
      {{{"Config", "c.json"}, {"RepoTags", {"gz:1"}}, {"Layers", {"l1.tar.gz", "l2.tar"}}}});
  testing::WriteTarFiles(Path("gz.tar"), {{"manifest.json", manifest.dump()},
                                          {"c.json", img.config_bytes},
                                          {"l1.tar.gz", gz},
                                          {"l2.tar", layer2_}});
  ASSERT_OK(Load(*dst_, Path("gz.tar")));
  ASSERT_OK_AND_ASSIGN(auto loaded, dst_->LoadImage("gz:1"));
  EXPECT_EQ(loaded.manifest.layers[0].media_type, media_type::kLayerTarGzip);
  EXPECT_EQ(loaded.manifest.layers[0].digest, Digest::Of(gz));
  EXPECT_EQ(loaded.manifest.layers[1].digest, Digest::Of(layer2_));
}

TEST_F(ArchiveTest, LayerSymlinkedInsideTheArchiveResolves) {
  // containers/image writes <legacy id>/layer.tar -> ../<diffID>.tar.
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  json manifest = json::array(
      {{{"Config", "c.json"}, {"RepoTags", {"linked:1"}}, {"Layers", {"a/layer.tar", "b.tar"}}}});
  std::string tar = testing::MakeTar({{"manifest.json", manifest.dump()},
                                      {"c.json", img.config_bytes},
                                      {"a1.tar", layer1_},
                                      {"a", "", TarEntry::Type::kDir},
                                      {"a/layer.tar", "../a1.tar", TarEntry::Type::kSymlink},
                                      {"b.tar", "a1.tar", TarEntry::Type::kHardlink}});
  ASSERT_OK(WriteFileAtomic(Path("linked.tar"), tar));
  // b.tar is a hard link to layer1, so the second diff_id does not match.
  Error e = ExpectRejected(Path("linked.tar"));
  EXPECT_THAT(e.message(), HasSubstr(img.config.diff_ids[1].ToString()));

  tar = testing::MakeTar({{"manifest.json", manifest.dump()},
                          {"c.json", img.config_bytes},
                          {"a1.tar", layer1_},
                          {"b2.tar", layer2_},
                          {"a/layer.tar", "../a1.tar", TarEntry::Type::kSymlink},
                          {"b.tar", "b2.tar", TarEntry::Type::kHardlink}});
  ASSERT_OK(WriteFileAtomic(Path("linked.tar"), tar));
  ASSERT_OK(Load(*dst_, Path("linked.tar")));
  ASSERT_OK(dst_->LoadImage("linked:1"));
}

TEST_F(ArchiveTest, LoadsAnOciLayoutDirectory) {
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, src_->root()));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto img, dst_->LoadImage("hello:latest"));
  EXPECT_EQ(img.descriptor.digest, manifest_.digest);
  EXPECT_TRUE(dst_->Fsck().ok());
}

TEST_F(ArchiveTest, OciLayoutDirectoryRoundTripKeepsEveryDigest) {
  ASSERT_OK(SaveOciLayout(*src_, {"hello:latest"}, Path("layout")));
  EXPECT_TRUE(fs::is_regular_file(Path("layout") / "oci-layout"));
  EXPECT_TRUE(fs::is_regular_file(Path("layout") / "blobs/sha256" / manifest_.digest.hex()));
  ASSERT_OK_AND_ASSIGN(auto text, ReadFile(Path("layout") / "index.json"));
  auto index = json::parse(text);
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_EQ(index["manifests"][0]["annotations"][std::string(kAnnotationRefName)], "hello:latest");
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("layout")));
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto img, dst_->LoadImage("hello:latest"));
  EXPECT_EQ(img.descriptor.digest, manifest_.digest);
  EXPECT_TRUE(dst_->Fsck().ok());
}

TEST_F(ArchiveTest, OciLayoutDirectoryIsAddedToAndTagsAreReplaced) {
  ASSERT_OK_AND_ASSIGN(auto other,
                       testing::AddImage(*src_, "other:1", {testing::MakeTar({{"o", "other"}})}));
  // A layout tag ("latest", as BuildKit's local cache writes) replaces the
  // entry of the same tag; entries of other tags stay.
  ASSERT_OK(SaveOciLayout(*src_, {"hello:latest"}, Path("layout"), "latest"));
  ASSERT_OK(SaveOciLayout(*src_, {"hello:latest"}, Path("layout"), "v1"));
  ASSERT_OK(SaveOciLayout(*src_, {"other:1"}, Path("layout"), "latest"));
  ASSERT_OK_AND_ASSIGN(auto text, ReadFile(Path("layout") / "index.json"));
  auto index = json::parse(text);
  ASSERT_EQ(index["manifests"].size(), 2u);
  std::map<std::string, std::string> by_tag;
  for (const auto& m : index["manifests"]) {
    by_tag[m["annotations"][std::string(kAnnotationRefName)]] = m["digest"];
  }
  EXPECT_EQ(by_tag["v1"], manifest_.digest.ToString());
  EXPECT_EQ(by_tag["latest"], other.digest.ToString());
  EXPECT_TRUE(fs::is_regular_file(Path("layout") / "blobs/sha256" / manifest_.digest.hex()));
}

TEST_F(ArchiveTest, OciLayoutRefusesANonEmptyDirectoryThatIsNoLayout) {
  strata::testing::WriteTestFile(Path("busy") / "file", "x");
  EXPECT_THAT(SaveOciLayout(*src_, {"hello:latest"}, Path("busy")),
              strata::testing::StatusIs(ErrorCode::kFailedPrecondition,
                                        HasSubstr("neither empty nor an OCI layout")));
  EXPECT_FALSE(fs::exists(Path("busy") / "index.json"));
}

TEST_F(ArchiveTest, SavedByDigestLoadsUntaggedAndResolvable) {
  ASSERT_OK(SaveOciArchive(*src_, {manifest_.digest.ToString()}, Path("id.tar")));
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("id.tar")));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_FALSE(loaded[0].ref.has_value());
  ASSERT_OK(dst_->LoadImage(manifest_.digest.ToString()));
  ASSERT_OK_AND_ASSIGN(auto index, dst_->ReadIndex());
  bool listed = false;
  for (const auto& m : index.manifests) listed |= m.digest == manifest_.digest;
  EXPECT_TRUE(listed) << "an untagged image must be kept alive by index.json";
}

TEST_F(ArchiveTest, CorruptBlobInOciArchiveIsRejectedByDigest) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  const Descriptor layer = src_->LoadImage("hello:latest")->manifest.layers[1];
  std::string& blob = files["blobs/sha256/" + layer.digest.hex()];
  ASSERT_FALSE(blob.empty());
  blob[blob.size() / 2] ^= 0x01;
  testing::WriteTarFiles(Path("bad.tar"), files);
  Error e = ExpectRejected(Path("bad.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(e.message(), HasSubstr(layer.digest.ToString()));
  EXPECT_FALSE(dst_->Has(manifest_.digest));
}

TEST_F(ArchiveTest, CorruptBlobInOciLayoutDirectoryIsRejected) {
  auto copy = Path("layout");
  fs::copy(src_->root(), copy, fs::copy_options::recursive);
  const Descriptor config = src_->LoadImage("hello:latest")->manifest.config;
  fs::permissions(copy / "blobs/sha256" / config.digest.hex(), fs::perms::owner_write,
                  fs::perm_options::add);
  fs::path blob = copy / "blobs/sha256" / config.digest.hex();
  ASSERT_OK_AND_ASSIGN(auto bytes, ReadFile(blob));
  auto pos = bytes.find("linux");
  ASSERT_NE(pos, std::string::npos);
  bytes[pos] = 'L';  // same size, different content: only the digest can tell
  ASSERT_OK(WriteFileAtomic(blob, bytes));
  Error e = ExpectRejected(copy);
  EXPECT_THAT(e.message(), HasSubstr(config.digest.ToString()));
}

TEST_F(ArchiveTest, MissingLayerIsRejectedByDigest) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  const Descriptor layer = src_->LoadImage("hello:latest")->manifest.layers[0];
  ASSERT_EQ(files.erase("blobs/sha256/" + layer.digest.hex()), 1u);
  testing::WriteTarFiles(Path("missing.tar"), files);
  Error e = ExpectRejected(Path("missing.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(e.message(), HasSubstr(layer.digest.ToString()));
}

TEST_F(ArchiveTest, MissingDockerLayerFileIsRejected) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  std::string layer = manifest[0]["Layers"][1];
  ASSERT_EQ(files.erase(layer), 1u);
  testing::WriteTarFiles(Path("missing.tar"), files);
  Error e = ExpectRejected(Path("missing.tar"));
  EXPECT_THAT(e.message(), HasSubstr(layer));
}

TEST_F(ArchiveTest, DockerLayerNotMatchingDiffIdIsRejected) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  std::string layer = manifest[0]["Layers"][0];
  files[layer] = testing::MakeTar({{"etc/hostname", "evil\n"}});
  testing::WriteTarFiles(Path("bad.tar"), files);
  Error e = ExpectRejected(Path("bad.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  EXPECT_THAT(e.message(), HasSubstr(img.config.diff_ids[0].ToString()));
  EXPECT_THAT(e.message(), HasSubstr(layer));
}

TEST_F(ArchiveTest, EntriesEscapingTheArchiveAreRejected) {
  for (const std::string name : {"../escaped", "a/../../escaped", "/tmp/strata-abs-escape"}) {
    SCOPED_TRACE(name);
    std::string tar = testing::MakeTar({{"index.json", "{}"}, {name, "pwned"}});
    ASSERT_OK(WriteFileAtomic(Path("escape.tar"), tar));
    Error e = ExpectRejected(Path("escape.tar"));
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.message(), HasSubstr(name));
    EXPECT_FALSE(fs::exists(dst_->IngestDir() / "escaped"));
    EXPECT_FALSE(fs::exists(dst_->root() / "escaped"));
    EXPECT_FALSE(fs::exists("/tmp/strata-abs-escape"));
  }
}

TEST_F(ArchiveTest, SymlinkOutOfTheArchiveIsNeverFollowed) {
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  json manifest = json::array(
      {{{"Config", "c.json"}, {"RepoTags", {"x:1"}}, {"Layers", {"l/layer.tar", "l2"}}}});
  std::string tar = testing::MakeTar({{"manifest.json", manifest.dump()},
                                      {"c.json", img.config_bytes},
                                      {"l", "../../../outside", TarEntry::Type::kSymlink},
                                      {"l2", "/etc/passwd", TarEntry::Type::kSymlink}});
  ASSERT_OK(WriteFileAtomic(Path("link.tar"), tar));
  Error e = ExpectRejected(Path("link.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(e.message(), HasSubstr("outside the archive"));
}

TEST_F(ArchiveTest, DeviceEntriesAreRejected) {
  std::string tar =
      testing::MakeTar({{"index.json", "{}"}, {"blobs/null", "", TarEntry::Type::kCharDevice}});
  ASSERT_OK(WriteFileAtomic(Path("dev.tar"), tar));
  Error e = ExpectRejected(Path("dev.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(e.message(), HasSubstr("blobs/null"));
}

TEST_F(ArchiveTest, GarbageAndEmptyInputsAreRejected) {
  ASSERT_OK(WriteFileAtomic(Path("garbage.tar"), std::string(4096, 'z')));
  ExpectRejected(Path("garbage.tar"));
  ASSERT_OK(WriteFileAtomic(Path("neither.tar"), testing::MakeTar({{"hello.txt", "hi"}})));
  EXPECT_THAT(ExpectRejected(Path("neither.tar")).message(), HasSubstr("manifest.json"));
  EXPECT_EQ(Load(*dst_, Path("does-not-exist.tar")).error().code(), ErrorCode::kNotFound);
}

TEST_F(ArchiveTest, SaveOfCorruptStoreBlobFailsAndWritesNoFile) {
  ASSERT_OK_AND_ASSIGN(auto img, src_->LoadImage("hello:latest"));
  fs::path blob = src_->BlobPath(img.manifest.layers[1].digest);
  ::chmod(blob.c_str(), 0644);
  ASSERT_OK_AND_ASSIGN(auto bytes, ReadFile(blob));
  bytes[10] ^= 0x40;
  ASSERT_OK(WriteFileAtomic(blob, bytes));
  for (auto format : {ArchiveFormat::kOciArchive, ArchiveFormat::kDockerArchive}) {
    auto s = SaveArchive(*src_, {"hello:latest"}, Path("out.tar"), format);
    ASSERT_FALSE(s.has_value());
    EXPECT_THAT(s.error().message(), HasSubstr(img.manifest.layers[1].digest.ToString()));
    EXPECT_FALSE(fs::exists(Path("out.tar")));
  }
  // Nothing half-written is left next to the target either.
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp-")));
  }
}

TEST_F(ArchiveTest, DescriptorSizeMismatchIsRejected) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  auto index = json::parse(files["index.json"]);
  index["manifests"][0]["size"] = manifest_.size + 1;
  files["index.json"] = index.dump();
  testing::WriteTarFiles(Path("size.tar"), files);
  Error e = ExpectRejected(Path("size.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(e.message(), HasSubstr(manifest_.digest.ToString()));
}

TEST_F(ArchiveTest, MissingConfigIsRejectedByDigest) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  const Descriptor config = src_->LoadImage("hello:latest")->manifest.config;
  ASSERT_EQ(files.erase("blobs/sha256/" + config.digest.hex()), 1u);
  testing::WriteTarFiles(Path("noconfig.tar"), files);
  Error e = ExpectRejected(Path("noconfig.tar"));
  EXPECT_THAT(e.message(), HasSubstr(config.digest.ToString()));
}

TEST_F(ArchiveTest, LaterEntryCannotRedirectAnEarlierOne) {
  ASSERT_OK(SaveDockerArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  std::vector<TarEntry> entries;
  for (const auto& [name, content] : files) entries.push_back({name, content});
  entries.push_back({"manifest.json", "evil.json", TarEntry::Type::kSymlink});
  entries.push_back({"evil.json", "[]"});
  ASSERT_OK(WriteFileAtomic(Path("twice.tar"), testing::MakeTar(entries)));
  Error e = ExpectRejected(Path("twice.tar"));
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(e.message(), HasSubstr("manifest.json"));
  EXPECT_THAT(e.message(), HasSubstr("twice"));
}

TEST_F(ArchiveTest, PartialMultiPlatformIndexRoundTrips) {
  // An index whose other-platform manifest was never pulled, as the store
  // allows: saving keeps what is there, loading accepts it, docker-archive
  // picks the host platform.
  Index index;
  index.media_type = std::string(media_type::kImageIndex);
  Descriptor host = manifest_;
  host.platform = Platform::Host();
  Descriptor absent =
      Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("never pulled"), 1234);
  absent.platform = *Platform::Parse("linux/s390x");
  index.manifests = {absent, host};
  ASSERT_OK_AND_ASSIGN(auto idx,
                       src_->Put(index.Serialize(), std::string(media_type::kImageIndex)));
  ASSERT_OK(src_->Tag(*Reference::Parse("multi:1"), idx));

  ASSERT_OK(SaveOciArchive(*src_, {"multi:1"}, Path("multi-oci.tar")));
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("multi-oci.tar")));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].descriptor.digest, idx.digest);
  ASSERT_OK_AND_ASSIGN(auto img, dst_->LoadImage("multi:1"));
  EXPECT_EQ(img.descriptor.digest, manifest_.digest);

  ASSERT_OK(SaveDockerArchive(*src_, {"multi:1"}, Path("multi-docker.tar")));
  auto files = testing::ReadTarFiles(Path("multi-docker.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  EXPECT_EQ(manifest[0]["RepoTags"], json::array({"multi:1"}));
  EXPECT_EQ(manifest[0]["Config"], img.manifest.config.digest.hex() + ".json");
}

TEST_F(ArchiveTest, DockerArchiveWithoutRepoTagsLoadsUntagged) {
  ASSERT_OK(SaveDockerArchive(*src_, {manifest_.digest.ToString()}, Path("id.tar")));
  auto files = testing::ReadTarFiles(Path("id.tar"));
  EXPECT_TRUE(json::parse(files["manifest.json"])[0]["RepoTags"].is_null());
  EXPECT_FALSE(files.count("repositories"));
  ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("id.tar")));
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_FALSE(loaded[0].ref.has_value());
  ASSERT_OK(dst_->LoadImage(loaded[0].descriptor.digest.ToString()));
  ASSERT_OK(dst_->Prune({}));
  ASSERT_OK(dst_->LoadImage(loaded[0].descriptor.digest.ToString()));  // survived prune
}

TEST_F(ArchiveTest, IndexRefNamesThatAreNotReferencesLoadUntagged) {
  ASSERT_OK(SaveOciArchive(*src_, {"hello:latest"}, Path("hello.tar")));
  auto files = testing::ReadTarFiles(Path("hello.tar"));
  auto index = json::parse(files["index.json"]);
  auto& annotations = index["manifests"][0]["annotations"];
  annotations.erase(std::string("io.containerd.image.name"));
  for (const std::string name : {"latest", "Not A Reference:!"}) {
    SCOPED_TRACE(name);
    annotations[std::string(kAnnotationRefName)] = name;
    files["index.json"] = index.dump();
    testing::WriteTarFiles(Path("bare.tar"), files);
    ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("bare.tar")));
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_FALSE(loaded[0].ref.has_value());
    EXPECT_EQ(loaded[0].descriptor.digest, manifest_.digest);
  }
  // A containerd image name is always a full reference: a bad one is refused.
  annotations["io.containerd.image.name"] = "no spaces/allowed:1";
  files["index.json"] = index.dump();
  testing::WriteTarFiles(Path("badname.tar"), files);
  EXPECT_EQ(ExpectRejected(Path("badname.tar")).code(), ErrorCode::kInvalidArgument);
}

TEST_F(ArchiveTest, SaveOfUnknownRefIsNotFound) {
  auto s = SaveDockerArchive(*src_, {"nope:1"}, Path("out.tar"));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
}

TEST_F(ArchiveTest, SeveralImagesAndTagsRoundTripInOneArchive) {
  ASSERT_OK(src_->Tag(*Reference::Parse("hello:v2"), manifest_));
  ASSERT_OK(testing::AddImage(*src_, "localhost:5000/team/app:1", {layer2_}));
  for (auto format : {ArchiveFormat::kOciArchive, ArchiveFormat::kDockerArchive}) {
    ASSERT_OK(SaveArchive(*src_, {"hello:latest", "hello:v2", "localhost:5000/team/app:1"},
                          Path("multi.tar"), format));
    ASSERT_OK_AND_ASSIGN(auto loaded, Load(*dst_, Path("multi.tar")));
    std::set<std::string> names;
    for (const auto& l : loaded) names.insert(l.ref->Familiar());
    EXPECT_EQ(names,
              (std::set<std::string>{"hello:latest", "hello:v2", "localhost:5000/team/app:1"}));
    ASSERT_OK(dst_->LoadImage("localhost:5000/team/app:1"));
    EXPECT_TRUE(dst_->Fsck().ok());
  }
  auto files = testing::ReadTarFiles(Path("multi.tar"));
  auto manifest = json::parse(files["manifest.json"]);
  ASSERT_EQ(manifest.size(), 2u) << "one entry per config, tags grouped";
  EXPECT_EQ(manifest[0]["RepoTags"], json::array({"hello:latest", "hello:v2"}));
}

}  // namespace
}  // namespace strata::oci
