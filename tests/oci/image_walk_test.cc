// The image walk and the GC mark over it, on the in-memory BlobStore.
#include "oci/image_walk.h"

#include "oci/gc.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/memory_blob_store.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

class ImageWalkTest : public ::testing::Test {
 protected:
  Descriptor Put(std::string_view data, std::string_view mt) {
    auto d = PutBlob(blobs_, data, std::string(mt));
    EXPECT_TRUE(d.has_value());
    return *d;
  }
  // A manifest with a config and `layers` layers named after `name`.
  Descriptor Image(const std::string& name, int layers, Manifest* out = nullptr) {
    Manifest m;
    m.media_type = std::string(media_type::kImageManifest);
    m.config = Put(
        R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})" + name,
        media_type::kImageConfig);
    for (int i = 0; i < layers; ++i) {
      m.layers.push_back(Put(fmt::format("{} layer {}", name, i), media_type::kLayerTarGzip));
    }
    if (out) *out = m;
    return Put(m.Serialize(), media_type::kImageManifest);
  }
  Descriptor IndexOf(const std::vector<Descriptor>& manifests) {
    Index idx;
    idx.media_type = std::string(media_type::kImageIndex);
    idx.manifests = manifests;
    return Put(idx.Serialize(), media_type::kImageIndex);
  }
  MemoryBlobStore blobs_;
};

TEST_F(ImageWalkTest, VisitsEverythingOnceParentsFirst) {
  Manifest m;
  Descriptor img = Image("a", 2, &m);
  Descriptor other = Image("b", 1);
  Descriptor idx = IndexOf({img, other, img});
  std::vector<std::pair<Digest, WalkNode>> seen;
  ImageWalker w;
  w.visit = [&](const Descriptor& d, WalkNode node, const Descriptor* parent) -> Result<bool> {
    EXPECT_EQ(parent == nullptr, d.digest == idx.digest);
    seen.push_back({d.digest, node});
    return true;
  };
  ASSERT_OK(WalkImage(blobs_, idx, w));
  ASSERT_EQ(seen.size(), 1u + 2 + 2 * 2 + 1);  // index, 2 manifests, a's 3 blobs, b's 2
  EXPECT_EQ(seen[0], std::pair(idx.digest, WalkNode::kIndex));
  EXPECT_EQ(seen[1], std::pair(img.digest, WalkNode::kManifest));
  EXPECT_EQ(seen[2], std::pair(m.config.digest, WalkNode::kConfig));
  EXPECT_EQ(seen[3], std::pair(m.layers[0].digest, WalkNode::kLayer));
}

TEST_F(ImageWalkTest, NotDescendingAndMissingIndexEntries) {
  Descriptor img = Image("a", 1);
  Descriptor missing =
      Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of("not stored"), 10);
  Descriptor idx = IndexOf({missing, img});
  int visits = 0;
  ImageWalker w;
  w.visit = [&](const Descriptor&, WalkNode node, const Descriptor*) -> Result<bool> {
    ++visits;
    return node == WalkNode::kIndex;  // stop below the index
  };
  ASSERT_OK(WalkImage(blobs_, idx, w));
  EXPECT_EQ(visits, 2);  // the index and the present manifest
  w.skip_missing_index_entries = false;
  visits = 0;
  auto s = WalkImage(blobs_, idx, w);
  EXPECT_EQ(visits, 3);
  ASSERT_OK(s);  // the missing entry is not descended into either
}

TEST_F(ImageWalkTest, UnreadableManifestStopsUnlessHandled) {
  Descriptor bad = Put("{not json", media_type::kImageManifest);
  Descriptor idx = IndexOf({bad});
  ImageWalker w;
  w.visit = [](const Descriptor&, WalkNode, const Descriptor*) -> Result<bool> { return true; };
  auto s = WalkImage(blobs_, idx, w);
  ASSERT_FALSE(s);
  std::vector<Digest> unreadable;
  w.on_unreadable = [&](const Descriptor& d, const Error&) -> Status {
    unreadable.push_back(d.digest);
    return OkStatus();
  };
  ASSERT_OK(WalkImage(blobs_, idx, w));
  EXPECT_EQ(unreadable, std::vector<Digest>{bad.digest});
}

TEST_F(ImageWalkTest, GcMarksWhatRootsReachAndReportsProblems) {
  Manifest m;
  Descriptor img = Image("a", 2, &m);
  Descriptor loose = Put("loose", "x");
  ASSERT_OK(blobs_.Delete(m.layers[1].digest));
  GcMarks marks;
  std::vector<std::string> problems, unreadable;
  MarkReachable(
      blobs_, IndexOf({img}), marks, [&](std::string p) { problems.push_back(std::move(p)); },
      [&](std::string p) { unreadable.push_back(std::move(p)); });
  EXPECT_TRUE(marks.live.count(img.digest));
  EXPECT_TRUE(marks.live.count(m.config.digest));
  EXPECT_TRUE(marks.live.count(m.layers[0].digest));
  EXPECT_FALSE(marks.live.count(loose.digest));
  EXPECT_EQ(marks.configs.size(), 1u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], ::testing::HasSubstr("references missing blob"));
  EXPECT_TRUE(unreadable.empty());
}

}  // namespace
}  // namespace strata::oci
