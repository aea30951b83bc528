#include "builder/engine/ssh_relay.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

Result<sockaddr_un> UnixAddress(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& p = path.native();
  if (p.size() >= sizeof(addr.sun_path)) {
    return MakeError(ErrorCode::kInvalidArgument, "socket path {} is longer than {} bytes", p,
                     sizeof(addr.sun_path) - 1);
  }
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  return addr;
}

// send(2) without SIGPIPE: a peer that went away ends the relay, not strata.
bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<UniqueFd> ConnectUnix(const fs::path& path) {
  STRATA_ASSIGN_OR_RETURN(auto addr, UnixAddress(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(errno, "socket");
  UniqueFd sock(fd);
  while (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINTR) return ErrnoError(errno, fmt::format("connect {}", path.string()));
  }
  return sock;
}

Result<std::unique_ptr<SshRelay>> SshRelay::Start(const fs::path& socket_path,
                                                  const fs::path& upstream, uid_t uid, gid_t gid,
                                                  mode_t mode) {
  STRATA_ASSIGN_OR_RETURN(auto addr, UnixAddress(socket_path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(errno, "socket");
  UniqueFd listen(fd);
  if (::bind(listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError(errno, fmt::format("bind {}", socket_path.string()));
  }
  // Ownership is only strata's to give as root (a rootless build's RUN runs
  // as the same user anyway).
  // Without root, the default owner (0:0) means strata's own user.
  const bool own =
      ::geteuid() != 0 && ((uid == 0 && gid == 0) || (uid == ::geteuid() && gid == ::getegid()));
  if (!own && ::chown(socket_path.c_str(), uid, gid) != 0) {
    return ErrnoError(errno, fmt::format("chown {}", socket_path.string()));
  }
  if (::chmod(socket_path.c_str(), mode) != 0) {
    return ErrnoError(errno, fmt::format("chmod {}", socket_path.string()));
  }
  if (::listen(listen.get(), kMaxConnections) != 0) return ErrnoError(errno, "listen");
  int ev = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ev < 0) return ErrnoError(errno, "eventfd");
  std::unique_ptr<SshRelay> relay(new SshRelay(std::move(listen), UniqueFd(ev), upstream));
  relay->acceptor_ = std::thread([r = relay.get()] { r->AcceptLoop(); });
  return relay;
}

SshRelay::~SshRelay() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  if (acceptor_.joinable()) acceptor_.join();
  std::list<PumpThread> pumps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& p : pumps) p.thread.join();
}

void SshRelay::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{stop_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
    // At the bound, only the stop descriptor is watched (with a timeout to
    // see connections end).
    const bool full = active_.load() >= kMaxConnections;
    int n = ::poll(fds, full ? 1 : 2, full ? 50 : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[0].revents & POLLIN)) return;
    if (full || !(fds[1].revents & POLLIN)) continue;
    int c = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ++active_;
    ++connections_;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = pumps_.begin(); it != pumps_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = pumps_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    pumps_.push_back({std::thread([this, fd = c, done] { Pump(UniqueFd(fd), *done); }), done});
  }
}

void SshRelay::Pump(UniqueFd client, std::atomic<bool>& done) {
  auto up = ConnectUnix(upstream_);
  if (up) {
    char buf[16384];
    pollfd fds[3] = {{stop_.get(), POLLIN, 0}, {client.get(), POLLIN, 0}, {up->get(), POLLIN, 0}};
    bool open = true;
    while (open) {
      int n = ::poll(fds, 3, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (fds[0].revents & POLLIN)) break;
      for (int i = 1; i <= 2 && open; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0 || !SendAll(fds[i == 1 ? 2 : 1].fd, buf, static_cast<size_t>(got))) {
          open = false;
        }
      }
    }
  }
  --active_;
  done = true;
}

}  // namespace strata::builder
