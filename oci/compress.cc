#include "oci/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace strata::oci {
namespace {

constexpr size_t kDictSize = 32 * 1024;  // deflate's window
constexpr size_t kReadChunk = 128 * 1024;
// zstd job size, pinned so that the frame layout never depends on defaults
// that a libzstd upgrade or a level change might move.
constexpr int kZstdJobSize = 4 * 1024 * 1024;

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 64u));
}

// ---------------------------------------------------------------------------
// gzip, block-parallel.

struct DeflateStreamDeleter {
  void operator()(z_stream* zs) const {
    deflateEnd(zs);
    delete zs;
  }
};
using DeflateStream = std::unique_ptr<z_stream, DeflateStreamDeleter>;

Result<DeflateStream> NewRawDeflate(int level) {
  auto* zs = new z_stream{};
  if (deflateInit2(zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    delete zs;
    return MakeError(ErrorCode::kInternal, "deflateInit2 failed");
  }
  return DeflateStream(zs);
}

struct GzipJob {
  std::vector<uint8_t> in;
  std::vector<uint8_t> dict;  // the previous block's tail, empty for the first
  bool last = false;
  std::vector<uint8_t> out;
  uLong crc = 0;
  bool done = false;
  bool failed = false;
};

// True when the block's byte histogram is flat, as for random or already
// compressed data, where deflate only burns CPU. Integer arithmetic only:
// the decision, and so the output bytes, must not depend on the machine.
bool LooksIncompressible(const std::vector<uint8_t>& in) {
  if (in.size() < 4096) return false;
  // Four interleaved tables: consecutive equal bytes do not wait on one
  // counter (3x faster than one table on random data; same counts).
  uint32_t hist[4][256] = {};
  const uint8_t* p = in.data();
  const size_t quads = in.size() / 4 * 4;
  for (size_t i = 0; i < quads; i += 4) {
    ++hist[0][p[i]];
    ++hist[1][p[i + 1]];
    ++hist[2][p[i + 2]];
    ++hist[3][p[i + 3]];
  }
  for (size_t i = quads; i < in.size(); ++i) ++hist[0][p[i]];
  uint64_t sum_sq = 0;
  for (int b = 0; b < 256; ++b) {
    const uint64_t h = uint64_t{hist[0][b]} + hist[1][b] + hist[2][b] + hist[3][b];
    sum_sq += h * h;
  }
  const uint64_t n = in.size();
  // Uniform bytes give sum_sq ~ n^2/256 + n; text is many times above. The
  // 1/8 slack lets random file data through with the tar headers and padding
  // (runs of zeros) that land in the same block.
  return sum_sq * 256 * 8 <= n * n * 9;
}

// Writes `job->in` as deflate stored blocks (RFC 1951 3.2.4). Blocks start
// byte-aligned (the previous block ended with a sync flush or a stored
// block), so each header is one byte; the last one sets BFINAL for the last job.
void StoreBlock(GzipJob* job) {
  job->out.clear();
  const size_t n = job->in.size();
  size_t off = 0;
  do {
    size_t len = std::min<size_t>(65535, n - off);
    bool final_chunk = job->last && off + len == n;
    job->out.push_back(final_chunk ? 1 : 0);
    job->out.push_back(static_cast<uint8_t>(len & 0xff));
    job->out.push_back(static_cast<uint8_t>(len >> 8));
    job->out.push_back(static_cast<uint8_t>(~len & 0xff));
    job->out.push_back(static_cast<uint8_t>((~len >> 8) & 0xff));
    job->out.insert(job->out.end(), job->in.begin() + static_cast<std::ptrdiff_t>(off),
                    job->in.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += len;
  } while (off < n);
}

// Compresses one block: raw deflate primed with the dictionary, ending on a
// byte boundary (sync flush) so that blocks concatenate into one stream.
// Incompressible blocks are stored instead (see LooksIncompressible).
bool DeflateBlock(z_stream* zs, GzipJob* job) {
  job->crc = crc32(0L, job->in.data(), static_cast<uInt>(job->in.size()));
  if (LooksIncompressible(job->in)) {
    StoreBlock(job);
    return true;
  }
  if (deflateReset(zs) != Z_OK) return false;
  if (!job->dict.empty() &&
      deflateSetDictionary(zs, job->dict.data(), static_cast<uInt>(job->dict.size())) != Z_OK) {
    return false;
  }
  job->out.resize(deflateBound(zs, static_cast<uLong>(job->in.size())) + 64);
  zs->next_in = job->in.data();
  zs->avail_in = static_cast<uInt>(job->in.size());
  const int flush = job->last ? Z_FINISH : Z_SYNC_FLUSH;
  size_t produced = 0;
  for (;;) {
    zs->next_out = job->out.data() + produced;
    zs->avail_out = static_cast<uInt>(job->out.size() - produced);
    int rc = deflate(zs, flush);
    produced = job->out.size() - zs->avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    if (!job->last && zs->avail_in == 0 && zs->avail_out != 0) break;
    job->out.resize(job->out.size() * 2);
  }
  job->out.resize(produced);
  return true;
}

class GzipCompressor : public ByteSink {
 public:
  GzipCompressor(int level, int threads, ByteSink* out)
      : level_(level), threads_(threads), out_(out) {
    cur_.reserve(kGzipBlockSize);
  }

  ~GzipCompressor() override { StopWorkers(); }

  Status Init() {
    if (threads_ == 1) {
      STRATA_ASSIGN_OR_RETURN(inline_zs_, NewRawDeflate(level_));
      return OkStatus();
    }
    // Create every stream up front so that a failure is reported here.
    std::vector<DeflateStream> streams;
    for (int i = 0; i < threads_; ++i) {
      STRATA_ASSIGN_OR_RETURN(auto zs, NewRawDeflate(level_));
      streams.push_back(std::move(zs));
    }
    for (auto& zs : streams) {
      workers_.emplace_back([this, z = std::move(zs)]() mutable { WorkerLoop(z.get()); });
    }
    return OkStatus();
  }

  Status Write(const void* data, size_t size) override {
    if (closed_) return MakeError(ErrorCode::kFailedPrecondition, "gzip: write after close");
    if (!header_written_) STRATA_RETURN_IF_ERROR(WriteHeader());
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
      size_t n = std::min(size, kGzipBlockSize - cur_.size());
      cur_.insert(cur_.end(), p, p + n);
      p += n;
      size -= n;
      if (cur_.size() == kGzipBlockSize) STRATA_RETURN_IF_ERROR(Submit(/*last=*/false));
    }
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    if (!header_written_) STRATA_RETURN_IF_ERROR(WriteHeader());
    STRATA_RETURN_IF_ERROR(Submit(/*last=*/true));
    while (!inflight_.empty()) STRATA_RETURN_IF_ERROR(EmitOldest());
    StopWorkers();
    uint8_t trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<uint8_t>(crc_ >> (8 * i));
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<uint8_t>(total_in_ >> (8 * i));
    STRATA_RETURN_IF_ERROR(out_->Write(trailer, sizeof(trailer)));
    return out_->Close();
  }

 private:
  Status WriteHeader() {
    header_written_ = true;
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255: nothing machine-specific.
    static constexpr uint8_t kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    return out_->Write(kHeader, sizeof(kHeader));
  }

  Status Submit(bool last) {
    auto job = std::make_shared<GzipJob>();
    job->last = last;
    job->dict = std::move(next_dict_);
    // The next block's dictionary: the last 32 KiB of this block's input,
    // preceded by the previous dictionary when this block is shorter.
    next_dict_.clear();
    if (cur_.size() < kDictSize) {
      size_t keep = std::min(job->dict.size(), kDictSize - cur_.size());
      next_dict_.assign(job->dict.end() - static_cast<ptrdiff_t>(keep), job->dict.end());
      next_dict_.insert(next_dict_.end(), cur_.begin(), cur_.end());
    } else {
      next_dict_.assign(cur_.end() - kDictSize, cur_.end());
    }
    job->in = std::move(cur_);
    cur_ = {};
    cur_.reserve(kGzipBlockSize);
    total_in_ += job->in.size();

    if (threads_ == 1) {
      job->failed = !DeflateBlock(inline_zs_.get(), job.get());
      job->done = true;
      inflight_.push_back(std::move(job));
      return EmitOldest();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(job);
    }
    work_cv_.notify_one();
    inflight_.push_back(std::move(job));
    // Bounded pipeline: at most two blocks per worker in flight keeps memory
    // flat (about 1 MiB per worker) while every worker stays busy.
    while (inflight_.size() >= static_cast<size_t>(2 * threads_)) {
      STRATA_RETURN_IF_ERROR(EmitOldest());
    }
    return OkStatus();
  }

  Status EmitOldest() {
    std::shared_ptr<GzipJob> job = inflight_.front();
    inflight_.pop_front();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return job->done; });
    }
    if (job->failed) return MakeError(ErrorCode::kInternal, "gzip: deflate failed");
    crc_ = crc32_combine(crc_, job->crc, static_cast<z_off_t>(job->in.size()));
    return out_->Write(job->out.data(), job->out.size());
  }

  void WorkerLoop(z_stream* zs) {
    for (;;) {
      std::shared_ptr<GzipJob> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      bool ok = DeflateBlock(zs, job.get());
      {
        std::lock_guard<std::mutex> lock(mu_);
        job->failed = !ok;
        job->done = true;
      }
      done_cv_.notify_all();
    }
  }

  void StopWorkers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      queue_.clear();
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  const int level_;
  const int threads_;
  ByteSink* out_;
  bool header_written_ = false;
  bool closed_ = false;
  std::vector<uint8_t> cur_;
  std::vector<uint8_t> next_dict_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  uint64_t total_in_ = 0;
  std::deque<std::shared_ptr<GzipJob>> inflight_;
  DeflateStream inline_zs_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::shared_ptr<GzipJob>> queue_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

