// The RUN sandbox seen from inside: a static probe (testdata/sandbox/probe.c,
// compiled here with gcc -static) runs in a RUN step of a real `strata build`
// and reports seccomp mode, capabilities, file descriptors, raw sockets,
// whether it reaches a listener the test holds on the host's 127.0.0.1,
// masked and read-only paths. The same probe then runs under `podman run`
// with Docker's default capability set, and the answers are compared.
// Needs root, runc, slirp4netns, gcc (podman for the comparison); skipped
// otherwise. Every process and listener a test starts is stopped by it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "oci/util/unique_fd.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::HaveTool;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

// "KEY: VALUE" of every "probe KEY: VALUE" line (a "#N " progress prefix is
// skipped).
std::map<std::string, std::string> ProbeAnswers(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto at = line.find("probe ");
    if (at == std::string::npos) continue;
    std::string rest = line.substr(at + 6);
    auto colon = rest.find(": ");
    if (colon == std::string::npos) continue;
    out[rest.substr(0, colon)] = rest.substr(colon + 2);
  }
  return out;
}

class SandboxProbeIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    for (const char* tool : {"runc", "slirp4netns", "gcc"}) {
      if (!HaveTool(tool)) GTEST_SKIP() << tool << " not installed";
    }
    // podman wants a lowercase path for oci: references.
    static int counter = 0;
    dir_ = fs::path("/tmp") /
           fmt::format("strata-probe-{}-{}-{}", ::getpid(), ++counter,
                       std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(dir_);
    ASSERT_OK(MakeDirs(dir_ / "ctx"));
    root_ = dir_ / "store";
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                        Q(dir_ / "rootfs"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("import " + Q(dir_ / "rootfs") + " busybox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = RunCommand("gcc -static -O2 -o " + Q(dir_ / "ctx" / "probe") + " " +
                   Q(testing::TestData("sandbox/probe.c")));
    ASSERT_EQ(r.exit_code, 0) << r.output;

    // The host service the probe must not reach: a listener on 127.0.0.1.
    listener_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener_.valid());
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(listener_.get(), 16), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    port_ = ntohs(sa.sin_port);
  }

  void TearDown() override {
    listener_.Reset();
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  testing::CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  // Builds FROM busybox + the probe with `run` as the RUN line (PORT is
  // replaced by the listener's port); returns exit code and output.
  testing::CommandResult Build(const std::string& run, const std::string& flags = "--no-cache") {
    std::string line = run;
    if (auto p = line.find("PORT"); p != std::string::npos) {
      line.replace(p, 4, std::to_string(port_));
    }
    testing::WriteTestFile(dir_ / "ctx" / "Dockerfile",
                           "FROM busybox:latest\nCOPY probe /probe\n" + line + "\n");
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) +
                      " build --progress plain -t probe " + flags + " " + Q(dir_ / "ctx"));
  }

  fs::path dir_;
  fs::path root_;
  UniqueFd listener_;
  int port_ = 0;
};

// Docker's default capabilities (0xa80425fb) without CAP_NET_RAW (bit 13).
constexpr const char* kDockerCapsWithoutNetRaw = "00000000a80405fb";

