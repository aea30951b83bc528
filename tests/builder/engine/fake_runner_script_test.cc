// The scripted side of FakeCommandRunner (builder/runtime/fake_command_runner.h),
// which the engine's hermetic tests stand on.
#include <sys/stat.h>

#include <thread>

#include "builder/runtime/fake_command_runner.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::strata::testing::MakeTempDir;

RunSpec Shell(const fs::path& rootfs, std::string script) {
  RunSpec s;
  s.args = {"/bin/sh", "-c", std::move(script)};
  s.rootfs = rootfs;
  return s;
}

TEST(FakeRunnerScriptTest, KeyedResponsesRepeatAndComeBeforeTheQueue) {
  auto tmp = MakeTempDir();
  FakeCommandRunner fake;
  fake.On("make").Print("built").Exit(0);
  fake.On("false").Exit(1).Print("nope", OutputStream::kStderr);
  fake.PushExit(7);
  RecordingSink sink;
  ASSERT_OK_AND_ASSIGN(int a, fake.Run(Shell(tmp.path(), "make"), sink));
  ASSERT_OK_AND_ASSIGN(int b, fake.Run(Shell(tmp.path(), "make"), sink));
  ASSERT_OK_AND_ASSIGN(int c, fake.Run(Shell(tmp.path(), "false"), sink));
  ASSERT_OK_AND_ASSIGN(int d, fake.Run(Shell(tmp.path(), "other"), sink));  // the queue
  ASSERT_OK_AND_ASSIGN(int e, fake.Run(Shell(tmp.path(), "other"), sink));  // default
  EXPECT_EQ(std::vector<int>({a, b, c, d, e}), std::vector<int>({0, 0, 1, 7, 0}));
  EXPECT_EQ(sink.Text(OutputStream::kStdout), "built\nbuilt\n");
  EXPECT_EQ(sink.Text(OutputStream::kStderr), "nope\n");
  EXPECT_EQ(fake.Runs("make"), 2);
  EXPECT_EQ(fake.Runs("/bin/sh -c false"), 1);  // the whole argv matches too
  ASSERT_NE(fake.LastCall("other"), nullptr);
  EXPECT_EQ(fake.LastCall("absent"), nullptr);
}

TEST(FakeRunnerScriptTest, FileEffectsLandInTheRootfsRelativeToCwd) {
  auto tmp = MakeTempDir();
  fs::path root = tmp.path();
  strata::testing::WriteTestFile(root / "old/f", "x");
  FakeCommandRunner fake;
  std::optional<std::string> seen;
  fake.On("make")
      .Write("/out/bin", "ELF", 0755)
      .Write("rel.txt", "r")
      .MakeDir("/var/cache/app", 0700)
      .Symlink("bin", "/out/link")
      .Link("/out/bin", "/out/hard")
      .Chmod("/out", 0750)
      .Touch("/out/bin", 1000, 5)
      .Remove("/old")
      .Read("/out/link", &seen);
  RecordingSink sink;
  RunSpec spec = Shell(root, "make");
  spec.cwd = "/work";
  ASSERT_OK(fake.Run(spec, sink));
  EXPECT_EQ(*ReadFile(root / "out/bin"), "ELF");
  EXPECT_EQ(*ReadFile(root / "work/rel.txt"), "r");
  struct stat st;
  ASSERT_EQ(::stat((root / "out/bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(::stat((root / "var/cache/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((root / "out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(fs::read_symlink(root / "out/link"), "bin");
  EXPECT_FALSE(fs::exists(root / "old"));
  EXPECT_EQ(seen, "ELF");
}

TEST(FakeRunnerScriptTest, EffectsNeverLeaveTheRootfs) {
  auto tmp = MakeTempDir();
  fs::path root = tmp.path() / "root";
  fs::path outside = tmp.path() / "outside";
  fs::create_directories(root);
  fs::create_directories(outside);
  fs::create_symlink(outside, root / "escape");
  FakeCommandRunner fake;
  fake.On("x").Write("/escape/pwned", "no");
  RecordingSink sink;
  ASSERT_OK(fake.Run(Shell(root, "x"), sink));
  EXPECT_FALSE(fs::exists(outside / "pwned"));
  // Resolved as inside a container: the absolute link target below the root.
  EXPECT_TRUE(fs::exists(root / outside.relative_path() / "pwned"));
}

TEST(FakeRunnerScriptTest, BindAndTmpfsMountsRedirectEffects) {
  auto tmp = MakeTempDir();
  fs::path root = tmp.path() / "root", cache = tmp.path() / "cache", ro = tmp.path() / "ro";
  for (const auto& d : {root, cache, ro}) fs::create_directories(d);
  FakeCommandRunner fake;
  fake.On("w").Write("/cache/obj.o", "o").Write("/tmp/scratch", "t");
  fake.On("ro").Write("/src/x", "x");
  RunSpec spec = Shell(root, "w");
  spec.binds.push_back(BindMount{cache, "/cache", /*read_only=*/false});
  spec.binds.push_back(BindMount{ro, "/src", /*read_only=*/true});
  spec.tmpfs.push_back(TmpfsMount{"/tmp"});
  RecordingSink sink;
  ASSERT_OK(fake.Run(spec, sink));
  EXPECT_EQ(*ReadFile(cache / "obj.o"), "o");
  EXPECT_FALSE(fs::exists(root / "cache"));
  EXPECT_FALSE(fs::exists(root / "tmp/scratch"));
  spec.args.back() = "ro";
  auto r = fake.Run(spec, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("Read-only"));
  EXPECT_FALSE(fs::exists(ro / "x"));
}

TEST(FakeRunnerScriptTest, FailResponseReturnsTheErrorAfterEffects) {
  auto tmp = MakeTempDir();
  FakeCommandRunner fake;
  fake.On("boom").Write("/partial", "p").Fail(Error(ErrorCode::kInternal, "runtime died"));
  RecordingSink sink;
  auto r = fake.Run(Shell(tmp.path(), "boom"), sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
  EXPECT_TRUE(fs::exists(tmp.path() / "partial"));
}

TEST(FakeRunnerScriptTest, RunsFromSeveralThreads) {
  auto tmp = MakeTempDir();
  FakeCommandRunner fake;
  fake.On("a").Exit(3);
  std::vector<std::thread> threads;
  std::atomic<int> threes = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) {
        RecordingSink sink;
        auto r = fake.Run(Shell(tmp.path(), j % 2 ? "a" : "b"), sink);
        if (r && *r == 3) ++threes;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(threes.load(), 100);
  EXPECT_EQ(fake.calls().size(), 200u);
}

}  // namespace
}  // namespace strata::builder