// ---------------------------------------------------------------------------
// zstd.

struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

Status ZstdCheck(size_t rc, std::string_view what) {
  if (ZSTD_isError(rc)) {
    return MakeError(ErrorCode::kInternal, "zstd {}: {}", what, ZSTD_getErrorName(rc));
  }
  return OkStatus();
}

class ZstdCompressor : public ByteSink {
 public:
  explicit ZstdCompressor(ByteSink* out) : out_(out), buf_(ZSTD_CStreamOutSize()) {}

  Status Init(int level, int threads) {
    cctx_.reset(ZSTD_createCCtx());
    if (!cctx_) return MakeError(ErrorCode::kInternal, "zstd: out of memory");
    STRATA_RETURN_IF_ERROR(
        ZstdCheck(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level), "level"));
    STRATA_RETURN_IF_ERROR(
        ZstdCheck(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1), "checksum"));
    // nbWorkers >= 1 always: the single-threaded mode produces other bytes.
    size_t rc = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, std::max(1, threads));
    if (ZSTD_isError(rc)) {
      return MakeError(ErrorCode::kUnimplemented, "zstd: libzstd built without multi-threading: {}",
                       ZSTD_getErrorName(rc));
    }
    return ZstdCheck(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_jobSize, kZstdJobSize), "jobSize");
  }

  Status Write(const void* data, size_t size) override {
    if (closed_) return MakeError(ErrorCode::kFailedPrecondition, "zstd: write after close");
    ZSTD_inBuffer in{data, size, 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      STRATA_RETURN_IF_ERROR(
          ZstdCheck(ZSTD_compressStream2(cctx_.get(), &out, &in, ZSTD_e_continue), "compress"));
      if (out.pos > 0) STRATA_RETURN_IF_ERROR(out_->Write(buf_.data(), out.pos));
    }
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t remaining = ZSTD_compressStream2(cctx_.get(), &out, &in, ZSTD_e_end);
      STRATA_RETURN_IF_ERROR(ZstdCheck(remaining, "end"));
      if (out.pos > 0) STRATA_RETURN_IF_ERROR(out_->Write(buf_.data(), out.pos));
      if (remaining == 0) break;
    }
    cctx_.reset();  // joins libzstd's workers now rather than at destruction
    return out_->Close();
  }

 private:
  ByteSink* out_;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> cctx_;
  std::vector<uint8_t> buf_;
  bool closed_ = false;
};

