// Clock: the engine's wall-time seam (history and cache-record times, the
// mtime of an ADD <url> without Last-Modified). SOURCE_DATE_EPOCH, when set,
// wins over it. Tests inject a fixed clock.
#pragma once

#include <cstdint>
#include <ctime>

namespace strata::builder {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual int64_t UnixSeconds() const = 0;
};

class SystemClock : public Clock {
 public:
  int64_t UnixSeconds() const override { return static_cast<int64_t>(std::time(nullptr)); }
};

// Always the same time (tests).
class FixedClock : public Clock {
 public:
  explicit FixedClock(int64_t t) : t_(t) {}
  int64_t UnixSeconds() const override { return t_; }

 private:
  int64_t t_;
};

}  // namespace strata::builder
