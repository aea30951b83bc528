// The Snapshotter contract (builder/engine/snapshotter.h), run against every
// implementation: NativeSnapshotter always, OverlaySnapshotter where
// overlayfs can be mounted (root); without root the overlay one must refuse
// clearly, which is checked instead.
//
// The central property: whatever a step does in an active snapshot, its
// Finish() directory stacked on the lowers shows exactly the step's result.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <functional>
#include <memory>

#include <fmt/format.h>

#include "builder/engine/native_snapshotter.h"
#include "builder/engine/overlay_snapshotter.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using testing::DumpTree;
using ::testing::HasSubstr;
using testing::IsRoot;

struct Impl {
  std::string name;
  std::function<std::unique_ptr<Snapshotter>()> make;
  bool needs_root = false;
};

void Write(const fs::path& p, std::string_view content, int mode = 0644) {
  fs::create_directories(p.parent_path());
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.valid()) << p;
  ASSERT_OK(WriteAll(fd.get(), content.data(), content.size()));
  ASSERT_EQ(::fchmod(fd.get(), mode), 0);
}
void Whiteout(const fs::path& p) {
  fs::create_directories(p.parent_path());
  ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0600, ::makedev(0, 0)), 0);
}

void PrintTo(const Impl& i, std::ostream* os) { *os << i.name; }

class SnapshotterConformanceTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    auto d = ScopedTempDir::Create({}, "strata-snap-");
    ASSERT_TRUE(d.has_value());
    tmp_ = std::move(*d);
    scratch_ = tmp_.path() / "snapshots";
    fs::create_directories(scratch_);
    snap_ = GetParam().make();
    if (GetParam().needs_root && IsRoot()) {
      // Root in a container without CAP_SYS_ADMIN cannot mount either.
      auto probe = snap_->View({}, scratch_);
      if (!probe)
        GTEST_SKIP() << GetParam().name << " cannot mount here: " << probe.error().message();
    }
  }
  // False (after checking the refusal) when this implementation cannot run
  // here: overlayfs without root.
  bool Usable() {
    if (!GetParam().needs_root) return true;
    if (IsRoot()) return true;  // SetUp checked that it can mount
    auto v = snap_->View({}, scratch_);
    EXPECT_FALSE(v.has_value()) << GetParam().name << " worked without root";
    if (!v) {
      EXPECT_EQ(v.error().code(), ErrorCode::kPermissionDenied) << v.error().message();
    }
    auto a = snap_->Prepare({}, scratch_);
    EXPECT_FALSE(a.has_value());
    if (!a) {
      EXPECT_EQ(a.error().code(), ErrorCode::kPermissionDenied) << a.error().message();
    }
    EXPECT_TRUE(fs::is_empty(scratch_)) << "a refused snapshot left scratch dirs";
    return false;
  }
  fs::path Lower() {
    fs::path p = tmp_.path() / fmt::format("l{}", n_++);
    fs::create_directories(p);
    return p;
  }
  std::string ViewDump(const std::vector<fs::path>& lowers) {
    auto v = snap_->View(lowers, scratch_);
    if (!v) return "error: " + v.error().message();
    return DumpTree((*v)->root());
  }
  // Runs `change` in an active snapshot; checks that the Finish() dir on top
  // of the lowers shows what the step left; returns the Finish() dir's dump.
  std::string RoundTrip(const std::vector<fs::path>& lowers,
                        const std::function<void(const fs::path&)>& change) {
    auto a = snap_->Prepare(lowers, scratch_);
    if (!a) return "error: " + a.error().message();
    change((*a)->root());
    std::string after = DumpTree((*a)->root());
    auto upper = (*a)->Finish();
    if (!upper) return "error: " + upper.error().message();
    std::vector<fs::path> stacked = {*upper};
    stacked.insert(stacked.end(), lowers.begin(), lowers.end());
    EXPECT_EQ(ViewDump(stacked), after) << GetParam().name;
    std::string out = DumpTree(*upper);
    active_ = std::move(*a);
    return out;
  }

  ScopedTempDir tmp_;
  fs::path scratch_;
  std::unique_ptr<Snapshotter> snap_;
  std::unique_ptr<ActiveSnapshot> active_;
  int n_ = 0;
};

TEST_P(SnapshotterConformanceTest, ViewMergesTopMostFirstWithWhiteouts) {
  if (!Usable()) return;
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "a", "bottom");
  Write(l0 / "b", "b");
  Write(l0 / "d/x", "x");
  Write(l1 / "a", "top");
  Whiteout(l1 / "b");
  Write(l1 / "d/y", "y");
  EXPECT_EQ(ViewDump({l1, l0}), "a: file 644 top\nd: dir 755\nd/x: file 644 x\nd/y: file 644 y\n");
}