class PassthroughSink : public ByteSink {
 public:
  explicit PassthroughSink(ByteSink* out) : out_(out) {}
  Status Write(const void* data, size_t size) override { return out_->Write(data, size); }
  Status Close() override { return out_->Close(); }

 private:
  ByteSink* out_;
};

// ---------------------------------------------------------------------------
// Decompressors.

// Buffers reads from the underlying source.
class InputBuffer {
 public:
  explicit InputBuffer(ByteSource* in) : in_(in), buf_(kReadChunk) {}
  // Refills when empty; returns false at the end of the input.
  Result<bool> Fill() {
    if (pos_ < len_) return true;
    if (eof_) return false;
    STRATA_ASSIGN_OR_RETURN(size_t n, in_->Read(buf_.data(), buf_.size()));
    pos_ = 0;
    len_ = n;
    if (n == 0) eof_ = true;
    return n > 0;
  }
  uint8_t* data() { return buf_.data() + pos_; }
  size_t size() const { return len_ - pos_; }
  void Consume(size_t n) { pos_ += n; }

 private:
  ByteSource* in_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  bool eof_ = false;
};

struct InflateStreamDeleter {
  void operator()(z_stream* zs) const {
    inflateEnd(zs);
    delete zs;
  }
};

class GzipSource : public ByteSource {
 public:
  explicit GzipSource(ByteSource* in) : in_(in) {}

