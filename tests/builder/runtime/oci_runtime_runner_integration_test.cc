// OciRuntimeRunner with the real runc over a real overlay: a busybox rootfs
// (tools/make-busybox-rootfs.sh) as the lowerdir and a fresh upper per test.
// Needs root and runc; skipped otherwise. Every test unmounts and deletes its
// runc state even when it fails (RAII members + TearDown).
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>

#include "builder/runtime/oci_runtime_runner.h"
#include "builder/runtime/overlay_mount.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::HaveTool;
using ::strata::testing::MakeTempDir;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

class OciRuntimeRunnerIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || !HaveTool("runc")) return;
    auto dir = ScopedTempDir::Create({}, "strata-busybox-");
    if (!dir) return;
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                        (dir->path() / "rootfs").string());
    if (r.exit_code != 0) {
      setup_error_ = new std::string(r.output);
      return;
    }
    busybox_ = new ScopedTempDir(std::move(*dir));
  }
  static void TearDownTestSuite() {
    delete busybox_;
    busybox_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!HaveTool("runc")) GTEST_SKIP() << "runc not installed";
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(busybox_, nullptr);
    dir_ = MakeTempDir();
    for (const char* d : {"upper", "work", "merged", "state"}) {
      std::filesystem::create_directories(dir_.path() / d);
    }
    ASSERT_OK_AND_ASSIGN(mount_, OverlayMount::Mount({{busybox_->path() / "rootfs"},
                                                      dir_.path() / "upper",
                                                      dir_.path() / "work",
                                                      dir_.path() / "merged"}));
    OciRuntimeRunnerOptions options;
    options.runtime = "runc";
    options.state_dir = dir_.path() / "state";
    runner_.emplace(std::move(options));
  }

  void TearDown() override {
    if (dir_.path().empty()) return;
    // Nothing may be left in runc's state, whatever the test did.
    auto left =
        RunCommand("(runc --root " + (dir_.path() / "state").string() + " list -q 2>/dev/null)");
    for (const std::string& id : SplitLines(left.output)) {
      ADD_FAILURE() << "container left behind: " << id;
      RunCommand("runc --root " + (dir_.path() / "state").string() + " delete -f " + id);
    }
    (void)mount_.Unmount();
  }

  RunSpec Shell(std::string script) {
    RunSpec s;
    s.args = {"/bin/sh", "-c", std::move(script)};
    s.rootfs = dir_.path() / "merged";
    return s;
  }

  // Runs and returns {exit code, stdout}, failing the test on an error.
  std::pair<int, std::string> RunOk(const RunSpec& spec) {
    RecordingSink sink;
    auto r = runner_->Run(spec, sink);
    EXPECT_TRUE(r.has_value()) << ::strata::testing::Describe(r) << "\nstderr:\n"
                               << sink.Text(OutputStream::kStderr);
    return {r.value_or(-1), sink.Text(OutputStream::kStdout)};
  }

  std::filesystem::path Upper(std::string_view rel) { return dir_.path() / "upper" / rel; }

  static inline ScopedTempDir* busybox_ = nullptr;
  static inline std::string* setup_error_ = nullptr;
  ScopedTempDir dir_;
  OverlayMount mount_;
  std::optional<OciRuntimeRunner> runner_;
};

TEST_F(OciRuntimeRunnerIntegrationTest, EchoHelloReachesTheSink) {
  auto [code, out] = RunOk(Shell("echo hello"));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "hello\n");
}

TEST_F(OciRuntimeRunnerIntegrationTest, ChangesLandInTheUpperDirWithWhiteouts) {
  auto [code, out] = RunOk(Shell("touch /x && rm /bin/ls"));
  ASSERT_EQ(code, 0);
  struct stat st;
  ASSERT_EQ(::lstat(Upper("x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::lstat(Upper("bin/ls").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
}

TEST_F(OciRuntimeRunnerIntegrationTest, ExitCodePropagates) {
  auto [code, out] = RunOk(Shell("echo before; exit 3"));
  EXPECT_EQ(code, 3);
  EXPECT_EQ(out, "before\n");
}

TEST_F(OciRuntimeRunnerIntegrationTest, UserNameColonGroupWithSupplementaryGroups) {
  RunSpec s = Shell("id; echo HOME=$HOME");
  s.user = "app:staff";
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("uid=1000(app) gid=50(staff)"));
  EXPECT_THAT(out, HasSubstr("10(wheel)"));
  EXPECT_THAT(out, HasSubstr("HOME=/home/app"));
}

TEST_F(OciRuntimeRunnerIntegrationTest, NumericUserWithoutPasswdEntry) {
  RunSpec s = Shell("id -u; id -g");
  s.user = "4242:4343";
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "4242\n4343\n");
}

TEST_F(OciRuntimeRunnerIntegrationTest, UnknownUserIsAnError) {
  RunSpec s = Shell("true");
  s.user = "foo";
  RecordingSink sink;
  auto r = runner_->Run(s, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "unable to find user foo: no matching entries in passwd file");
}

TEST_F(OciRuntimeRunnerIntegrationTest, WorkdirIsCreated) {
  RunSpec s = Shell("pwd");
  s.cwd = "/new/work/dir";
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "/new/work/dir\n");
  EXPECT_TRUE(std::filesystem::is_directory(Upper("new/work/dir")));
}

