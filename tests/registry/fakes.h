// Fakes for the registry client's seams: a scripted Transport and a Clock
// that advances only when slept on.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "registry/clock.h"
#include "registry/transport.h"

namespace strata::registry::testing {

class FakeClock : public Clock {
 public:
  TimePoint Now() override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  void Sleep(Duration d) override {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
    sleeps_.push_back(d);
  }
  std::vector<Duration> sleeps() {
    std::lock_guard<std::mutex> l(mu_);
    return sleeps_;
  }

 private:
  std::mutex mu_;
  TimePoint now_{};
  std::vector<Duration> sleeps_;
};

// Answers each request with `handler`, records every request. A handler may
// stream its body through Deliver().
class ScriptedTransport : public Transport {
 public:
  using Handler = std::function<Result<Response>(const Request&)>;
  explicit ScriptedTransport(Handler h) : handler_(std::move(h)) {}
  Result<Response> RoundTrip(const Request& req) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      requests_.push_back(req);
    }
    return handler_(req);
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

  // A response as a real transport gives it: a 2xx body goes to on_body.
  static Result<Response> Deliver(const Request& req, int status, std::string body,
                                  std::vector<Header> headers = {}) {
    Response r;
    r.status = status;
    r.headers = std::move(headers);
    if (status >= 200 && status < 300 && req.on_body) {
      if (req.on_status) {
        if (auto s = req.on_status(status); !s) return std::unexpected(s.error());
      }
      if (!body.empty()) {
        if (auto s = req.on_body(body); !s) return std::unexpected(s.error());
      }
      r.streamed_bytes = static_cast<int64_t>(body.size());
    } else {
      r.body = std::move(body);
    }
    return r;
  }

 private:
  Handler handler_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

}  // namespace strata::registry::testing
