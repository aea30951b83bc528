#include "registry/retry.h"

#include "registry/errors.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <random>
#include <string>

namespace strata::registry {

using std::chrono::milliseconds;

milliseconds RetryPolicy::BackoffFor(int retry) const {
  milliseconds d = initial_backoff;
  for (int i = 1; i < retry && d < max_backoff; ++i) d *= 2;
  return std::min(d, max_backoff);
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value,
                                            std::chrono::system_clock::time_point now_wall) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t secs = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec == std::errc() && ptr == value.data() + value.size()) {
    if (secs < 0) return std::nullopt;
    return milliseconds(secs * 1000);
  }
  struct tm tm = {};
  std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (when <= now_wall) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(when - now_wall);
}

bool IsRetryableStatus(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool IsTooManyRequests(const Response& resp) {
  if (resp.status == 429) return true;
  if (resp.status < 400) return false;
  for (const auto& e : ParseRegistryErrors(resp.body))
    if (e.code == ProtocolCode::kTooManyRequests) return true;
  return false;
}

RetryTransport::RetryTransport(std::shared_ptr<Transport> inner, RetryPolicy policy,
                               std::shared_ptr<Clock> clock,
                               std::function<milliseconds(milliseconds)> jitter)
    : inner_(std::move(inner)),
      policy_(policy),
      clock_(std::move(clock)),
      jitter_(std::move(jitter)) {
  if (!jitter_) {
    jitter_ = [](milliseconds d) {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      if (d.count() <= 1) return d;
      std::uniform_int_distribution<int64_t> dist(d.count() / 2, d.count());
      return milliseconds(dist(rng));
    };
  }
}

Result<Response> RetryTransport::RoundTrip(const Request& req) {
  if (!req.replayable) return inner_->RoundTrip(req);
  const auto start = clock_->Now();
  const int attempts = std::max(1, policy_.max_attempts);
  // Counts bytes streamed to the caller in this attempt: once any arrived,
  // replaying would hand them over twice.
  int64_t streamed = 0;
  Request attempt_req = req;
  if (req.on_body) {
    attempt_req.on_body = [&streamed, &req](std::string_view chunk) {
      streamed += static_cast<int64_t>(chunk.size());
      return req.on_body(chunk);
    };
  }
  for (int attempt = 1;; ++attempt) {
    streamed = 0;
    Result<Response> r = inner_->RoundTrip(attempt_req);
    milliseconds wait{0};
    if (r) {
      const bool throttled = IsTooManyRequests(*r);
      if ((!IsRetryableStatus(r->status) && !throttled) || r->streamed_bytes > 0) return r;
      wait = jitter_(policy_.BackoffFor(attempt));
      if (throttled || r->status == 503) {
        if (auto ra =
                ParseRetryAfter(r->GetHeader("Retry-After"), std::chrono::system_clock::now()))
          wait = std::min(*ra, policy_.max_total);
      }
    } else {
      // Only connection-level failures are transient; errors raised by the
      // caller's body sink are final.
      if (r.error().code() != ErrorCode::kUnavailable || streamed > 0) return r;
      wait = jitter_(policy_.BackoffFor(attempt));
    }
    if (attempt >= attempts) return r;
    auto elapsed = clock_->Now() - start;
    if (elapsed + wait > policy_.max_total) return r;
    clock_->Sleep(wait);
  }
}

}  // namespace strata::registry
