// Transport: one HTTP exchange (request in, response out) — the I/O seam of
// the registry client. Implementations are stacked as decorators in the style
// of go-containerregistry's transport package:
//
//   AuthTransport (auth.h)  ->  RetryTransport (retry.h)
//     ->  RedirectTransport (below)  ->  CurlTransport (tools/curl/curl_transport.h)
//
// Tests replace the bottom with a scripted fake.
//
// Bodies stream in both directions. A request body comes from `body` (small,
// in memory) or from `open_body`, a factory called once per attempt so that a
// retry can replay it from the start. A response body goes to `on_body` for 2xx
// responses (blob downloads stream into the store) and is collected into
// Response::body otherwise (error JSON, manifests), bounded by max_body.
//
// Thread-safety: a Transport may be called from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "oci/util/error.h"

namespace strata::registry {

// Reads up to n bytes into buf; 0 at the end.
using BodyReader = std::function<Result<size_t>(char* buf, size_t n)>;

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<Header> headers;
  std::string body;
  // If set, the body streams from a fresh reader for every attempt and
  // `body_size` (>= 0) is its exact length.
  std::function<Result<BodyReader>()> open_body;
  int64_t body_size = -1;
  // Receives the body of 2xx responses. An error stops the transfer and is
  // returned from RoundTrip as is.
  std::function<Status(std::string_view)> on_body;
  // Called once with the status of a 2xx response before its first on_body
  // chunk (e.g. to tell 206 from 200 after a Range request).
  std::function<Status(int status)> on_status;
  // Limit on a body collected in memory; larger bodies fail with DataLoss.
  int64_t max_body = 8 << 20;
  // False for a request that must not be sent twice blindly because the
  // server may have acted on it even though its response was lost (the PUT
  // that finishes a blob upload, a manifest PUT). RetryTransport sends such a
  // request once; the caller finds out what the server did (HEAD) and decides.
  bool replayable = true;

  // Replaces (case-insensitively) or adds a header.
  void SetHeader(std::string_view name, std::string value);
  void RemoveHeader(std::string_view name);
  // Value of the first header named `name` (case-insensitive), or "".
  std::string GetHeader(std::string_view name) const;
};

struct Response {
  int status = 0;
  std::vector<Header> headers;  // as received, in order
  std::string body;             // unless streamed to on_body
  int64_t streamed_bytes = 0;   // bytes handed to on_body

  std::string GetHeader(std::string_view name) const;
  std::vector<std::string> GetHeaders(std::string_view name) const;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Performs the exchange. An HTTP error status is a successful Response;
  // Unavailable on connection-level failure (refused, reset, timeout, a
  // transfer slower than the transport's minimum rate); FailedPrecondition
  // when the server's TLS certificate cannot be verified (retrying cannot
  // help); or the error `on_body` / the body reader returned.
  virtual Result<Response> RoundTrip(const Request& req) = 0;
};

// Follows 301/302/303/307/308 (at most `max_hops`) for GET and HEAD. When the
// redirect leaves the original host the Authorization header is dropped, so a
// registry token never reaches blob storage (S3, CDN).
class RedirectTransport : public Transport {
 public:
  explicit RedirectTransport(std::shared_ptr<Transport> inner, int max_hops = 10)
      : inner_(std::move(inner)), max_hops_(max_hops) {}
  Result<Response> RoundTrip(const Request& req) override;

 private:
  std::shared_ptr<Transport> inner_;
  int max_hops_;
};

// --- URL helpers shared by the client and the decorators ---

struct Url {
  std::string scheme;     // "https" / "http"
  std::string authority;  // host[:port]
  std::string path_and_query;
  static Result<Url> Parse(std::string_view s);
  std::string ToString() const { return scheme + "://" + authority + path_and_query; }
};

// Resolves a Location header (absolute, or absolute-path, or relative) against
// the URL of the request that returned it.
Result<std::string> ResolveLocation(std::string_view base, std::string_view location);

// Appends "k=v" to the URL's query with '?' or '&' as needed (v URL-encoded).
std::string AppendQuery(std::string_view url, std::string_view key, std::string_view value);

std::string UrlEncode(std::string_view s);

}  // namespace strata::registry
