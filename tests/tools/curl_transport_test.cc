// CurlTransport against a tiny HTTP/1.1 server on 127.0.0.1 in this process
// (one request per connection): what goes on the wire, how bodies stream in
// both directions, and how failures are classified. No external network.
#include "tools/curl/curl_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

using namespace std::chrono_literals;

struct Received {
  std::string head;  // request line and headers
  std::string body;
  bool HasHeader(const std::string& line) const {
    return head.find(line + "\r\n") != std::string::npos;
  }
};

// Serves each connection with `respond(request)`: it writes the raw response
// to the socket itself (so it can trickle or cut it).
class LoopbackServer {
 public:
  using Respond = std::function<void(int fd, const Received&)>;
  explicit LoopbackServer(Respond respond) : respond_(std::move(respond)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(listen(fd_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  std::vector<Received> received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }
  static bool Send(int fd, std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  static std::string Reply(int status, std::string_view body,
                           const std::string& extra_headers = "") {
    return fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}",
                       status, body.size(), extra_headers, body);
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      Received r;
      std::string in;
      char buf[65536];
      size_t end = std::string::npos;
      while (end == std::string::npos) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        if (in.empty() && buf[0] == 0x16) break;  // a TLS handshake: not for us
        in.append(buf, static_cast<size_t>(n));
        end = in.find("\r\n\r\n");
      }
      if (end != std::string::npos) {
        r.head = in.substr(0, end + 2);
        r.body = in.substr(end + 4);
        size_t want = 0;
        if (size_t p = r.head.find("Content-Length: "); p != std::string::npos)
          want = std::stoul(r.head.substr(p + 16));
        while (r.body.size() < want) {
          ssize_t n = recv(c, buf, sizeof(buf), 0);
          if (n <= 0) break;
          r.body.append(buf, static_cast<size_t>(n));
        }
        {
          std::lock_guard<std::mutex> l(mu_);
          received_.push_back(r);
        }
        respond_(c, r);
      }
      close(c);
    }
  }

  Respond respond_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> received_;
};

CurlTransport Plain() { return CurlTransport(CurlTransportOptions{}); }

TEST(CurlTransportTest, StreamsA2xxBodyToOnBodyAfterReportingTheStatus) {
  LoopbackServer server([](int fd, const Received&) {
    LoopbackServer::Send(fd, LoopbackServer::Reply(206, "hello", "Docker-Content-Digest: x\r\n"));
  });
  auto t = Plain();
  Request req;
  req.url = server.Url("/v2/app/blobs/sha256:1");
  req.SetHeader("Range", "bytes=3-");
  std::vector<std::string> events;
  req.on_status = [&](int status) -> Status {
    events.push_back(fmt::format("status {}", status));
    return OkStatus();
  };
  req.on_body = [&](std::string_view chunk) -> Status {
    events.push_back(std::string(chunk));
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(Response resp, t.RoundTrip(req));
  EXPECT_EQ(resp.status, 206);
  EXPECT_EQ(resp.streamed_bytes, 5);
  EXPECT_EQ(resp.body, "");
  EXPECT_EQ(resp.GetHeader("docker-content-digest"), "x");
  EXPECT_EQ(events, (std::vector<std::string>{"status 206", "hello"}));
  auto got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].head.starts_with("GET /v2/app/blobs/sha256:1 HTTP/1.1\r\n")) << got[0].head;
  EXPECT_TRUE(got[0].HasHeader("Range: bytes=3-")) << got[0].head;
  EXPECT_TRUE(got[0].HasHeader("User-Agent: strata/0.1")) << got[0].head;
}

TEST(CurlTransportTest, CollectsAnErrorBodyInsteadOfStreamingIt) {
  const std::string json = R"({"errors":[{"code":"BLOB_UNKNOWN"}]})";
  LoopbackServer server(
      [&](int fd, const Received&) { LoopbackServer::Send(fd, LoopbackServer::Reply(404, json)); });
  auto t = Plain();
  Request req;
  req.url = server.Url("/v2/app/blobs/sha256:1");
  bool streamed = false;
  req.on_body = [&](std::string_view) -> Status {
    streamed = true;
    return OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(Response resp, t.RoundTrip(req));
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(resp.body, json);
  EXPECT_FALSE(streamed);
}

TEST(CurlTransportTest, RequestBodyStreamsFromOpenBodyWithItsLength) {
  LoopbackServer server(
      [](int fd, const Received&) { LoopbackServer::Send(fd, LoopbackServer::Reply(201, "")); });
  auto t = Plain();
  const std::string payload(100000, 'p');
  Request req;
  req.method = "PUT";
  req.url = server.Url("/v2/app/blobs/uploads/u1?_state=x&digest=sha256%3Aab");
  req.body_size = static_cast<int64_t>(payload.size());
  req.open_body = [&]() -> Result<BodyReader> {
    auto pos = std::make_shared<size_t>(0);
    return BodyReader([&, pos](char* buf, size_t n) -> Result<size_t> {
      size_t k = std::min(n, payload.size() - *pos);
      std::memcpy(buf, payload.data() + *pos, k);
      *pos += k;
      return k;
    });
  };
  ASSERT_OK_AND_ASSIGN(Response resp, t.RoundTrip(req));
  EXPECT_EQ(resp.status, 201);
  auto got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].head.starts_with("PUT /v2/app/blobs/uploads/u1?_state=x&digest=sha256%3Aab"));
  EXPECT_TRUE(got[0].HasHeader("Content-Length: 100000")) << got[0].head;
  EXPECT_TRUE(got[0].HasHeader("Content-Type: application/octet-stream")) << got[0].head;
  EXPECT_FALSE(got[0].HasHeader("Expect: 100-continue")) << got[0].head;
  EXPECT_EQ(got[0].body, payload);
}

