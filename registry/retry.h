// RetryTransport: retries an exchange that failed for a transient reason —
// a connection-level error (Unavailable), 429 Too Many Requests or any error
// response whose body carries the protocol code TOOMANYREQUESTS (honouring
// Retry-After, in seconds or as an HTTP date, capped by max_total), and
// 500/502/503/504 — with
// exponential backoff and full jitter, bounded by attempt count and total time.
//
// A request whose response body already streamed bytes to on_body is never
// replayed here (the caller resumes it with Range); a request body is replayed
// through Request::open_body. A request with `replayable == false` is sent
// exactly once: its caller checks what the server did before sending again.
//
// Thread-safety: safe for concurrent RoundTrips if the inner transport is.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "registry/clock.h"
#include "registry/transport.h"

namespace strata::registry {

struct RetryPolicy {
  int max_attempts = 5;  // total tries, including the first
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds max_total{60000};  // no retry starts after this
  // Backoff before retry number `retry` (1-based), before jitter.
  std::chrono::milliseconds BackoffFor(int retry) const;
};

// Parses a Retry-After value: delta-seconds or an IMF-fixdate. nullopt if
// unparseable. `now_wall` is the current wall-clock time for the date form.
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now_wall);

// True for the statuses RetryTransport retries.
bool IsRetryableStatus(int status);
// True for 429 and for an error response with the code TOOMANYREQUESTS.
bool IsTooManyRequests(const Response& resp);

class RetryTransport : public Transport {
 public:
  // `jitter` maps a backoff to the actual sleep (default: uniform in
  // [backoff/2, backoff]); tests pass the identity.
  RetryTransport(std::shared_ptr<Transport> inner, RetryPolicy policy, std::shared_ptr<Clock> clock,
                 std::function<std::chrono::milliseconds(std::chrono::milliseconds)> jitter = {});
  Result<Response> RoundTrip(const Request& req) override;

 private:
  std::shared_ptr<Transport> inner_;
  RetryPolicy policy_;
  std::shared_ptr<Clock> clock_;
  std::function<std::chrono::milliseconds(std::chrono::milliseconds)> jitter_;
};

}  // namespace strata::registry
