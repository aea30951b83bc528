// Clock: the time seam of the registry client (retry backoff, token expiry).
// SystemClock is the real one; tests use a fake that advances on Sleep.
// Thread-safety: implementations are safe to call from several threads.
#pragma once

#include <chrono>
#include <thread>

namespace strata::registry {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  virtual void Sleep(Duration d) = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  void Sleep(Duration d) override { std::this_thread::sleep_for(d); }
};

}  // namespace strata::registry
