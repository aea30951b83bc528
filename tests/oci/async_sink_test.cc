#include "oci/async_sink.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/status_matchers.h"

namespace strata::oci {
namespace {

using testing::IsOk;
using testing::StatusIs;

TEST(AsyncSinkTest, WritesEverythingInOrderAndClosesNext) {
  std::string got;
  bool closed = false;
  FunctionSink next(
      [&](const void* d, size_t n) {
        got.append(static_cast<const char*>(d), n);
        return OkStatus();
      },
      [&] {
        closed = true;
        return OkStatus();
      });
  std::string want;
  {
    AsyncSink sink(&next, /*buffer_size=*/7, /*depth=*/2);
    for (int i = 0; i < 1000; ++i) {
      std::string piece = std::to_string(i) + ",";
      want += piece;
      ASSERT_THAT(sink.Write(piece), IsOk());
    }
    ASSERT_THAT(sink.Close(), IsOk());
    EXPECT_TRUE(closed);
  }
  EXPECT_EQ(got, want);
}

TEST(AsyncSinkTest, ErrorOfNextIsReturnedAndNothingIsWrittenAfterIt) {
  int writes = 0;
  bool closed = false;
  FunctionSink next(
      [&](const void*, size_t) -> Status {
        if (++writes == 3) return MakeError(ErrorCode::kUnavailable, "disk full");
        return OkStatus();
      },
      [&] {
        closed = true;
        return OkStatus();
      });
  AsyncSink sink(&next, /*buffer_size=*/4, /*depth=*/1);
  Status last = OkStatus();
  for (int i = 0; i < 100 && last; ++i) last = sink.Write("abcdefgh");
  Status closed_status = sink.Close();
  EXPECT_THAT(closed_status, StatusIs(ErrorCode::kUnavailable));
  EXPECT_EQ(writes, 3);
  EXPECT_FALSE(closed);  // a failed stream is not closed as if complete
}

TEST(AsyncSinkTest, DestroyWithoutCloseStopsTheWorker) {
  FunctionSink next([](const void*, size_t) { return OkStatus(); });
  AsyncSink sink(&next, 4, 1);
  ASSERT_THAT(sink.Write("0123456789"), IsOk());
}

TEST(AsyncSinkTest, WriteAfterCloseFails) {
  FunctionSink next([](const void*, size_t) { return OkStatus(); });
  AsyncSink sink(&next);
  ASSERT_THAT(sink.Close(), IsOk());
  EXPECT_THAT(sink.Write("x"), StatusIs(ErrorCode::kFailedPrecondition));
}

}  // namespace
}  // namespace strata::oci
