#include "builder/engine/ssh_relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::StatusIs;
using ::testing::HasSubstr;

// A unix socket server answering every line with "echo:" + the bytes, one
// thread per test, stopped by the destructor.
class EchoAgent {
 public:
  explicit EchoAgent(const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    listen_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_.get(), 8), 0);
    thread_ = std::thread([this] {
      for (;;) {
        pollfd p{listen_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
          if (stop_) return;
          continue;
        }
        UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        char buf[256];
        ssize_t n = ::read(c.get(), buf, sizeof(buf));
        if (n > 0) {
          std::string reply = "echo:" + std::string(buf, static_cast<size_t>(n));
          (void)!::write(c.get(), reply.data(), reply.size());
        }
      }
    });
  }
  ~EchoAgent() {
    stop_ = true;
    thread_.join();
  }

 private:
  UniqueFd listen_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string Ask(const fs::path& sock, const std::string& what) {
  auto fd = ConnectUnix(sock);
  if (!fd) return "connect failed: " + fd.error().message();
  EXPECT_EQ(::write(fd->get(), what.data(), what.size()), static_cast<ssize_t>(what.size()));
  std::string got;
  char buf[256];
  for (;;) {
    pollfd p{fd->get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST(SshRelayTest, RelaysEveryConnectionToTheUpstreamAgent) {
  auto dir = testing::MakeTempDir();
  EchoAgent agent(dir.path() / "upstream");
  auto relay = SshRelay::Start(dir.path() / "relay", dir.path() / "upstream", ::geteuid(),
                               ::getegid(), 0600);
  ASSERT_OK(relay);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Ask(dir.path() / "relay", "ping"), "echo:ping");
  EXPECT_EQ((*relay)->connections(), 3);
  struct stat st;
  ASSERT_EQ(::stat((dir.path() / "relay").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(SshRelayTest, ModeIsApplied) {
  auto dir = testing::MakeTempDir();
  auto relay =
      SshRelay::Start(dir.path() / "relay", dir.path() / "none", ::geteuid(), ::getegid(), 0660);
  ASSERT_OK(relay);
  struct stat st;
  ASSERT_EQ(::stat((dir.path() / "relay").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST(SshRelayTest, DeadUpstreamClosesTheClientNotTheRelay) {
  auto dir = testing::MakeTempDir();
  auto relay =
      SshRelay::Start(dir.path() / "relay", dir.path() / "missing", ::geteuid(), ::getegid(), 0600);
  ASSERT_OK(relay);
  EXPECT_EQ(Ask(dir.path() / "relay", "ping"), "");
  // A later agent is reached.
  EchoAgent agent(dir.path() / "missing");
  EXPECT_EQ(Ask(dir.path() / "relay", "again"), "echo:again");
}

TEST(SshRelayTest, StopsWithOpenConnections) {
  auto dir = testing::MakeTempDir();
  EchoAgent agent(dir.path() / "upstream");
  auto relay = SshRelay::Start(dir.path() / "relay", dir.path() / "upstream", ::geteuid(),
                               ::getegid(), 0600);
  ASSERT_OK(relay);
  auto held = ConnectUnix(dir.path() / "relay");  // never writes
  ASSERT_OK(held);
  relay->reset();  // joins every thread; a hang fails the test by timeout
  SUCCEED();
}

TEST(SshRelayTest, RefusesAPathTooLongForASocket) {
  auto dir = testing::MakeTempDir();
  auto r = SshRelay::Start(dir.path() / std::string(120, 'x'), dir.path() / "u", ::geteuid(),
                           ::getegid(), 0600);
  EXPECT_THAT(r, StatusIs(ErrorCode::kInvalidArgument, HasSubstr("longer than")));
}

}  // namespace
}  // namespace strata::builder