TEST_F(OciRuntimeRunnerIntegrationTest, NetworkNoneHasOnlyLoopback) {
  RunSpec s = Shell("ls /sys/class/net");
  s.network = NetworkMode::kNone;
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "lo\n");
}

TEST_F(OciRuntimeRunnerIntegrationTest, DefaultNetworkIsPrivateWithTheNatInterface) {
  auto [code, out] = RunOk(Shell("ls /sys/class/net; cat /etc/resolv.conf"));
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "lo\ntap0\nnameserver 10.0.2.3\n");
}

// Steps share one default network (set up once, reused), and the runner
// stops it when it is destroyed. A NAT helper wrapper counts its starts.
TEST_F(OciRuntimeRunnerIntegrationTest, DefaultNetworkIsSetUpOnceAndStoppedWithTheRunner) {
  if (!HaveTool("slirp4netns")) GTEST_SKIP() << "slirp4netns not installed";
  auto slirp = RunCommand("command -v slirp4netns");
  std::string real = slirp.output.substr(0, slirp.output.find('\n'));
  std::filesystem::path wrapper = dir_.path() / "nat-wrapper";
  std::filesystem::path starts = dir_.path() / "starts";
  ::strata::testing::WriteTestFile(
      wrapper, "#!/bin/sh\necho $$ >> '" + starts.string() + "'\nexec '" + real + "' \"$@\"\n",
      0755);
  OciRuntimeRunnerOptions options;
  options.runtime = "runc";
  options.state_dir = dir_.path() / "state";
  options.nat_helper = wrapper.string();
  runner_.emplace(std::move(options));
  RunSpec spec = Shell("grep -c tap0 /proc/net/dev");
  spec.network = NetworkMode::kPrivate;
  for (int i = 0; i < 3; ++i) {
    auto [code, out] = RunOk(spec);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(out, "1\n");
  }
  auto lines = ReadFile(starts);
  ASSERT_OK(lines);
  std::vector<std::string> pids = SplitLines(*lines);
  ASSERT_EQ(pids.size(), 1u) << *lines;
  pid_t pid = std::atoi(pids[0].c_str());
  EXPECT_EQ(::kill(pid, 0), 0);  // kept for the next step
  runner_.reset();
  EXPECT_EQ(::kill(pid, 0), -1);  // stopped and reaped with the runner
}

TEST_F(OciRuntimeRunnerIntegrationTest, HostNetworkSeesTheHostInterfaces) {
  RunSpec s = Shell("ls /sys/class/net");
  s.network = NetworkMode::kHost;
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  std::set<std::string> inside;
  for (const auto& l : SplitLines(out)) inside.insert(l);
  std::set<std::string> host;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
    host.insert(e.path().filename().string());
  }
  EXPECT_EQ(inside, host);
}

TEST_F(OciRuntimeRunnerIntegrationTest, EnvIsPassedWithDockerDefaults) {
  RunSpec s = Shell("echo \"$FOO|$EMPTY|$HOME|$PATH\"");
  s.env = {"FOO=bar baz", "EMPTY="};
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "bar baz||/root|" + std::string(kDefaultPath) + "\n");
}

TEST_F(OciRuntimeRunnerIntegrationTest, LotsOfOutputOnBothStreamsDoesNotDeadlock) {
  RunSpec s = Shell(
      "(yes out-line | head -n 200000) & (yes err-line | head -n 200000 >&2); wait; echo done");
  RecordingSink sink;
  ASSERT_OK_AND_ASSIGN(int code, runner_->Run(s, sink));
  EXPECT_EQ(code, 0);
  size_t out = 0, err = 0;
  for (const auto& e : sink.entries()) {
    if (e.stream == OutputStream::kStdout && e.text == "out-line") ++out;
    if (e.stream == OutputStream::kStderr && e.text == "err-line") ++err;
  }
  EXPECT_EQ(out, 200000u);
  EXPECT_EQ(err, 200000u);
  EXPECT_THAT(sink.Text(OutputStream::kStdout), ::testing::EndsWith("out-line\ndone\n"));
}