TEST_P(SnapshotterConformanceTest, ViewHonoursOpaqueDirectoriesAndNonDirectories) {
  if (!Usable()) return;
  fs::path l0 = Lower(), l1 = Lower(), l2 = Lower();
  Write(l0 / "o/hidden", "h");
  Write(l0 / "f/x", "x");
  Write(l1 / "o/shown", "s");
  // trusted.* needs root; user.overlay.opaque is what unprivileged overlay
  // (and NativeSnapshotter) read.
  const char* xattr = IsRoot() ? "trusted.overlay.opaque" : "user.overlay.opaque";
  ASSERT_EQ(::setxattr((l1 / "o").c_str(), xattr, "y", 1, 0), 0);
  Write(l1 / "f", "now a file");
  Write(l2 / "f/z", "dir again");
  EXPECT_EQ(ViewDump({l2, l1, l0}),
            "f: dir 755\nf/z: file 644 dir again\no: dir 755\no/shown: file 644 s\n");
}

TEST_P(SnapshotterConformanceTest, EmptyLowersGiveAnEmptyRoot) {
  if (!Usable()) return;
  EXPECT_EQ(ViewDump({}), "");
  EXPECT_EQ(RoundTrip({}, [](const fs::path& r) { Write(r / "new", "n"); }), "new: file 644 n\n");
}

TEST_P(SnapshotterConformanceTest, ScratchDirsAreNamedForTheSweepAndRemoved) {
  if (!Usable()) return;
  fs::path l0 = Lower();
  Write(l0 / "f", "f");
  {
    ASSERT_OK_AND_ASSIGN(auto v, snap_->View({l0}, scratch_));
    EXPECT_TRUE(v->root().parent_path().filename().string().starts_with(".view-"));
    EXPECT_EQ(v->root().parent_path().parent_path(), scratch_);
    ASSERT_OK_AND_ASSIGN(auto a, snap_->Prepare({l0}, scratch_));
    EXPECT_TRUE(a->root().parent_path().filename().string().starts_with(".run-"));
    ASSERT_OK_AND_ASSIGN(fs::path upper, a->Finish());
    EXPECT_TRUE(upper.string().starts_with(a->root().parent_path().string()));
  }
  EXPECT_TRUE(fs::is_empty(scratch_));
  EXPECT_EQ(DumpTree(l0), "f: file 644 f\n");  // lowers untouched
}

TEST_P(SnapshotterConformanceTest, AnUnchangedStepGivesAnEmptyDiff) {
  if (!Usable()) return;
  fs::path l0 = Lower();
  Write(l0 / "etc/conf", "c");
  EXPECT_EQ(RoundTrip({l0}, [](const fs::path& r) { EXPECT_EQ(*ReadFile(r / "etc/conf"), "c"); }),
            "");
}

TEST_P(SnapshotterConformanceTest, ChangesRoundTrip) {
  if (!Usable()) return;
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "etc/passwd", "root");
  Write(l0 / "etc/gone", "g");
  Write(l0 / "var/cache/a", "a");
  Write(l0 / "var/cache/b", "b");
  Write(l0 / "bin/tool", "t", 0644);
  Write(l1 / "usr/lib/x", "x");
  fs::create_symlink("tool", l1 / "link");
  std::string upper = RoundTrip({l1, l0}, [](const fs::path& r) {
    Write(r / "etc/passwd", "root\napp");                   // modified
    fs::remove(r / "etc/gone");                             // deleted
    fs::remove_all(r / "var/cache");                        // deleted dir
    ASSERT_EQ(::chmod((r / "bin/tool").c_str(), 0755), 0);  // chmod
    fs::remove_all(r / "usr/lib");                          // dir -> file
    Write(r / "usr/lib", "file now");
    Write(r / "opt/a/b/c", "deep");  // nested new
    fs::remove(r / "link");          // retarget
    fs::create_symlink("other", r / "link");
  });
  // Whatever else an implementation's diff holds, these must be in it.
  EXPECT_THAT(upper, HasSubstr("etc/gone: wh\n"));
  EXPECT_THAT(upper, HasSubstr("etc/passwd: file 644 root\napp\n"));
  EXPECT_THAT(upper, HasSubstr("var/cache: wh\n"));
  EXPECT_THAT(upper, HasSubstr("bin/tool: file 755 t\n"));
  EXPECT_THAT(upper, HasSubstr("usr/lib: file 644 file now\n"));
  EXPECT_THAT(upper, HasSubstr("opt/a/b/c: file 644 deep\n"));
  EXPECT_THAT(upper, HasSubstr("link: link -> other\n"));
}

TEST_P(SnapshotterConformanceTest, ADirectoryEmptiedAndRefilledHidesItsOldContents) {
  if (!Usable()) return;
  fs::path l0 = Lower();
  Write(l0 / "d/old1", "1");
  Write(l0 / "d/sub/old2", "2");
  RoundTrip({l0}, [](const fs::path& r) {
    fs::remove_all(r / "d");
    Write(r / "d/new", "n");
  });
}

INSTANTIATE_TEST_SUITE_P(
    Snapshotters, SnapshotterConformanceTest,
    ::testing::Values(Impl{"native", [] { return std::make_unique<NativeSnapshotter>(); }, false},
                      Impl{"overlay", [] { return std::make_unique<OverlaySnapshotter>(); }, true}),
    [](const ::testing::TestParamInfo<Impl>& i) { return i.param.name; });

}  // namespace
}  // namespace strata::builder
