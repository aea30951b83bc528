// The default RUN network with the real slirp4netns: a private namespace
// that reaches out through the NAT but not the host's loopback, a helper that
// is always stopped, and start failures that name the helper. Needs root,
// slirp4netns, nsenter and bash; skipped otherwise.
#include "builder/runtime/run_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "builder/runtime/oci_runtime_runner.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::HaveTool;
using ::strata::testing::MakeTempDir;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;

bool MountedAt(const std::filesystem::path& p) {
  auto info = ReadFile("/proc/self/mountinfo");
  return info && info->find(fmt::format(" {} ", p.string())) != std::string::npos;
}

class RunNetworkIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    for (const char* tool : {"slirp4netns", "nsenter", "bash"}) {
      if (!HaveTool(tool)) GTEST_SKIP() << tool << " not installed";
    }
    auto helper = FindExecutable(kNatHelper, std::getenv("PATH"));
    ASSERT_OK(helper);
    helper_ = *helper;
  }
  std::filesystem::path helper_;
};

// A listener on the host's 127.0.0.1; returns its port.
int Listen(UniqueFd& fd) {
  fd.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd.get(), 8) != 0) {
    return -1;
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

TEST_F(RunNetworkIntegrationTest, PrivateNamespaceHasNatButNoHostLoopback) {
  auto dir = MakeTempDir();
  UniqueFd listener;
  int port = Listen(listener);
  ASSERT_GT(port, 0);
  auto connect = [&](const std::string& netns, const std::string& addr) {
    std::string enter = netns.empty() ? "" : "nsenter --net=" + netns + " ";
    return RunCommand(
        fmt::format("{}timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}' 2>&1", enter, addr, port));
  };
  // From the host the listener answers (so the checks below can fail).
  ASSERT_EQ(connect("", "127.0.0.1").exit_code, 0);

  ASSERT_OK_AND_ASSIGN(PrivateNetwork net, PrivateNetwork::Setup(dir.path(), helper_));
  const std::string ns = net.netns_path().string();
  pid_t pid = net.nat_pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(MountedAt(net.netns_path()));

  auto addr = RunCommand("nsenter --net=" + ns + " ip -4 addr show 2>&1");
  EXPECT_THAT(addr.output, HasSubstr("inet 10.0.2.100/24"));
  EXPECT_THAT(addr.output, HasSubstr("inet 127.0.0.1/8"));  // lo is up
  EXPECT_NE(connect(ns, "127.0.0.1").exit_code, 0);
  EXPECT_NE(connect(ns, "10.0.2.2").exit_code, 0);  // the NAT's host alias

  ASSERT_OK(net.Teardown());
  EXPECT_EQ(::kill(pid, 0), -1);  // stopped and reaped
  EXPECT_FALSE(MountedAt(std::filesystem::path(ns)));
  EXPECT_FALSE(std::filesystem::exists(ns));
}

TEST_F(RunNetworkIntegrationTest, DestructorStopsTheHelper) {
  auto dir = MakeTempDir();
  pid_t pid;
  std::filesystem::path ns;
  {
    ASSERT_OK_AND_ASSIGN(PrivateNetwork net, PrivateNetwork::Setup(dir.path(), helper_));
    pid = net.nat_pid();
    ns = net.netns_path();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_FALSE(MountedAt(ns));
}

TEST_F(RunNetworkIntegrationTest, HelperThatFailsIsAnErrorNamingIt) {
  auto dir = MakeTempDir();
  testing::WriteTestFile(dir.path() / "fake-nat",
                         "#!/bin/sh\necho 'cannot open tap device' >&2\nexit 1\n", 0755);
  auto net = PrivateNetwork::Setup(dir.path(), dir.path() / "fake-nat");
  ASSERT_FALSE(net.has_value());
  EXPECT_EQ(net.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(net.error().message(), HasSubstr("fake-nat did not start"));
  EXPECT_THAT(net.error().message(), HasSubstr("cannot open tap device"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "netns"));  // namespace released
}

TEST_F(RunNetworkIntegrationTest, HelperThatNeverGetsReadyIsKilledWithinBounds) {
  auto dir = MakeTempDir();
  testing::WriteTestFile(dir.path() / "stuck-nat",
                         "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 60\n", 0755);
  ASSERT_OK_AND_ASSIGN(NetworkNamespace ns, NetworkNamespace::Create(dir.path() / "netns"));
  NatNetworkOptions o;
  o.helper = dir.path() / "stuck-nat";
  o.netns = ns.path();
  o.log = dir.path() / "nat.log";
  o.start_timeout = std::chrono::milliseconds(300);
  o.stop_timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto nat = NatNetwork::Start(o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(nat.has_value());
  EXPECT_THAT(nat.error().message(), HasSubstr("stuck-nat did not become ready within 300 ms"));
  EXPECT_LT(took, std::chrono::seconds(3));
  auto pid = ReadFile(dir.path() / "pid");
  ASSERT_OK(pid);
  EXPECT_EQ(::kill(std::atoi(pid->c_str()), 0), -1);  // killed and reaped
}

TEST_F(RunNetworkIntegrationTest, MissingHelperIsNotFoundNamingIt) {
  OciRuntimeRunnerOptions o;
  auto dir = MakeTempDir();
  o.state_dir = dir.path() / "runtime";
  o.nat_helper = "slirp4netns-not-installed";
  OciRuntimeRunner runner(o);
  RunSpec spec;
  spec.args = {"/bin/true"};
  spec.rootfs = dir.path();
  RecordingSink sink;
  auto r = runner.Run(spec, sink);
  if (!r.has_value() && r.error().code() == ErrorCode::kNotFound &&
      r.error().message().find("runtime") != std::string::npos) {
    GTEST_SKIP() << "no OCI runtime";
  }
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("slirp4netns-not-installed"));
  EXPECT_THAT(r.error().message(), HasSubstr("--network none"));
}

}  // namespace
}  // namespace strata::builder
