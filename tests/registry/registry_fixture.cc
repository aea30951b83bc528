#include "tests/registry/registry_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "oci/media_types.h"
#include "tests/testing/test_util.h"

extern char** environ;

namespace strata::registry::testing {
namespace {

using strata::testing::RunCommand;
using strata::testing::WriteTestFile;

int ConnectLocal(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

RegistryProcess::RegistryProcess(Options opts) {
  auto dir = ScopedTempDir::Create({}, "strata-registry-");
  if (!dir) {
    error_ = dir.error().message();
    return;
  }
  dir_ = std::move(*dir);
  port_ = FreePort();
  const auto d = dir_.path();
  std::string config = fmt::format(
      "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
      "  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n"
      "  addr: 127.0.0.1:{}\n  secret: strata-test\n",
      (d / "storage").string(), port_);
  if (opts.tls) {
    auto r = RunCommand(fmt::format(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout {0}/key.pem -out {0}/cert.pem -days 2 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>&1",
        d.string()));
    if (r.exit_code != 0) {
      error_ = "openssl: " + r.output;
      return;
    }
    config +=
        fmt::format("  tls:\n    certificate: {0}/cert.pem\n    key: {0}/key.pem\n", d.string());
    std::filesystem::create_directories(certs_dir() / host());
    std::filesystem::copy_file(d / "cert.pem", certs_dir() / host() / "ca.crt");
  }
  if (!opts.user.empty()) {
    auto r = RunCommand(
        fmt::format("htpasswd -Bbn '{}' '{}' > {}/htpasswd", opts.user, opts.password, d.string()));
    if (r.exit_code != 0) {
      error_ = "htpasswd: " + r.output;
      return;
    }
    config += fmt::format("auth:\n  htpasswd:\n    realm: strata-test\n    path: {}/htpasswd\n",
                          d.string());
  }
  WriteTestFile(d / "config.yml", config);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string log = (d / "registry.log").string();
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::string cfg = (d / "config.yml").string();
  const char* argv[] = {"/usr/bin/docker-registry", "serve", cfg.c_str(), nullptr};
  int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    error_ = std::string("spawn docker-registry: ") + strerror(rc);
    return;
  }
  for (int i = 0; i < 150; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "docker-registry exited: " + ReadFile(log).value_or("");
      return;
    }
    int fd = ConnectLocal(port_);
    if (fd >= 0) {
      close(fd);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  error_ = "docker-registry did not start listening: " + ReadFile(log).value_or("");
}

RegistryProcess::~RegistryProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

std::string ProxyRequest::Header(std::string_view name) const {
  size_t pos = 0;
  while (pos < raw_headers.size()) {
    size_t eol = raw_headers.find("\r\n", pos);
    if (eol == std::string::npos) eol = raw_headers.size();
    std::string_view line(raw_headers.data() + pos, eol - pos);
    size_t colon = line.find(':');
    if (colon == name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
    pos = eol + 2;
  }
  return "";
}

ProxyAction ProxyAction::Respond(int status, std::string body,
                                 std::vector<std::pair<std::string, std::string>> headers) {
  ProxyAction a;
  a.kind = Kind::kRespond;
  a.response = fmt::format("HTTP/1.1 {} Status\r\nContent-Length: {}\r\nConnection: close\r\n",
                           status, body.size());
  for (const auto& [k, v] : headers) a.response += k + ": " + v + "\r\n";
  a.response += "\r\n" + body;
  return a;
}

FaultProxy::FaultProxy(int upstream_port, Hook hook)
    : upstream_port_(upstream_port), hook_(std::move(hook)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(listen_fd_, 64);
  acceptor_ = std::thread([this] { Serve(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
  close(listen_fd_);
}

std::vector<ProxyRequest> FaultProxy::requests() {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FaultProxy::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    std::lock_guard<std::mutex> l(mu_);
    workers_.emplace_back([this, fd] { Handle(fd); });
  }
}

void FaultProxy::Handle(int fd) {
  std::string in;
  char buf[65536];
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos && in.size() < (1 << 20)) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (in.empty() && buf[0] == 0x16) break;  // a TLS handshake: not for us
    in.append(buf, static_cast<size_t>(n));
    header_end = in.find("\r\n\r\n");
  }
  if (header_end == std::string::npos) {
    close(fd);
    return;
  }
  ProxyRequest req;
  std::string head = in.substr(0, header_end + 2);
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  req.method = line.substr(0, line.find(' '));
  req.target = line.substr(req.method.size() + 1, line.rfind(' ') - req.method.size() - 1);
  req.raw_headers = head.substr(eol + 2);
  size_t content_length = 0;
  if (auto cl = req.Header("Content-Length"); !cl.empty()) content_length = std::stoull(cl);
  std::string body = in.substr(header_end + 4);
  while (body.size() < content_length) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    body.append(buf, static_cast<size_t>(n));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back(req);
  }
  ProxyAction action = hook_(req);
  if (action.kind == ProxyAction::Kind::kRespond) {
    SendAll(fd, action.response);
    close(fd);
    return;
  }
  int up = ConnectLocal(upstream_port_);
  if (up < 0) {
    close(fd);
    return;
  }
  std::string out = line + "\r\n";
  size_t pos = 0;
  while (pos < req.raw_headers.size()) {
    size_t e = req.raw_headers.find("\r\n", pos);
    std::string h = req.raw_headers.substr(pos, e - pos);
    pos = e + 2;
    if (h.empty()) continue;
    if (strncasecmp(h.c_str(), "connection:", 11) == 0) continue;
    if (action.strip_authorization && strncasecmp(h.c_str(), "authorization:", 14) == 0) continue;
    out += h + "\r\n";
  }
  out += "Connection: close\r\n\r\n" + body;
  if (body.size() < content_length) {
    // The client gave up mid-body: the upstream sees the same truncated
    // request and the connection closing, as it would without the proxy.
    SendAll(up, out);
    close(up);
    close(fd);
    return;
  }
  if (!SendAll(up, out)) {
    close(up);
    close(fd);
    return;
  }
  if (action.kind == ProxyAction::Kind::kForwardDropResponse) {
    // Let the upstream finish (it has applied the request once it answers),
    // then reset the client's connection without a byte of the response.
    std::string resp;
    while (resp.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(up, buf, sizeof(buf), 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(up);
    close(fd);
    return;
  }
  if (action.kind == ProxyAction::Kind::kForwardTrickle) {
    std::string resp;
    for (;;) {  // the whole upstream response (blobs in tests are small)
      ssize_t n = recv(up, buf, sizeof(buf), 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
    close(up);
    size_t he = resp.find("\r\n\r\n");
    if (he == std::string::npos || !SendAll(fd, resp.substr(0, he + 4))) {
      close(fd);
      return;
    }
    const size_t rate = std::max<size_t>(action.trickle_bytes_per_second, 1);
    const auto deadline = std::chrono::steady_clock::now() + action.trickle_max;
    for (size_t pos = he + 4; pos < resp.size() && !stop_; pos += rate) {
      if (std::chrono::steady_clock::now() >= deadline) break;
      if (!SendAll(fd, std::string_view(resp).substr(pos, rate))) break;
      // Sleep a second in small steps so the destructor never waits long,
      // and notice a client that hung up.
      for (int i = 0; i < 10 && !stop_; ++i) {
        pollfd p{fd, POLLIN | POLLRDHUP, 0};
        if (poll(&p, 1, 100) > 0) {
          char c;
          if (recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) <= 0) {
            close(fd);
            return;
          }
        }
      }
    }
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    return;
  }
  std::string resp_head;
  bool in_body = false;
  size_t body_sent = 0;
  for (;;) {
    ssize_t n = recv(up, buf, sizeof(buf), 0);
    if (n <= 0) break;
    std::string_view chunk(buf, static_cast<size_t>(n));
    if (action.kind == ProxyAction::Kind::kForwardCut) {
      if (!in_body) {
        resp_head.append(chunk);
        size_t he = resp_head.find("\r\n\r\n");
        if (he == std::string::npos) continue;
        in_body = true;
        std::string rest = resp_head.substr(he + 4);
        SendAll(fd, resp_head.substr(0, he + 4));
        size_t take = std::min(rest.size(), action.cut_after_body_bytes);
        SendAll(fd, rest.substr(0, take));
        body_sent = take;
      } else {
        size_t take = std::min(chunk.size(), action.cut_after_body_bytes - body_sent);
        SendAll(fd, chunk.substr(0, take));
        body_sent += take;
      }
      if (in_body && body_sent >= action.cut_after_body_bytes) {
        linger lg{1, 0};  // close with RST: a connection reset mid-body
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
      }
      continue;
    }
    if (!SendAll(fd, chunk)) break;
  }
  close(up);
  close(fd);
}

TestImage MakeTestImage(oci::Store& store, const std::string& ref,
                        const std::vector<size_t>& layer_sizes, const std::string& architecture) {
  namespace mt = oci::media_type;
  TestImage img;
  auto tmp = strata::testing::MakeTempDir();
  nlohmann::json diff_ids = nlohmann::json::array();
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < layer_sizes.size(); ++i) {
    auto d = tmp.path() / fmt::format("l{}", i);
    auto r = RunCommand(fmt::format(
        "mkdir -p {0}/root && head -c {1} /dev/urandom > {0}/root/file{2} && "
        "tar cf {0}/layer.tar --owner=0 --group=0 -C {0}/root . && gzip -n -1 -c {0}/layer.tar > "
        "{0}/layer.tar.gz",
        d.string(), layer_sizes[i], i));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto diff = oci::DigestFile((d / "layer.tar").string());
    EXPECT_TRUE(diff.has_value());
    diff_ids.push_back(diff->ToString());
    auto bytes = ReadFile(d / "layer.tar.gz");
    EXPECT_TRUE(bytes.has_value());
    auto desc = store.Put(*bytes, std::string(mt::kLayerTarGzip));
    EXPECT_TRUE(desc.has_value());
    img.layers.push_back(*desc);
    layers.push_back({{"mediaType", mt::kLayerTarGzip},
                      {"digest", desc->digest.ToString()},
                      {"size", desc->size}});
  }
  nlohmann::json config = {{"architecture", architecture},
                           {"os", "linux"},
                           {"config", {{"Env", {"PATH=/bin"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  auto cdesc = store.Put(config.dump(), std::string(mt::kImageConfig));
  EXPECT_TRUE(cdesc.has_value());
  img.config = *cdesc;
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", mt::kImageManifest},
                             {"config",
                              {{"mediaType", mt::kImageConfig},
                               {"digest", cdesc->digest.ToString()},
                               {"size", cdesc->size}}},
                             {"layers", layers}};
  auto mdesc = store.Put(manifest.dump(), std::string(mt::kImageManifest));
  EXPECT_TRUE(mdesc.has_value());
  img.manifest = *mdesc;
  if (!ref.empty()) {
    auto r = oci::Reference::Parse(ref);
    EXPECT_TRUE(r.has_value());
    EXPECT_TRUE(store.Tag(*r, *mdesc).has_value());
  }
  return img;
}

}  // namespace strata::registry::testing
