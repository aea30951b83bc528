#include "oci/util/parallel.h"

#include <atomic>
#include <thread>
#include <vector>

#include "tests/testing/test_util.h"

namespace strata {
namespace {

TEST(ParallelForTest, RunsEveryIndexOnce) {
  for (int jobs : {0, 1, 3, 64}) {
    std::vector<std::atomic<int>> hits(100);
    ASSERT_OK(ParallelFor(hits.size(), jobs, [&](size_t i) -> Status {
      ++hits[i];
      return OkStatus();
    }));
    for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
  ASSERT_OK(ParallelFor(0, 4, [](size_t) -> Status { return OkStatus(); }));
}

TEST(ParallelForTest, StopAtFirstErrorStartsNothingAfterIt) {
  std::atomic<int> ran{0};
  auto s = ParallelFor(1000, 1, [&](size_t i) -> Status {
    ++ran;
    if (i == 3) return MakeError(ErrorCode::kUnavailable, "boom {}", i);
    return OkStatus();
  });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "boom 3");
  EXPECT_EQ(ran.load(), 4);
}

TEST(ParallelForTest, RunAllReturnsTheLowestFailingIndex) {
  std::atomic<int> ran{0};
  auto s = ParallelFor(
      8, 8,
      [&](size_t i) -> Status {
        ++ran;
        // The later index fails first in time.
        if (i == 6) return MakeError(ErrorCode::kInternal, "six");
        if (i == 2) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          return MakeError(ErrorCode::kInternal, "two");
        }
        return OkStatus();
      },
      ParallelMode::kRunAll);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "two");
  EXPECT_EQ(ran.load(), 8);
}

}  // namespace
}  // namespace strata
