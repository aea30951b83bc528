// AsyncSink: hands what is written to another thread, which writes it to the
// next sink. It lets a pipeline stage that is CPU-bound on its own (hashing
// and writing the compressed blob) run beside the stage that feeds it (the
// tar walk and the diffID hash) instead of after it on the same thread.
//
// Bytes are copied into fixed buffers; a full buffer is queued (at most
// `depth` of them, so memory is bounded by depth * buffer_size) and written
// by the worker in order. The first error of `next` is returned by the next
// Write() or by Close(); nothing is written after it. Close() flushes, waits
// for the worker, and then closes `next` (as DigestingSink does). Destroying
// an AsyncSink that was not closed stops the worker without closing `next`.
//
// Thread-safety: Write/Close from one thread; `next` is used only by the
// worker until Close() returns.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "oci/byte_stream.h"

namespace strata::oci {

class AsyncSink : public ByteSink {
 public:
  explicit AsyncSink(ByteSink* next, size_t buffer_size = 1 << 20, size_t depth = 4);
  ~AsyncSink() override;
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;

  using ByteSink::Write;
  Status Write(const void* data, size_t size) override;
  Status Close() override;

 private:
  Status Flush();
  Status QueueError();
  void Run();

  ByteSink* next_;
  const size_t buffer_size_;
  const size_t depth_;
  std::vector<char> cur_;
  bool closed_ = false;

  std::mutex mu_;
  std::condition_variable cv_;  // queue changed, worker state changed
  std::deque<std::vector<char>> queue_;
  std::vector<std::vector<char>> spare_;  // written buffers, reused
  bool stop_ = false;
  bool busy_ = false;  // the worker holds a buffer
  std::optional<Error> error_;
  std::thread worker_;
};

}  // namespace strata::oci
