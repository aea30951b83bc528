#include "builder/engine/snapshotter_choice.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "builder/engine/native_snapshotter.h"
#include "builder/engine/overlay_snapshotter.h"
#include "oci/util/userns.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::MakeTempDir;
using ::testing::HasSubstr;

TEST(SnapshotterChoiceTest, InTheInitialNamespaceItIsOverlayWithoutAProbe) {
  if (InUserNamespace()) GTEST_SKIP() << "runs in a user namespace";
  auto tmp = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(SnapshotterChoice c, ChooseSnapshotter(tmp.path()));
  EXPECT_EQ(c.name, "overlay");
  EXPECT_TRUE(c.reason.empty());
  EXPECT_NE(dynamic_cast<OverlaySnapshotter*>(c.snapshotter.get()), nullptr);
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(SnapshotterChoiceTest, ForcedChoicesAndUnknownNames) {
  auto tmp = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(SnapshotterChoice n, ChooseSnapshotter(tmp.path(), "native"));
  EXPECT_EQ(n.name, "native");
  EXPECT_EQ(n.reason, "STRATA_SNAPSHOTTER=native");
  EXPECT_NE(dynamic_cast<NativeSnapshotter*>(n.snapshotter.get()), nullptr);
  ASSERT_OK_AND_ASSIGN(SnapshotterChoice o, ChooseSnapshotter(tmp.path(), "overlay"));
  EXPECT_NE(dynamic_cast<OverlaySnapshotter*>(o.snapshotter.get()), nullptr);
  auto bad = ChooseSnapshotter(tmp.path(), "fuse-overlayfs");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("STRATA_SNAPSHOTTER=fuse-overlayfs"));
}

}  // namespace
}  // namespace strata::builder
