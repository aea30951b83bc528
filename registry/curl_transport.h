// CurlTransport: the real Transport over libcurl.
//
// TLS: the system CA store, plus per registry host (the URL's host[:port]) the
// containers-certs.d(5) directory CERTS_DIR/HOST/: every *.crt is an extra
// trusted CA, and a *.cert with the *.key of the same name is a client
// certificate. Verification is skipped for hosts in `insecure_hosts` or when
// tls_verify is false.
//
// Easy handles are pooled (each keeps its own connection cache), so
// consecutive requests to a registry reuse TCP and TLS connections. Responses
// are never transparently decompressed: blob bytes must hash to their digest.
//
// Thread-safety: RoundTrip may be called from several threads at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "registry/transport.h"

namespace strata::registry {

struct CurlTransportOptions {
  std::filesystem::path certs_dir = "/etc/containers/certs.d";
  bool tls_verify = true;
  std::set<std::string> insecure_hosts;  // host[:port]
  std::chrono::seconds connect_timeout{30};
  // A transfer slower than 1 byte/s for this long is aborted (Unavailable).
  std::chrono::seconds stall_timeout{60};
  std::string user_agent = "strata/0.1";
};

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlTransportOptions options);
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  Result<Response> RoundTrip(const Request& req) override;

 private:
  struct HostTls {
    std::string ca_blob;  // system bundle + extra CAs, empty: curl's default
    std::string client_cert;
    std::string client_key;
  };
  struct CurlDeleter {
    void operator()(void* h) const;
  };
  using CurlPtr = std::unique_ptr<void, CurlDeleter>;

  CurlPtr Acquire();
  void Release(CurlPtr h);
  const HostTls& TlsFor(const std::string& authority);

  CurlTransportOptions options_;
  std::mutex mu_;
  std::vector<CurlPtr> pool_;                // guarded by mu_
  std::map<std::string, HostTls> host_tls_;  // guarded by mu_
};

}  // namespace strata::registry
