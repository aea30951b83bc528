// SIGKILL of `strata build` while a RUN step runs: the container and the NAT
// helper die with it, no mount of the build is ever visible in the test's
// mount namespace, and the next strata command reaps the runtime state,
// bundle and work dir it left. Needs root, runc and slirp4netns.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "tests/testing/test_util.h"

extern char** environ;

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::HaveTool;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

// Pids whose command line contains `needle` (arguments joined by spaces).
std::vector<pid_t> ProcessesWith(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    auto cmd = ReadFile(fmt::format("/proc/{}/cmdline", pid));
    if (!cmd) continue;
    std::string line = *cmd;
    for (char& c : line) c = c == '\0' ? ' ' : c;
    if (line.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool MountsUnder(pid_t pid, const fs::path& root) {
  auto info = ReadFile(pid == 0 ? "/proc/self/mountinfo" : fmt::format("/proc/{}/mountinfo", pid));
  return info && info->find(fmt::format(" {}/", root.string())) != std::string::npos;
}

template <typename F>
bool WaitFor(F done, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class BuildCrashIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    for (const char* tool : {"runc", "slirp4netns"}) {
      if (!HaveTool(tool)) GTEST_SKIP() << tool << " not installed";
    }
    dir_ = fs::path("/tmp") /
           fmt::format("strata-crash-{}-{}", ::getpid(),
                       std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(dir_);
    ASSERT_OK(MakeDirs(dir_ / "ctx"));
    root_ = dir_ / "store";
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                        Q(dir_ / "rootfs"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("import " + Q(dir_ / "rootfs") + " busybox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (pid_t p : ProcessesWith(marker_)) ::kill(p, SIGKILL);
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  testing::CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  fs::path dir_, root_;
  pid_t pid_ = -1;
  // A command line no other process has.
  const std::string marker_ = fmt::format("sleep 86{}", ::getpid() % 1000 + 1000);
};

TEST_F(BuildCrashIntegrationTest, SigkillDuringRunLeavesNothingBehind) {
  testing::WriteTestFile(dir_ / "ctx" / "Dockerfile",
                         fmt::format("FROM busybox:latest\nRUN echo started; {}\n", marker_));
  std::string bin = STRATA_BINARY, root = root_.string(), ctx = (dir_ / "ctx").string();
  std::vector<char*> argv = {bin.data(),
                             const_cast<char*>("--root"),
                             root.data(),
                             const_cast<char*>("build"),
                             const_cast<char*>("--progress"),
                             const_cast<char*>("plain"),
                             ctx.data(),
                             nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string log = (dir_ / "build.log").string();
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  ASSERT_EQ(::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);

  // The RUN is running: its command, runc and the NAT helper exist.
  ASSERT_TRUE(WaitFor([&] { return !ProcessesWith(marker_).empty(); }, std::chrono::seconds(60)))
      << ReadFile(log).value_or("");
  EXPECT_FALSE(ProcessesWith("runc --root " + root).empty());
  EXPECT_FALSE(ProcessesWith("slirp4netns").empty());
  // The overlay is mounted in the build's namespace, never in ours.
  auto builder = ReadFile(fmt::format("/proc/{}/task/{}/children", pid_, pid_));
  ASSERT_OK(builder);
  pid_t inner = std::atoi(builder->c_str());
  ASSERT_GT(inner, 0);
  EXPECT_TRUE(MountsUnder(inner, root_));
  EXPECT_FALSE(MountsUnder(0, root_));

  ASSERT_EQ(::kill(pid_, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid_, nullptr, 0), pid_);
  pid_ = -1;

  // Everything the build started dies with it, within a bounded time.
  EXPECT_TRUE(WaitFor([&] { return ProcessesWith(marker_).empty(); }, std::chrono::seconds(10)));
  EXPECT_TRUE(ProcessesWith("runc --root " + root).empty());
  EXPECT_TRUE(ProcessesWith("--netns-type=path " + root).empty());  // its slirp4netns
  EXPECT_FALSE(MountsUnder(0, root_));
  auto list = RunCommand("runc --root " + Q(root_ / "runtime") + " list");
  EXPECT_THAT(list.output, Not(HasSubstr("running")));

  // What stays on disk is reaped by the next strata command.
  auto r = Strata("images");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  list = RunCommand("runc --root " + Q(root_ / "runtime") + " list -q");
  EXPECT_EQ(list.output, "");
  std::vector<std::string> left;
  for (const char* sub : {"bundles", "snapshots", "run-owners"}) {
    std::error_code ec;
    for (fs::directory_iterator it(root_ / sub, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.starts_with("run-") || name.starts_with(".run-") || std::string(sub) == "run-owners")
        left.push_back(std::string(sub) + "/" + name);
    }
  }
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
}

}  // namespace
}  // namespace strata