TEST(CurlTransportTest, RedirectsAreLeftToTheCaller) {
  LoopbackServer server([](int fd, const Received&) {
    LoopbackServer::Send(fd, LoopbackServer::Reply(307, "", "Location: /elsewhere\r\n"));
  });
  auto t = Plain();
  Request req;
  req.url = server.Url("/v2/app/blobs/sha256:1");
  ASSERT_OK_AND_ASSIGN(Response resp, t.RoundTrip(req));
  EXPECT_EQ(resp.status, 307);
  EXPECT_EQ(resp.GetHeader("Location"), "/elsewhere");
  EXPECT_EQ(server.received().size(), 1u);
}

TEST(CurlTransportTest, ErrorFromOnBodyStopsTheTransferAndIsReturned) {
  LoopbackServer server([](int fd, const Received&) {
    LoopbackServer::Send(fd, LoopbackServer::Reply(200, std::string(1 << 20, 'b')));
  });
  auto t = Plain();
  Request req;
  req.url = server.Url("/blob");
  req.on_body = [](std::string_view) -> Status {
    return MakeError(ErrorCode::kFailedPrecondition, "size mismatch");
  };
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().message(), "size mismatch");
}

TEST(CurlTransportTest, CollectedBodyOverMaxBodyIsDataLoss) {
  LoopbackServer server([](int fd, const Received&) {
    LoopbackServer::Send(fd, LoopbackServer::Reply(500, std::string(5000, 'e')));
  });
  auto t = Plain();
  Request req;
  req.url = server.Url("/v2/?secret=1");
  req.max_body = 100;
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(r.error().message().find("secret"), std::string::npos) << r.error().message();
}

TEST(CurlTransportTest, RefusedConnectionIsUnavailableWithoutTheQuery) {
  int port = 0;
  {
    LoopbackServer closed([](int, const Received&) {});
    port = std::stoi(closed.Url("").substr(17));
  }
  auto t = Plain();
  Request req;
  req.url = fmt::format("http://127.0.0.1:{}/v2/app/blobs/uploads/u1?_state=token", port);
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().message();
  EXPECT_NE(r.error().message().find("/v2/app/blobs/uploads/u1"), std::string::npos);
  EXPECT_EQ(r.error().message().find("_state"), std::string::npos) << r.error().message();
}

TEST(CurlTransportTest, TricklingResponseIsAbortedAsTooSlow) {
  LoopbackServer server([](int fd, const Received&) {
    LoopbackServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    for (int i = 0; i < 40; ++i) {                 // at most 4 s
      if (!LoopbackServer::Send(fd, "x")) return;  // the client gave up
      std::this_thread::sleep_for(100ms);
    }
  });
  CurlTransportOptions o;
  o.low_speed_limit = 1024;
  o.low_speed_time = 1000ms;
  CurlTransport t(o);
  Request req;
  req.url = server.Url("/blob");
  req.on_body = [](std::string_view) { return OkStatus(); };
  const auto start = std::chrono::steady_clock::now();
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("transfer too slow"), std::string::npos)
      << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(CurlTransportTest, OptionsForAClientMarkRegistryAndApiHostsInsecure) {
  ClientOptions c;
  c.tls_verify = true;
  c.insecure_registries = {"docker.io", "127.0.0.1:5000"};
  c.low_speed_limit = 7;
  c.low_speed_time = 9ms;
  c.user_agent = "ua/1";
  c.certs_dirs = {"/x"};
  CurlTransportOptions o = CurlOptionsFor(c);
  EXPECT_TRUE(o.tls_verify);
  EXPECT_TRUE(o.insecure_hosts.contains("docker.io"));
  EXPECT_TRUE(o.insecure_hosts.contains("registry-1.docker.io"));
  EXPECT_TRUE(o.insecure_hosts.contains("127.0.0.1:5000"));
  EXPECT_EQ(o.low_speed_limit, 7);
  EXPECT_EQ(o.low_speed_time, 9ms);
  EXPECT_EQ(o.user_agent, "ua/1");
  EXPECT_EQ(o.certs_dirs, std::vector<std::filesystem::path>{"/x"});
}

TEST(CurlTransportTest, MakeCurlClientTalksToTheServer) {
  LoopbackServer server([](int fd, const Received& r) {
    if (r.head.starts_with("GET /v2/ "))
      LoopbackServer::Send(fd, LoopbackServer::Reply(200, "{}"));
    else
      LoopbackServer::Send(
          fd, LoopbackServer::Reply(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})"));
  });
  auto client = MakeCurlClient(nullptr, ClientOptions{});
  const std::string host = server.Url("").substr(7);
  auto r = client->Resolve(*oci::Reference::Parse(host + "/app:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound) << r.error().message();
  EXPECT_NE(r.error().message().find("MANIFEST_UNKNOWN"), std::string::npos);
}

}  // namespace
}  // namespace strata::registry