TEST_F(OciRuntimeRunnerIntegrationTest, EtcFilesAreBoundAndLeaveNoStubsInTheLayer) {
  RunSpec s = Shell(
      "cat /etc/hostname; hostname; grep -c localhost /etc/hosts; "
      "grep -c nameserver /etc/resolv.conf");
  s.hostname = "buildbox";
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  auto lines = SplitLines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0], "buildbox");
  EXPECT_EQ(lines[1], "buildbox");
  EXPECT_NE(lines[2], "0");
  EXPECT_NE(lines[3], "0");
  // busybox has no /etc/hosts etc.: the mount points runc made are removed,
  // and /etc (copied up when they were made) keeps the lower layer's mtime.
  struct stat lower_etc, upper_etc;
  ASSERT_EQ(::stat((busybox_->path() / "rootfs/etc").c_str(), &lower_etc), 0);
  ASSERT_EQ(::stat(Upper("etc").c_str(), &upper_etc), 0);
  EXPECT_EQ(upper_etc.st_mtim.tv_sec, lower_etc.st_mtim.tv_sec);
  EXPECT_EQ(upper_etc.st_mtim.tv_nsec, lower_etc.st_mtim.tv_nsec);
  for (const char* f : {"etc/hosts", "etc/resolv.conf", "etc/hostname"}) {
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(Upper(f)))) << f;
  }
}

TEST_F(OciRuntimeRunnerIntegrationTest, DockerDefaultCapabilitiesAndProtectedPaths) {
  auto [code, out] = RunOk(Shell(
      "grep CapEff /proc/self/status; wc -c < /proc/timer_list; "
      "(echo x > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-writable; "
      "touch /sys/x 2>/dev/null && echo sys-writable; ls /dev/null /dev/urandom /dev/pts/ptmx"));
  ASSERT_EQ(code, 0);
  auto lines = SplitLines(out);
  ASSERT_GE(lines.size(), 2u) << out;
  // Docker's default set (0x00000000a80425fb) without CAP_NET_RAW (bit 13).
  EXPECT_THAT(lines[0], HasSubstr("00000000a80405fb"));
  EXPECT_EQ(lines[1], "0");  // masked: /dev/null bound over it (7 KB on the host)
  EXPECT_THAT(out, ::testing::Not(HasSubstr("writable")));
  EXPECT_THAT(out, HasSubstr("/dev/urandom"));
}

TEST_F(OciRuntimeRunnerIntegrationTest, BindAndTmpfsMounts) {
  auto host = MakeTempDir();
  ASSERT_OK(WriteFileAtomic(host.path() / "in.txt", "from host\n"));
  RunSpec s = Shell(
      "cat /mnt/host/in.txt; echo out > /mnt/rw/out.txt; "
      "(echo x > /mnt/host/x) 2>/dev/null || echo ro-ok; "
      "echo t > /scratch/t && grep -c /scratch /proc/mounts");
  auto rw = MakeTempDir();
  s.binds = {BindMount{host.path(), "/mnt/host", true}, BindMount{rw.path(), "/mnt/rw", false}};
  s.tmpfs = {TmpfsMount{"/scratch"}};
  auto [code, out] = RunOk(s);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(out, "from host\nro-ok\n1\n");
  EXPECT_EQ(ReadFile(rw.path() / "out.txt").value_or(""), "out\n");
  // Neither the tmpfs content nor the mount points end up in the upper dir.
  EXPECT_FALSE(std::filesystem::exists(Upper("scratch")));
  EXPECT_FALSE(std::filesystem::exists(Upper("mnt")));
}

TEST_F(OciRuntimeRunnerIntegrationTest, MissingExecutableIsARuntimeError) {
  RunSpec s;
  s.args = {"/no/such/binary"};
  s.rootfs = dir_.path() / "merged";
  RecordingSink sink;
  auto r = runner_->Run(s, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("/no/such/binary"));
}

TEST_F(OciRuntimeRunnerIntegrationTest, CancelKillsTheContainerAndCleansUp) {
  std::stop_source stop;
  RunSpec s = Shell("echo started; sleep 60");
  s.cancel = stop.get_token();
  std::jthread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    stop.request_stop();
  });
  RecordingSink sink;
  auto start = std::chrono::steady_clock::now();
  auto r = runner_->Run(s, sink);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(took, std::chrono::seconds(15));
  EXPECT_EQ(sink.Text(OutputStream::kStdout), "started\n");
  // TearDown checks that runc's state is empty.
}

// Parallel stages: concurrent runs on separate overlays, one runner.
TEST_F(OciRuntimeRunnerIntegrationTest, ConcurrentRunsUseDistinctContainers) {
  std::vector<OverlayMount> mounts;
  for (int i = 0; i < 3; ++i) {
    auto base = dir_.path() / fmt::format("c{}", i);
    for (const char* d : {"upper", "work", "merged"}) std::filesystem::create_directories(base / d);
    ASSERT_OK_AND_ASSIGN(
        auto m,
        OverlayMount::Mount(
            {{busybox_->path() / "rootfs"}, base / "upper", base / "work", base / "merged"}));
    mounts.push_back(std::move(m));
  }
  std::vector<std::pair<int, std::string>> results(3);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        RunSpec s = Shell(fmt::format("echo run{} > /mine; cat /mine", i));
        s.rootfs = mounts[i].mountpoint();
        results[i] = RunOk(s);
      });
    }
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].first, 0);
    EXPECT_EQ(results[i].second, fmt::format("run{}\n", i));
  }
}

}  // namespace
}  // namespace strata::builder