TEST_F(SandboxProbeIntegrationTest, DefaultSandboxMatchesDockerAndPodman) {
  auto r = Build("RUN /probe PORT");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ours = ProbeAnswers(r.output);
  ASSERT_FALSE(ours.empty()) << r.output;

  // Seccomp filter mode, no new privileges, Docker's caps without NET_RAW.
  EXPECT_EQ(ours["Seccomp"], "2");
  EXPECT_EQ(ours["NoNewPrivs"], "1");
  EXPECT_EQ(ours["CapEff"], kDockerCapsWithoutNetRaw);
  EXPECT_EQ(ours["CapBnd"], kDockerCapsWithoutNetRaw);
  // Only stdio is inherited.
  EXPECT_EQ(ours["fds"], "0 1 2 ");
  // No raw or packet sockets; seccomp refuses AF_VSOCK and new namespaces.
  EXPECT_EQ(ours["socket raw"], "EPERM");
  EXPECT_EQ(ours["socket packet"], "EPERM");
  EXPECT_EQ(ours["socket tcp"], "ok");
  EXPECT_EQ(ours["socket vsock"], "EPERM");
  EXPECT_EQ(ours["unshare user"], "EPERM");
  EXPECT_EQ(ours["unshare net"], "EPERM");
  EXPECT_EQ(ours["mount"], "EPERM");
  // The host's loopback is unreachable, directly and through the NAT's
  // gateway address.
  EXPECT_NE(ours["connect 127.0.0.1"], "connected");
  EXPECT_NE(ours["connect 10.0.2.2"], "connected");
  // Masked and read-only paths (a path this kernel lacks reads ENOENT in
  // both runtimes and is compared below).
  for (const char* p : {"/proc/keys", "/proc/timer_list", "/sys/firmware"}) {
    EXPECT_EQ(ours[fmt::format("masked {}", p)], "empty") << p;
  }
  for (const char* p : {"/proc/sys", "/proc/irq", "/proc/bus", "/sys"}) {
    EXPECT_EQ(ours[fmt::format("readonly {}", p)], "ro") << p;
  }
  for (const char* p : {"/proc/kcore"}) {
    EXPECT_THAT(ours[fmt::format("masked {}", p)], ::testing::AnyOf("empty", "ENOENT")) << p;
  }
  EXPECT_THAT(ours["readonly /proc/sysrq-trigger"], ::testing::AnyOf("ro", "ENOENT"));

  // The same probe under podman, configured as docker: Docker's default caps
  // without NET_RAW, no-new-privileges, its own NAT network (slirp4netns).
  if (!HaveTool("podman")) GTEST_SKIP() << "podman not installed: no comparison";
  auto p = RunCommand(fmt::format(
      "podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
      "--network slirp4netns --cap-drop all "
      "--cap-add CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,SETGID,SETUID,SETFCAP,SETPCAP,"
      "NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE --security-opt no-new-privileges "
      "oci:{}:probe:latest /probe {} 2>&1",
      root_.string(), port_));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  auto podman = ProbeAnswers(p.output);
  ASSERT_FALSE(podman.empty()) << p.output;
  // podman's default seccomp profile (containers-common) deliberately allows
  // what Docker's refuses: AF_VSOCK sockets and unshare(CLONE_NEWUSER) (then
  // a new net namespace and mounts inside the new user namespace). Those
  // answers are Docker's above; everything else must be the same.
  for (const char* k : {"socket vsock", "unshare user", "unshare net", "mount"}) {
    ours.erase(k);
    podman.erase(k);
  }
  EXPECT_EQ(ours, podman) << "strata:\n" << r.output << "\npodman:\n" << p.output;
}

TEST_F(SandboxProbeIntegrationTest, HostNetworkOnlyWithEntitlement) {
  // Without --allow network.host: an error naming the flag (and the line).
  auto r = Build("RUN /probe PORT", "--no-cache --network host");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--allow network.host"));
  r = Build("RUN --network=host /probe PORT");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:3:"));
  EXPECT_THAT(r.output, HasSubstr("--allow network.host"));

  // With it, the listener is reachable: the default-network check above is
  // not vacuous.
  r = Build("RUN /probe PORT", "--no-cache --network host --allow network.host");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ProbeAnswers(r.output)["connect 127.0.0.1"], "connected");
  r = Build("RUN --network=host /probe PORT", "--no-cache --allow network.host");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ProbeAnswers(r.output)["connect 127.0.0.1"], "connected");

  auto bad = Build("RUN /probe PORT", "--allow network.everything");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("--allow network.everything"));
}

TEST_F(SandboxProbeIntegrationTest, InsecureOnlyWithEntitlement) {
  auto r = Build("RUN --security=insecure /probe PORT");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:3:"));
  EXPECT_THAT(r.output, HasSubstr("--allow security.insecure"));

  r = Build("RUN --security=insecure /probe PORT", "--no-cache --allow security.insecure");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto a = ProbeAnswers(r.output);
  EXPECT_EQ(a["Seccomp"], "0");
  EXPECT_EQ(a["socket raw"], "ok");
  EXPECT_EQ(a["readonly /proc/sys"], "rw");
  EXPECT_NE(a["CapEff"], kDockerCapsWithoutNetRaw);
  // Still the private network.
  EXPECT_NE(a["connect 127.0.0.1"], "connected");
}

TEST_F(SandboxProbeIntegrationTest, NetworkModeIsPartOfTheCacheKey) {
  auto r = Build("RUN /probe PORT");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Build("RUN /probe PORT", "");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("#3 CACHED"));
  r = Build("RUN /probe PORT", "--network none");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("#3 CACHED")));
  EXPECT_NE(ProbeAnswers(r.output)["connect 127.0.0.1"], "connected");
  r = Build("RUN /probe PORT", "--network host --allow network.host");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("#3 CACHED")));
}

}  // namespace
}  // namespace strata
