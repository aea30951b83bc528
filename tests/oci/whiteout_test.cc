#include "oci/whiteout.h"

#include <sys/sysmacros.h>

#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

TEST(WhiteoutTest, ClassifiesNames) {
  EXPECT_EQ(ClassifyWhiteout("file").kind, WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout(".whx").kind, WhiteoutKind::kNone);
  Whiteout w = ClassifyWhiteout(".wh.file");
  EXPECT_EQ(w.kind, WhiteoutKind::kFile);
  EXPECT_EQ(w.target, "file");
  EXPECT_EQ(ClassifyWhiteout(".wh..hidden").target, ".hidden");
  EXPECT_EQ(ClassifyWhiteout(".wh..wh..opq").kind, WhiteoutKind::kOpaque);
  EXPECT_EQ(ClassifyWhiteout(".wh..wh.plnk").kind, WhiteoutKind::kMeta);
}

TEST(WhiteoutTest, RejectsWhiteoutsOfDotDotAndEmpty) {
  EXPECT_EQ(ClassifyWhiteout(".wh.").kind, WhiteoutKind::kInvalid);
  EXPECT_EQ(ClassifyWhiteout(".wh..").kind, WhiteoutKind::kInvalid);
  EXPECT_EQ(ClassifyWhiteout(".wh...").kind, WhiteoutKind::kInvalid);
}

TEST(WhiteoutTest, NamesAndOverlayDevices) {
  EXPECT_EQ(WhiteoutName("x"), ".wh.x");
  struct stat st {};
  st.st_mode = S_IFCHR;
  st.st_rdev = ::makedev(0, 0);
  EXPECT_TRUE(IsOverlayWhiteout(st));
  st.st_rdev = ::makedev(1, 3);
  EXPECT_FALSE(IsOverlayWhiteout(st));
  st.st_mode = S_IFREG;
  st.st_rdev = 0;
  EXPECT_FALSE(IsOverlayWhiteout(st));
}

TEST(WhiteoutTest, OverlayXattrsOfBothNamespaces) {
  EXPECT_TRUE(IsOverlayXattr("trusted.overlay.opaque"));
  EXPECT_TRUE(IsOverlayXattr("user.overlay.redirect"));
  EXPECT_FALSE(IsOverlayXattr("user.overlayx"));
  EXPECT_FALSE(IsOverlayXattr("user.mime_type"));
  EXPECT_FALSE(IsOverlayXattr("security.capability"));
  EXPECT_TRUE(IsOverlayOpaqueXattr("trusted.overlay.opaque"));
  EXPECT_TRUE(IsOverlayOpaqueXattr("user.overlay.opaque"));
  EXPECT_FALSE(IsOverlayOpaqueXattr("user.overlay.origin"));
}

}  // namespace
}  // namespace strata::oci
