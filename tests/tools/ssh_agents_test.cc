#include "tools/strata/ssh_agents.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "tests/testing/test_util.h"
#include "tools/strata/subprocess.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(SshSpecTest, Forms) {
  ASSERT_OK_AND_ASSIGN(auto d, ParseSshSpec("default"));
  EXPECT_EQ(d.id, "default");
  EXPECT_TRUE(d.paths.empty());
  ASSERT_OK_AND_ASSIGN(auto s, ParseSshSpec("deploy=/run/agent.sock"));
  EXPECT_EQ(s.id, "deploy");
  EXPECT_THAT(s.paths, ElementsAre(fs::path("/run/agent.sock")));
  ASSERT_OK_AND_ASSIGN(auto k, ParseSshSpec("keys=/k/a,/k/b"));
  EXPECT_THAT(k.paths, ElementsAre(fs::path("/k/a"), fs::path("/k/b")));
}

TEST(SshSpecTest, BadFormsNameTheFlag) {
  EXPECT_THAT(ParseSshSpec(""), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseSshSpec("=/x"), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("=/x")));
  EXPECT_THAT(ParseSshSpec("id=/a,,/b"), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(SshAgentsTest, DefaultUsesSshAuthSockAndNeedsIt) {
  ASSERT_OK_AND_ASSIGN(auto a, SshAgents::Start({{"default", {}}}, "/tmp/agent.sock"));
  EXPECT_EQ(a.sockets().at("default"), fs::path("/tmp/agent.sock"));
  EXPECT_THAT(SshAgents::Start({{"default", {}}}, nullptr),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("SSH_AUTH_SOCK is not set")));
  EXPECT_THAT(SshAgents::Start({{"a", {}}, {"a", {}}}, "/s"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("twice")));
}

TEST(SshAgentsTest, PathsMustBeASocketOrKeyFiles) {
  auto dir = testing::MakeTempDir();
  EXPECT_THAT(SshAgents::Start({{"x", {dir.path() / "missing"}}}, nullptr),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("does not exist")));
  EXPECT_THAT(SshAgents::Start({{"x", {dir.path()}}}, nullptr),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("neither")));
  // A socket is forwarded as it is; mixed with a key it is refused.
  fs::path sock = dir.path() / "agent";
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_OK_AND_ASSIGN(auto a, SshAgents::Start({{"x", {sock}}}, nullptr));
  EXPECT_EQ(a.sockets().at("x"), sock);
  testing::WriteTestFile(dir.path() / "key", "not a key");
  EXPECT_THAT(SshAgents::Start({{"x", {sock, dir.path() / "key"}}}, nullptr),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("one agent socket")));
}

TEST(SshAgentsTest, ABadKeyFileIsRefusedWithoutItsContent) {
  if (!testing::HaveTool("ssh-agent") || !testing::HaveTool("ssh-add")) {
    GTEST_SKIP() << "openssh-client is not installed";
  }
  auto dir = testing::MakeTempDir();
  testing::WriteTestFile(dir.path() / "key", "SECRET-NOT-A-KEY\n", 0600);
  auto r = SshAgents::Start({{"k", {dir.path() / "key"}}}, nullptr);
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("ssh-add refused")));
  EXPECT_THAT(r.error().message(), Not(HasSubstr("SECRET-NOT-A-KEY")));
}

TEST(SubprocessTest, EnvironmentIsExactlyTheGivenOne) {
  ProcessOptions po;
  po.env = {"ONLY=this"};
  ASSERT_OK_AND_ASSIGN(auto r, RunProcess({"env"}, po));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "ONLY=this\n");
}

TEST(SubprocessTest, TimeoutKillsAndIsAnError) {
  ProcessOptions po;
  po.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto r = RunProcess({"sleep", "30"}, po);
  EXPECT_THAT(r, StatusIs(ErrorCode::kUnavailable, HasSubstr("did not finish")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(SubprocessTest, ExitCodeAndStderrAreValues) {
  ProcessOptions po;
  ASSERT_OK_AND_ASSIGN(auto r, RunProcess({"sh", "-c", "echo oops >&2; exit 3"}, po));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "oops\n");
}

}  // namespace
}  // namespace strata::cli