  Status Init() {
    auto* zs = new z_stream{};
    if (inflateInit2(zs, 15 + 16) != Z_OK) {
      delete zs;
      return MakeError(ErrorCode::kInternal, "inflateInit2 failed");
    }
    zs_.reset(zs);
    return OkStatus();
  }

  Result<size_t> Read(void* buf, size_t size) override {
    if (size == 0) return 0;
    for (;;) {
      if (finished_) return 0;
      STRATA_ASSIGN_OR_RETURN(bool more, in_.Fill());
      if (!more) {
        if (at_member_start_ && seen_member_) {
          finished_ = true;
          return 0;
        }
        return MakeError(ErrorCode::kDataLoss, "gzip: truncated stream");
      }
      if (at_member_start_) {
        // A new member must start with the gzip magic; anything else after a
        // complete member is trailing garbage.
        if (in_.data()[0] != 0x1f) {
          return MakeError(ErrorCode::kDataLoss, "gzip: trailing garbage after the stream");
        }
        at_member_start_ = false;
      }
      zs_->next_in = in_.data();
      zs_->avail_in = static_cast<uInt>(in_.size());
      zs_->next_out = static_cast<Bytef*>(buf);
      zs_->avail_out = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
      int rc = inflate(zs_.get(), Z_NO_FLUSH);
      in_.Consume(in_.size() - zs_->avail_in);
      size_t produced = std::min<size_t>(size, 1u << 30) - zs_->avail_out;
      if (rc == Z_STREAM_END) {
        seen_member_ = true;
        at_member_start_ = true;
        inflateReset(zs_.get());
      } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && produced == 0 && zs_->avail_in == 0)) {
        return MakeError(ErrorCode::kDataLoss, "gzip: corrupt stream: {}",
                         zs_->msg != nullptr ? zs_->msg : "inflate error");
      }
      if (produced > 0) return produced;
    }
  }

 private:
  InputBuffer in_;
  std::unique_ptr<z_stream, InflateStreamDeleter> zs_;
  bool at_member_start_ = true;
  bool seen_member_ = false;
  bool finished_ = false;
};

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(ByteSource* in) : in_(in) {}

  Status Init() {
    dctx_.reset(ZSTD_createDCtx());
    if (!dctx_) return MakeError(ErrorCode::kInternal, "zstd: out of memory");
    return OkStatus();
  }

  Result<size_t> Read(void* buf, size_t size) override {
    if (size == 0) return 0;
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(bool more, in_.Fill());
      if (!more) {
        if (frame_open_ || !seen_frame_) {
          return MakeError(ErrorCode::kDataLoss, "zstd: truncated stream");
        }
        return 0;
      }
      ZSTD_inBuffer in{in_.data(), in_.size(), 0};
      ZSTD_outBuffer out{buf, size, 0};
      size_t rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
      in_.Consume(in.pos);
      if (ZSTD_isError(rc)) {
        return MakeError(ErrorCode::kDataLoss, "zstd: corrupt stream: {}", ZSTD_getErrorName(rc));
      }
      seen_frame_ = true;
      frame_open_ = rc != 0;
      if (out.pos > 0) return out.pos;
    }
  }

 private:
  InputBuffer in_;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> dctx_;
  bool seen_frame_ = false;
  bool frame_open_ = false;
};

