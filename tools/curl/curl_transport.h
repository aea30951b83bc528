// CurlTransport: the real registry::Transport over libcurl, and
// MakeCurlClient, the factory that puts it under a registry::Client. It lives
// in tools/ so that the registry library never links libcurl; the header
// needs no curl header (the handle is opaque).
//
// TLS: the system CA store, plus per registry host (the URL's host[:port]) the
// containers-certs.d(5) directories CERTS_DIR/HOST/ of every entry of
// `certs_dirs` (by default /etc/containers/certs.d, then docker's
// /etc/docker/certs.d): every *.crt is an extra trusted CA, and a *.cert with
// the *.key of the same name is a client certificate (the first one found
// wins). Verification is skipped for hosts in `insecure_hosts` or when
// tls_verify is false. A certificate that cannot be verified is
// FailedPrecondition, with curl's reason and where certificates are looked up.
//
// Minimum rate: a transfer that moves fewer than `low_speed_limit` bytes/s
// (request and response bytes together) over a window of `low_speed_time` is
// aborted as Unavailable ("transfer too slow"), so a registry that trickles
// bytes cannot hold a pull or push forever; RetryTransport and the client's
// resume logic then retry within their bounds. The window also covers waiting
// for the response, as curl's CURLOPT_LOW_SPEED_* do.
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

#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/transport.h"

namespace strata::registry {

struct CurlTransportOptions {
  std::vector<std::filesystem::path> certs_dirs = {"/etc/containers/certs.d",
                                                   "/etc/docker/certs.d"};
  bool tls_verify = true;
  std::set<std::string> insecure_hosts;  // host[:port]
  std::chrono::seconds connect_timeout{30};
  // Abort a transfer below low_speed_limit bytes/s for low_speed_time
  // (Unavailable). A limit of 0 disables the check.
  int64_t low_speed_limit = 1024;
  std::chrono::milliseconds low_speed_time{30000};
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
  // Where CA certificates for `authority` are looked up, and how to skip.
  std::string TlsHelp(const std::string& authority) const;

  CurlTransportOptions options_;
  std::mutex mu_;
  std::vector<CurlPtr> pool_;                // guarded by mu_
  std::map<std::string, HostTls> host_tls_;  // guarded by mu_
};

// The transport options `options` asks for: TLS roots, insecure hosts (each
// as given and as its API host, e.g. docker.io -> registry-1.docker.io),
// minimum rate, user agent.
CurlTransportOptions CurlOptionsFor(const ClientOptions& options);

// A registry client over libcurl configured from `options`.
std::unique_ptr<Client> MakeCurlClient(std::shared_ptr<const CredentialStore> credentials,
                                       ClientOptions options);

}  // namespace strata::registry
