#include "builder/runtime/run_reaper.h"

#include <fcntl.h>
#include <sys/file.h>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;

class RunReaperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir();
    WriteTestFile(Root() / "lock", "");
  }
  fs::path Root() const { return root_.path(); }
  // A container state dir and a bundle as the runner names them.
  void Leave(std::string_view token) {
    WriteTestFile(Root() / "runtime" / OwnedContainerId(token, 0) / "state.json", "{}");
    WriteTestFile(Root() / "bundles" / (OwnedBundlePrefix(token) + "AbCdEf") / "config.json", "{}");
  }
  bool Left(std::string_view token) {
    return fs::exists(Root() / "runtime" / OwnedContainerId(token, 0)) ||
           fs::exists(Root() / "bundles" / (OwnedBundlePrefix(token) + "AbCdEf"));
  }
  Result<ReapReport> Reap() { return ReapDeadRuns(ReapOptions{Root(), {}}); }

  ScopedTempDir root_;
};

TEST_F(RunReaperTest, OwnerHoldsALockFileWhileAlive) {
  std::string token;
  fs::path file;
  {
    ASSERT_OK_AND_ASSIGN(RunOwner owner, RunOwner::Acquire(Root()));
    token = owner.token();
    EXPECT_EQ(token.size(), 16u);
    file = Root() / "run-owners" / token;
    ASSERT_TRUE(fs::exists(file));
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    EXPECT_NE(::flock(fd.get(), LOCK_EX | LOCK_NB), 0);  // held
  }
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(RunReaperTest, ReapsDeadOwnersOnlyWhileTheStoreIsInUse) {
  ASSERT_OK_AND_ASSIGN(RunOwner live, RunOwner::Acquire(Root()));
  const std::string dead = "0123456789abcdef";
  WriteTestFile(Root() / "run-owners" / dead, "");  // nobody holds its lock
  Leave(live.token());
  Leave(dead);
  WriteTestFile(Root() / "snapshots" / ".run-XyZ123" / "upper" / "f", "x");
  // Another strata process has the store open.
  UniqueFd other(::open((Root() / "lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_EQ(::flock(other.get(), LOCK_SH), 0);

  ASSERT_OK_AND_ASSIGN(ReapReport r, Reap());
  EXPECT_FALSE(r.exclusive);
  EXPECT_EQ(r.owners, 1);
  EXPECT_EQ(r.containers, 1);
  EXPECT_EQ(r.bundles, 1);
  EXPECT_FALSE(Left(dead));
  EXPECT_FALSE(fs::exists(Root() / "run-owners" / dead));
  EXPECT_TRUE(Left(live.token()));  // never a live owner's
  // A work dir names no owner: it waits for an idle store.
  EXPECT_TRUE(fs::exists(Root() / "snapshots" / ".run-XyZ123"));
}

TEST_F(RunReaperTest, IdleStoreReapsEverythingDead) {
  Leave("fedcba9876543210");
  // Names from before owners existed (strata-PID-N-HEX, run-XXXXXX).
  WriteTestFile(Root() / "runtime" / "strata-4242-0-abcd1234" / "state.json", "{}");
  WriteTestFile(Root() / "bundles" / "run-Q1w2E3" / "config.json", "{}");
  WriteTestFile(Root() / "snapshots" / ".run-XyZ123" / "upper" / "f", "x");
  WriteTestFile(Root() / "snapshots" / ".view-AAAAAA" / "x", "x");
  WriteTestFile(Root() / "snapshots" / "0123abcd" / "layer-file", "x");  // a snapshot: kept
  WriteTestFile(Root() / "runtime" / "not-ours" / "state.json", "{}");   // kept

  ASSERT_OK_AND_ASSIGN(ReapReport r, Reap());
  EXPECT_TRUE(r.exclusive);
  EXPECT_EQ(r.containers, 2);
  EXPECT_EQ(r.bundles, 2);
  EXPECT_EQ(r.work_dirs, 2);
  EXPECT_FALSE(Left("fedcba9876543210"));
  EXPECT_FALSE(fs::exists(Root() / "runtime" / "strata-4242-0-abcd1234"));
  EXPECT_FALSE(fs::exists(Root() / "bundles" / "run-Q1w2E3"));
  EXPECT_FALSE(fs::exists(Root() / "snapshots" / ".run-XyZ123"));
  EXPECT_TRUE(fs::exists(Root() / "snapshots" / "0123abcd" / "layer-file"));
  EXPECT_TRUE(fs::exists(Root() / "runtime" / "not-ours"));
  // The reaper let go of the store lock.
  UniqueFd fd(::open((Root() / "lock").c_str(), O_RDWR | O_CLOEXEC));
  EXPECT_EQ(::flock(fd.get(), LOCK_EX | LOCK_NB), 0);
}

TEST_F(RunReaperTest, StoreWithoutLockFileIsLeftAlone) {
  auto empty = MakeTempDir();
  WriteTestFile(empty.path() / "bundles" / "run-Q1w2E3" / "config.json", "{}");
  ASSERT_OK_AND_ASSIGN(ReapReport r, ReapDeadRuns(ReapOptions{empty.path(), {}}));
  EXPECT_FALSE(r.exclusive);
  EXPECT_TRUE(fs::exists(empty.path() / "bundles" / "run-Q1w2E3"));
}

}  // namespace
}  // namespace strata::builder
