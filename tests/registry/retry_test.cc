#include "registry/retry.h"

#include <gtest/gtest.h>

#include "tests/registry/fakes.h"
#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScriptedTransport;

std::chrono::milliseconds NoJitter(std::chrono::milliseconds d) { return d; }

TEST(RetryTransportTest, RetriesServerErrorThenSucceeds) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) {
    ++calls;
    return ScriptedTransport::Deliver(req, calls == 1 ? 500 : 200, "ok");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/";
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(clock->sleeps().size(), 1u);
  EXPECT_EQ(clock->sleeps()[0], 200ms);
}

TEST(RetryTransportTest, HonoursRetryAfterOn429) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) {
    ++calls;
    if (calls == 1) return ScriptedTransport::Deliver(req, 429, "", {{"Retry-After", "3"}});
    return ScriptedTransport::Deliver(req, 200, "");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/";
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(clock->sleeps().size(), 1u);
  EXPECT_EQ(clock->sleeps()[0], 3000ms);
}

TEST(RetryTransportTest, BackoffGrowsExponentiallyAndStopsAtMaxAttempts) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request&) -> Result<Response> {
    ++calls;
    return MakeError(ErrorCode::kUnavailable, "connection refused");
  });
  RetryPolicy p;
  p.max_attempts = 4;
  RetryTransport t(fake, p, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/";
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(calls, 4);
  std::vector<Clock::Duration> want = {200ms, 400ms, 800ms};
  EXPECT_EQ(clock->sleeps(), want);
}

TEST(RetryTransportTest, StopsWhenTotalTimeBudgetIsSpent) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) {
    ++calls;
    return ScriptedTransport::Deliver(req, 503, "", {{"Retry-After", "40"}});
  });
  RetryPolicy p;
  p.max_attempts = 10;
  p.max_total = 60s;
  RetryTransport t(fake, p, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/";
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(calls, 2);  // 40 s, then another 40 s would exceed 60 s
}

TEST(RetryTransportTest, DoesNotRetryClientErrors) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) {
    ++calls;
    return ScriptedTransport::Deliver(req, 404, "{}");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/x";
  ASSERT_OK_AND_ASSIGN(Response r, t.RoundTrip(req));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clock->sleeps().empty());
}

TEST(RetryTransportTest, NeverReplaysAfterBodyBytesWereStreamed) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) -> Result<Response> {
    ++calls;
    EXPECT_OK(req.on_body("partial"));
    return MakeError(ErrorCode::kUnavailable, "connection reset");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  std::string got;
  Request req;
  req.url = "http://r/v2/x/blobs/y";
  req.on_body = [&](std::string_view c) {
    got += c;
    return OkStatus();
  };
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, "partial");
}

TEST(RetryTransportTest, ErrorsFromTheBodySinkAreFinal) {
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request& req) {
    ++calls;
    return ScriptedTransport::Deliver(req, 200, "data");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  Request req;
  req.url = "http://r/v2/x";
  req.on_body = [](std::string_view) -> Status {
    return MakeError(ErrorCode::kFailedPrecondition, "too big");
  };
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(calls, 1);
}

TEST(RetryAfterTest, ParsesSecondsAndHttpDates) {
  auto now = std::chrono::system_clock::from_time_t(1700000000);  // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(ParseRetryAfter("7", now), std::chrono::milliseconds(7000));
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:13:25 GMT", now), std::chrono::milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:13:00 GMT", now), std::chrono::milliseconds(0));
  EXPECT_FALSE(ParseRetryAfter("soon", now));
  EXPECT_FALSE(ParseRetryAfter("-3", now));
}

TEST(RetryTransportTest, SendsANonReplayableRequestOnce) {
  // A PUT that finishes an upload may have been applied although its response
  // was lost: RetryTransport must leave the decision to the caller.
  auto clock = std::make_shared<FakeClock>();
  int calls = 0;
  auto fake = std::make_shared<ScriptedTransport>([&](const Request&) -> Result<Response> {
    ++calls;
    return MakeError(ErrorCode::kUnavailable, "connection reset by peer");
  });
  RetryTransport t(fake, RetryPolicy{}, clock, NoJitter);
  Request req;
  req.method = "PUT";
  req.url = "http://r/v2/a/blobs/uploads/1?digest=sha256%3Aab";
  req.replayable = false;
  auto r = t.RoundTrip(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clock->sleeps().empty());
}

}  // namespace
}  // namespace strata::registry
