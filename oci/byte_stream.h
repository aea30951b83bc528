// ByteSink / ByteSource: the two streaming seams of the layer pipeline.
//
// The writer pushes bytes through a chain of sinks (tar -> hashing tee ->
// compressor -> blob writer); the reader pulls bytes through a chain of
// sources (blob reader -> decompressor -> hashing, size-limited tee -> tar
// reader). Each stage owns no buffer larger than its codec needs, so memory
// stays flat whatever the layer size. Implementations are single-threaded
// objects unless they say otherwise; a stage does not own the next stage.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "oci/digest.h"
#include "oci/util/error.h"

namespace strata::oci {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Consumes all `size` bytes or fails.
  virtual Status Write(const void* data, size_t size) = 0;
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // Flushes everything buffered and ends the stream. No Write after Close.
  virtual Status Close() = 0;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes; returns 0 only at the end of the stream.
  virtual Result<size_t> Read(void* buf, size_t size) = 0;
};

// A sink that forwards to a function; Close() is a no-op unless given.
class FunctionSink : public ByteSink {
 public:
  using WriteFn = std::function<Status(const void*, size_t)>;
  explicit FunctionSink(WriteFn write, std::function<Status()> close = {})
      : write_(std::move(write)), close_(std::move(close)) {}
  Status Write(const void* data, size_t size) override { return write_(data, size); }
  Status Close() override { return close_ ? close_() : OkStatus(); }

 private:
  WriteFn write_;
  std::function<Status()> close_;
};

// Hashes (sha256) and counts what passes through to `next`; closing it
// closes `next`. Used for the diffID (uncompressed) side of a layer.
class DigestingSink : public ByteSink {
 public:
  explicit DigestingSink(ByteSink* next) : next_(next) {}
  Status Write(const void* data, size_t size) override {
    hasher_.Update(data, size);
    return next_->Write(data, size);
  }
  Status Close() override { return next_->Close(); }
  uint64_t bytes() const { return hasher_.bytes(); }
  // The digest of everything written; call once, after Close().
  Digest Finish() { return hasher_.Finish(); }

 private:
  ByteSink* next_;
  Digester hasher_;
};

// Replays `prefix` (bytes already read from `in`, e.g. to look at magic
// numbers), then continues with `in`.
class PrefixSource : public ByteSource {
 public:
  PrefixSource(std::string prefix, ByteSource* in) : prefix_(std::move(prefix)), in_(in) {}
  Result<size_t> Read(void* buf, size_t size) override {
    if (pos_ < prefix_.size()) {
      size_t n = std::min(size, prefix_.size() - pos_);
      std::memcpy(buf, prefix_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    return in_->Read(buf, size);
  }

 private:
  std::string prefix_;
  size_t pos_ = 0;
  ByteSource* in_;
};

// Reads up to `n` bytes (fewer only at the end of the stream).
inline Result<std::string> ReadUpTo(ByteSource* in, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    STRATA_ASSIGN_OR_RETURN(size_t r, in->Read(out.data() + got, n - got));
    if (r == 0) break;
    got += r;
  }
  out.resize(got);
  return out;
}

}  // namespace strata::oci
