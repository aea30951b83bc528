// Test fixtures that start real components on 127.0.0.1:
//   RegistryProcess — /usr/bin/docker-registry serve, storage in a temp dir,
//     optionally with a self-signed TLS certificate and htpasswd basic auth;
//     killed and reaped on destruction (always).
//   FaultProxy — a tiny loopback HTTP reverse proxy (one request per
//     connection, bound to 127.0.0.1) whose hook can forward, cut a response
//     mid-body with a TCP reset, drop a response the upstream produced, trickle
//     a response body, or answer by itself. Stops its threads on destruction
//     (a trickling worker notices within a second).
//   MakeTestImage — a small OCI image written straight into an oci::Store.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "oci/store.h"
#include "oci/util/file_util.h"

namespace strata::registry::testing {

int FreePort();

class RegistryProcess {
 public:
  struct Options {
    bool tls = false;
    std::string user;  // htpasswd basic auth when set
    std::string password;
  };
  // Starts the registry and waits until it answers (up to 15 s). On failure
  // ok() is false and error() says why.
  explicit RegistryProcess(Options opts);
  ~RegistryProcess();
  RegistryProcess(const RegistryProcess&) = delete;
  RegistryProcess& operator=(const RegistryProcess&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // A containers-certs.d directory trusting this registry's certificate.
  std::filesystem::path certs_dir() const { return dir_.path() / "certs.d"; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  ScopedTempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string error_;
};

struct ProxyRequest {
  std::string method;
  std::string target;  // path and query
  std::string raw_headers;
  std::string Header(std::string_view name) const;  // case-insensitive, "" if absent
};

struct ProxyAction {
  // kForwardDropResponse: the upstream applies the request and answers in
  //   full, but the client only sees its connection reset (a lost response).
  // kForwardTrickle: the response head is forwarded at once, its body at
  //   `trickle_bytes_per_second`, for at most `trickle_max` then reset.
  enum class Kind { kForward, kForwardCut, kRespond, kForwardDropResponse, kForwardTrickle };
  Kind kind = Kind::kForward;
  size_t cut_after_body_bytes = 0;   // kForwardCut: reset after this many body bytes
  std::string response;              // kRespond: a full raw HTTP response
  bool strip_authorization = false;  // kForward: do not pass Authorization upstream
  size_t trickle_bytes_per_second = 2;
  std::chrono::seconds trickle_max{30};

  static ProxyAction Forward() { return {}; }
  static ProxyAction Cut(size_t n) { return {Kind::kForwardCut, n, "", false}; }
  static ProxyAction DropResponse() { return {Kind::kForwardDropResponse, 0, "", false}; }
  static ProxyAction Trickle(size_t bytes_per_second) {
    ProxyAction a;
    a.kind = Kind::kForwardTrickle;
    a.trickle_bytes_per_second = bytes_per_second;
    return a;
  }
  static ProxyAction Respond(int status, std::string body,
                             std::vector<std::pair<std::string, std::string>> headers = {});
};

class FaultProxy {
 public:
  using Hook = std::function<ProxyAction(const ProxyRequest&)>;
  FaultProxy(int upstream_port, Hook hook);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::vector<ProxyRequest> requests();

 private:
  void Serve();
  void Handle(int fd);

  int upstream_port_;
  Hook hook_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<ProxyRequest> requests_;
};

struct TestImage {
  oci::Descriptor manifest;
  std::vector<oci::Descriptor> layers;
  oci::Descriptor config;
};

// Writes an image of `layer_sizes.size()` gzip layers of random bytes (each
// about that many bytes) for `platform` into `store`, tagged `ref` if not empty.
TestImage MakeTestImage(oci::Store& store, const std::string& ref,
                        const std::vector<size_t>& layer_sizes,
                        const std::string& architecture = "amd64");

}  // namespace strata::registry::testing
