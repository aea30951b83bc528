// Pure parts of OverlayMount: option validation and the classic mount(2)
// option string used on kernels without `lowerdir+` (< 6.8).
#include "builder/runtime/overlay_mount.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

TEST(OverlayMountDataTest, ClassicOptionStringOrdersLowersTopMostFirst) {
  ASSERT_OK_AND_ASSIGN(std::string data,
                       OverlayMountData({{"/s/top", "/s/mid", "/s/base"}, "/u", "/w", "/m"}));
  EXPECT_EQ(data,
            "lowerdir=/s/top:/s/mid:/s/base,upperdir=/u,workdir=/w,"
            "redirect_dir=off,metacopy=off,index=off");
}

TEST(OverlayMountDataTest, ReadOnlyHasNoUpperOrWorkdir) {
  ASSERT_OK_AND_ASSIGN(std::string data, OverlayMountData({{"/a", "/b"}, {}, {}, "/m"}));
  EXPECT_EQ(data, "lowerdir=/a:/b,redirect_dir=off,metacopy=off,index=off");
}

TEST(OverlayMountDataTest, UserxattrNeitherCreatesNorFollowsRedirects) {
  OverlayOptions o{{"/a", "/b"}, "/u", "/w", "/m"};
  o.userxattr = true;
  ASSERT_OK_AND_ASSIGN(std::string data, OverlayMountData(o));
  // "redirect_dir=off" still follows redirects, which userxattr refuses.
  EXPECT_EQ(data,
            "lowerdir=/a:/b,upperdir=/u,workdir=/w,redirect_dir=nofollow,metacopy=off,"
            "index=off,userxattr");
}

TEST(OverlayMountDataTest, RejectsSeparatorsInPaths) {
  for (const char* bad : {"/a:b", "/a,b"}) {
    auto r = OverlayMountData({{bad, "/c"}, {}, {}, "/m"});
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(OverlayMountDataTest, RejectsMoreThanOnePage) {
  std::vector<std::filesystem::path> lowers(40, std::filesystem::path("/" + std::string(120, 'l')));
  auto r = OverlayMountData({lowers, {}, {}, "/m"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(OverlayMountTest, ValidatesOptionsBeforeMounting) {
  auto check = [](OverlayOptions o) {
    auto r = OverlayMount::Mount(o);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  };
  check({{}, "/u", "/w", "/m"});                   // no lowers
  check({{"rel/lower", "/b"}, "/u", "/w", "/m"});  // relative lower
  check({{"/a", "/b"}, "/u", {}, "/m"});           // upper without workdir
  check({{"/a", "/b"}, "/u", "/w", "m"});          // relative mountpoint
}

TEST(OverlayMountTest, DefaultConstructedOwnsNothing) {
  OverlayMount m;
  EXPECT_FALSE(m.mounted());
  EXPECT_TRUE(m.Unmount().has_value());
}

}  // namespace
}  // namespace strata::builder