class PassthroughSource : public ByteSource {
 public:
  explicit PassthroughSource(ByteSource* in) : in_(in) {}
  Result<size_t> Read(void* buf, size_t size) override { return in_->Read(buf, size); }

 private:
  ByteSource* in_;
};

}  // namespace

Result<std::unique_ptr<ByteSink>> NewCompressor(const CompressOptions& opts, ByteSink* out) {
  const int threads = ResolveThreads(opts.threads);
  switch (opts.compression) {
    case Compression::kNone:
      return std::make_unique<PassthroughSink>(out);
    case Compression::kGzip: {
      int level = opts.level < 0 ? 1 : opts.level;
      if (level > 9)
        return MakeError(ErrorCode::kInvalidArgument, "gzip level {} not in 0..9", level);
      auto c = std::make_unique<GzipCompressor>(level, threads, out);
      STRATA_RETURN_IF_ERROR(c->Init());
      return c;
    }
    case Compression::kZstd: {
      int level = opts.level < 0 ? 3 : opts.level;
      if (level < 1 || level > 19) {
        return MakeError(ErrorCode::kInvalidArgument, "zstd level {} not in 1..19", level);
      }
      auto c = std::make_unique<ZstdCompressor>(out);
      STRATA_RETURN_IF_ERROR(c->Init(level, threads));
      return c;
    }
    case Compression::kUnknown:
      break;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown compression");
}

Result<std::unique_ptr<ByteSource>> NewDecompressor(Compression compression, ByteSource* in) {
  switch (compression) {
    case Compression::kNone:
      return std::make_unique<PassthroughSource>(in);
    case Compression::kGzip: {
      auto s = std::make_unique<GzipSource>(in);
      STRATA_RETURN_IF_ERROR(s->Init());
      return s;
    }
    case Compression::kZstd: {
      auto s = std::make_unique<ZstdSource>(in);
      STRATA_RETURN_IF_ERROR(s->Init());
      return s;
    }
    case Compression::kUnknown:
      break;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown compression");
}

Compression DetectCompression(std::string_view head) {
  if (head.size() >= 2 && static_cast<uint8_t>(head[0]) == 0x1f &&
      static_cast<uint8_t>(head[1]) == 0x8b) {
    return Compression::kGzip;
  }
  if (head.size() >= 4 && std::memcmp(head.data(), "\x28\xb5\x2f\xfd", 4) == 0) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kUnknown:
      break;
  }
  return "unknown";
}

std::string_view LayerMediaType(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return media_type::kLayerTarGzip;
    case Compression::kZstd:
      return media_type::kLayerTarZstd;
    default:
      return media_type::kLayerTar;
  }
}

}  // namespace strata::oci
