// --metadata-file's JSON (tools/strata/build_metadata.h).
#include "tools/strata/build_metadata.h"

#include "oci/media_types.h"
#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

oci::Digest D(char c) { return oci::Digest::Parse("sha256:" + std::string(64, c)).value(); }

TEST(BuildMetadataTest, BuildKitKeys) {
  auto m = oci::Descriptor::Of(std::string(oci::media_type::kImageManifest), D('a'), 435);
  auto names = std::vector<oci::Reference>{oci::Reference::Parse("app:1").value(),
                                           oci::Reference::Parse("r.io/x/app:2").value()};
  auto j = BuildMetadataJson(m, D('b'), names);
  EXPECT_EQ(j["containerimage.digest"], D('a').ToString());
  EXPECT_EQ(j["containerimage.config.digest"], D('b').ToString());
  EXPECT_EQ(j["containerimage.descriptor"]["mediaType"], oci::media_type::kImageManifest);
  EXPECT_EQ(j["containerimage.descriptor"]["digest"], D('a').ToString());
  EXPECT_EQ(j["containerimage.descriptor"]["size"], 435);
  EXPECT_EQ(j["image.name"], "docker.io/library/app:1,r.io/x/app:2");
}

TEST(BuildMetadataTest, NoNameKeyForAnUnnamedImage) {
  auto m = oci::Descriptor::Of(std::string(oci::media_type::kImageManifest), D('a'), 1);
  auto j = BuildMetadataJson(m, D('b'), {});
  EXPECT_FALSE(j.contains("image.name"));
  EXPECT_FALSE(j["containerimage.descriptor"].contains("annotations"));
}

}  // namespace
}  // namespace strata::cli
