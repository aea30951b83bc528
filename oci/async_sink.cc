#include "oci/async_sink.h"

#include <cstring>
#include <utility>

namespace strata::oci {

AsyncSink::AsyncSink(ByteSink* next, size_t buffer_size, size_t depth)
    : next_(next), buffer_size_(buffer_size), depth_(depth == 0 ? 1 : depth) {
  cur_.reserve(buffer_size_);
  worker_ = std::thread([this] { Run(); });
}

AsyncSink::~AsyncSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  worker_.join();
}

void AsyncSink::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopped and drained
    std::vector<char> buf = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    bool failed = error_.has_value();
    lock.unlock();
    Status s = failed ? OkStatus() : next_->Write(buf.data(), buf.size());
    lock.lock();
    busy_ = false;
    if (!s && !error_) error_ = s.error();
    buf.clear();
    spare_.push_back(std::move(buf));
    cv_.notify_all();
  }
}

Status AsyncSink::QueueError() {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_) return Unexpected(*error_);
  return OkStatus();
}

Status AsyncSink::Flush() {
  if (cur_.empty()) return OkStatus();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_.has_value() || queue_.size() < depth_; });
  if (error_) return Unexpected(*error_);
  queue_.push_back(std::move(cur_));
  if (!spare_.empty()) {
    cur_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    cur_ = {};
    cur_.reserve(buffer_size_);
  }
  lock.unlock();
  cv_.notify_all();
  return OkStatus();
}

Status AsyncSink::Write(const void* data, size_t size) {
  if (closed_) return MakeError(ErrorCode::kFailedPrecondition, "write after close");
  STRATA_RETURN_IF_ERROR(QueueError());
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t n = std::min(size, buffer_size_ - cur_.size());
    cur_.insert(cur_.end(), p, p + n);
    p += n;
    size -= n;
    if (cur_.size() == buffer_size_) STRATA_RETURN_IF_ERROR(Flush());
  }
  return OkStatus();
}

Status AsyncSink::Close() {
  if (closed_) return OkStatus();
  closed_ = true;
  Status flushed = Flush();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
    if (error_) return Unexpected(*error_);
  }
  STRATA_RETURN_IF_ERROR(flushed);
  return next_->Close();
}

}  // namespace strata::oci
