#include "oci/util/parallel.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace strata {

Status ParallelFor(size_t n, int jobs, const std::function<Status(size_t)>& fn, ParallelMode mode) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first;  // kStopAtFirstError: the first in time
  size_t first_index = n;      // kRunAll: the lowest index
  auto worker = [&] {
    for (;;) {
      if (mode == ParallelMode::kStopAtFirstError && failed.load()) return;
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      Status s = fn(i);
      if (s) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (!first || (mode == ParallelMode::kRunAll && i < first_index)) {
        first = s.error();
        first_index = i;
      }
      failed = true;
    }
  };
  size_t threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), n);
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::jthread> pool;
    for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  }
  if (first) return Unexpected(*first);
  return OkStatus();
}

}  // namespace strata
