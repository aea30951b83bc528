#include "oci/compress.h"

#include <libdeflate.h>
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
// gzip: independent members, deflated by libdeflate on worker threads.

struct LibdeflateCompressorDeleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
struct LibdeflateDecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};
using LibdeflateCompressor = std::unique_ptr<libdeflate_compressor, LibdeflateCompressorDeleter>;
using LibdeflateDecompressor =
    std::unique_ptr<libdeflate_decompressor, LibdeflateDecompressorDeleter>;

// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255: nothing machine-specific.
// (libdeflate_gzip_compress would set XFL by level; we write our own.)
constexpr uint8_t kGzipHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
constexpr size_t kGzipOverhead = sizeof(kGzipHeader) + 8;
// With tar entries, a member also ends after this many bytes: memory stays
// bounded if a stream's boundaries never come. WriteTar's never reach it
// (its chunks are at most ~2 MiB plus one PAX header).
constexpr uint64_t kMaxTarChunk = 16 * 1024 * 1024;
// Bounds the input bytes in flight besides the per-worker count, so that
// many cores never mean unbounded memory.
constexpr size_t kMaxInflightBytes = 32 * 1024 * 1024;

// strata level 0..9 -> libdeflate level (compress.h).
int LibdeflateLevel(int level) { return level == 9 ? 12 : level; }

// True when the chunk's byte histogram is flat, as for random or already
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
  // (runs of zeros) that land in the same chunk.
  return sum_sq * 256 * 8 <= n * n * 9;
}

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Bytes of `n` bytes written as stored blocks (RFC 1951 3.2.4): 5 bytes of
// header per block of at most 65535 bytes, at least one block.
size_t StoredSize(size_t n) { return n + 5 * std::max<size_t>(1, (n + 65534) / 65535); }

// Appends `in` as stored blocks, the last one with BFINAL set.
void AppendStored(const std::vector<uint8_t>& in, std::vector<uint8_t>* out) {
  const size_t n = in.size();
  size_t off = 0;
  do {
    size_t len = std::min<size_t>(65535, n - off);
    bool final_block = off + len == n;
    out->push_back(final_block ? 1 : 0);
    out->push_back(static_cast<uint8_t>(len & 0xff));
    out->push_back(static_cast<uint8_t>(len >> 8));
    out->push_back(static_cast<uint8_t>(~len & 0xff));
    out->push_back(static_cast<uint8_t>((~len >> 8) & 0xff));
    out->insert(out->end(), in.begin() + static_cast<std::ptrdiff_t>(off),
                in.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += len;
  } while (off < n);
}

struct GzipJob {
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;  // the whole member
  enum class Kind { kStored, kCompressed, kReused } kind = Kind::kStored;
  Digest chunk;  // set when hashed
  bool done = false;
  bool failed = false;
};

// What a worker owns: its libdeflate state.
struct GzipWorkerState {
  LibdeflateCompressor compressor;
  LibdeflateDecompressor decompressor;  // made on first use
  std::vector<uint8_t> scratch;         // inflate target when verifying
};

class GzipCompressor : public LayerCompressor {
 public:
  GzipCompressor(int level, int threads, const LayerCompressOptions& lopts, ByteSink* out)
      : level_(level),
        threads_(threads),
        tar_entries_(lopts.tar_entries),
        cache_(lopts.cache != nullptr && lopts.cache->params() == GzipMemberParams(level)
                   ? lopts.cache
                   : nullptr),
        record_(lopts.record_members),
        out_(out) {}

  ~GzipCompressor() override { StopWorkers(); }

  Status Init() {
    std::vector<GzipWorkerState> states;
    for (int i = 0; i < threads_; ++i) {
      GzipWorkerState st;
      if (level_ > 0) {
        st.compressor.reset(libdeflate_alloc_compressor(LibdeflateLevel(level_)));
        if (!st.compressor) return MakeError(ErrorCode::kInternal, "libdeflate: out of memory");
      }
      states.push_back(std::move(st));
    }
    if (threads_ == 1) {
      inline_state_ = std::move(states.front());
      return OkStatus();
    }
    for (auto& st : states) {
      workers_.emplace_back([this, w = std::move(st)]() mutable { WorkerLoop(&w); });
    }
    return OkStatus();
  }

  Status OnEntryHeader(uint64_t offset, std::string_view path, int64_t data_size) override {
    if (!tar_entries_) return OkStatus();
    if (offset < pos_) return LateBoundary(offset);
    return chunker_.OnEntryHeader(offset, path, data_size);
  }
  Status OnEntryData(uint64_t offset) override {
    if (!tar_entries_) return OkStatus();
    if (offset < pos_) return LateBoundary(offset);
    return chunker_.OnEntryData(offset);
  }

  Status Write(const void* data, size_t size) override {
    if (closed_) return MakeError(ErrorCode::kFailedPrecondition, "gzip: write after close");
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
      if (CutHere()) STRATA_RETURN_IF_ERROR(Submit());
      const uint64_t next = NextCut();
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, next - pos_));
      cur_.insert(cur_.end(), p, p + n);
      p += n;
      size -= n;
      pos_ += n;
      if (pos_ == next) STRATA_RETURN_IF_ERROR(Submit());
    }
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    // The last chunk; an empty stream is one member of an empty chunk.
    if (!cur_.empty() || submitted_ == 0) STRATA_RETURN_IF_ERROR(Submit());
    while (!inflight_.empty()) STRATA_RETURN_IF_ERROR(EmitOldest());
    StopWorkers();
    return out_->Close();
  }

  ChunkStats stats() const override { return stats_; }
  const std::vector<GzipMember>& members() const override { return members_; }

 private:
  Status LateBoundary(uint64_t offset) {
    return MakeError(ErrorCode::kInternal, "gzip: tar boundary at {} announced after byte {}",
                     offset, pos_);
  }

  // True if a member ends at the current position (and the chunk has bytes).
  bool CutHere() {
    if (cur_.empty()) return false;
    return tar_entries_ && chunker_.CutAt(pos_);
  }

  // The next offset > pos_ where the current member ends.
  uint64_t NextCut() {
    const uint64_t start = pos_ - cur_.size();
    if (tar_entries_) return std::min(chunker_.NextCutAfter(pos_), start + kMaxTarChunk);
    return start + kGzipFixedChunk;
  }

  Status Submit() {
    auto job = std::make_shared<GzipJob>();
    job->in = std::move(cur_);
    cur_ = {};
    ++submitted_;
    inflight_bytes_ += job->in.size();
    if (threads_ == 1) {
      job->failed = !MakeMember(&inline_state_, job.get());
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
    // Bounded pipeline: at most two chunks per worker and kMaxInflightBytes
    // of input in flight keeps memory flat while every worker stays busy.
    while (inflight_.size() >= static_cast<size_t>(2 * threads_) ||
           (inflight_bytes_ > kMaxInflightBytes && inflight_.size() > 1)) {
      STRATA_RETURN_IF_ERROR(EmitOldest());
    }
    return OkStatus();
  }

  // Runs on a worker (or inline): turns job->in into a whole member.
  bool MakeMember(GzipWorkerState* w, GzipJob* job) const {
    const std::vector<uint8_t>& in = job->in;
    const uint32_t crc = libdeflate_crc32(0, in.data(), in.size());
    auto finish = [&](GzipJob::Kind kind) {
      job->kind = kind;
      uint8_t trailer[8];
      PutLe32(trailer, crc);
      PutLe32(trailer + 4, static_cast<uint32_t>(in.size()));
      job->out.insert(job->out.end(), trailer, trailer + 8);
    };
    job->out.clear();
    if (level_ == 0 || LooksIncompressible(in)) {
      // No deflate CPU, and no lookup: copying costs as much as storing.
      job->out.reserve(kGzipOverhead + StoredSize(in.size()));
      job->out.assign(kGzipHeader, kGzipHeader + sizeof(kGzipHeader));
      AppendStored(in, &job->out);
      finish(GzipJob::Kind::kStored);
      return true;
    }
    if (cache_ != nullptr || record_) {
      Digester d;
      d.Update(in.data(), in.size());
      job->chunk = d.Finish();
    }
    if (cache_ != nullptr && cache_->Fetch(job->chunk, in.size(), &job->out) &&
        VerifyMember(w, in, crc, job->out)) {
      job->kind = GzipJob::Kind::kReused;
      return true;
    }
    const size_t bound = libdeflate_deflate_compress_bound(w->compressor.get(), in.size());
    job->out.resize(sizeof(kGzipHeader) + bound);
    std::memcpy(job->out.data(), kGzipHeader, sizeof(kGzipHeader));
    size_t n = libdeflate_deflate_compress(w->compressor.get(), in.data(), in.size(),
                                           job->out.data() + sizeof(kGzipHeader), bound);
    if (n == 0 || n >= StoredSize(in.size())) {
      // Deflate did not shrink it: stored blocks, decided by libdeflate's
      // output, which depends only on the chunk and the parameters.
      job->out.resize(sizeof(kGzipHeader));
      AppendStored(in, &job->out);
      finish(GzipJob::Kind::kStored);
      return true;
    }
    job->out.resize(sizeof(kGzipHeader) + n);
    finish(GzipJob::Kind::kCompressed);
    return true;
  }

  // A member from the cache is used only if it is one complete gzip member
  // with our header whose deflate data inflates to exactly `in` and whose
  // trailer matches: a wrong table entry can never change a blob.
  static bool VerifyMember(GzipWorkerState* w, const std::vector<uint8_t>& in, uint32_t crc,
                           const std::vector<uint8_t>& member) {
    if (member.size() < kGzipOverhead ||
        std::memcmp(member.data(), kGzipHeader, sizeof(kGzipHeader)) != 0) {
      return false;
    }
    const uint8_t* trailer = member.data() + member.size() - 8;
    if (GetLe32(trailer) != crc || GetLe32(trailer + 4) != static_cast<uint32_t>(in.size())) {
      return false;
    }
    if (!w->decompressor) {
      w->decompressor.reset(libdeflate_alloc_decompressor());
      if (!w->decompressor) return false;
    }
    w->scratch.resize(in.size());
    size_t used_in = 0;
    size_t produced = 0;
    const size_t body = member.size() - kGzipOverhead;
    if (libdeflate_deflate_decompress_ex(w->decompressor.get(), member.data() + sizeof(kGzipHeader),
                                         body, w->scratch.data(), w->scratch.size(), &used_in,
                                         &produced) != LIBDEFLATE_SUCCESS) {
      return false;
    }
    return used_in == body && produced == in.size() &&
           (in.empty() || std::memcmp(w->scratch.data(), in.data(), in.size()) == 0);
  }

  Status EmitOldest() {
    std::shared_ptr<GzipJob> job = inflight_.front();
    inflight_.pop_front();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return job->done; });
    }
    inflight_bytes_ -= job->in.size();
    if (job->failed) return MakeError(ErrorCode::kInternal, "gzip: compression failed");
    switch (job->kind) {
      case GzipJob::Kind::kStored:
        ++stats_.stored;
        break;
      case GzipJob::Kind::kCompressed:
        ++stats_.compressed;
        break;
      case GzipJob::Kind::kReused:
        ++stats_.reused;
        break;
    }
    if (record_ && job->kind != GzipJob::Kind::kStored) {
      members_.push_back({.chunk = job->chunk,
                          .offset = out_bytes_,
                          .length = job->out.size(),
                          .size = job->in.size()});
    }
    out_bytes_ += job->out.size();
    return out_->Write(job->out.data(), job->out.size());
  }

  void WorkerLoop(GzipWorkerState* w) {
    for (;;) {
      std::shared_ptr<GzipJob> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      bool ok = MakeMember(w, job.get());
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
  const bool tar_entries_;
  const GzipMemberCache* const cache_;
  const bool record_;
  ByteSink* out_;
  bool closed_ = false;
  TarChunker chunker_;
  std::vector<uint8_t> cur_;
  uint64_t pos_ = 0;        // input bytes received
  uint64_t out_bytes_ = 0;  // output bytes emitted
  int64_t submitted_ = 0;   // chunks handed to Submit
  size_t inflight_bytes_ = 0;
  std::deque<std::shared_ptr<GzipJob>> inflight_;
  GzipWorkerState inline_state_;
  ChunkStats stats_;
  std::vector<GzipMember> members_;

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

// zstd and none as a LayerCompressor: boundaries mean nothing to them.
class BoundaryBlindCompressor : public LayerCompressor {
 public:
  explicit BoundaryBlindCompressor(std::unique_ptr<ByteSink> inner) : inner_(std::move(inner)) {}
  Status Write(const void* data, size_t size) override { return inner_->Write(data, size); }
  Status Close() override { return inner_->Close(); }
  Status OnEntryHeader(uint64_t, std::string_view, int64_t) override { return OkStatus(); }
  Status OnEntryData(uint64_t) override { return OkStatus(); }
  ChunkStats stats() const override { return {}; }
  const std::vector<GzipMember>& members() const override { return members_; }

 private:
  std::unique_ptr<ByteSink> inner_;
  std::vector<GzipMember> members_;  // always empty
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

std::string GzipMemberParams(int level) {
  if (level < 0) level = 1;
  return fmt::format("libdeflate-{} level={}", LIBDEFLATE_VERSION_STRING, LibdeflateLevel(level));
}

Result<std::unique_ptr<LayerCompressor>> NewLayerCompressor(const CompressOptions& opts,
                                                            const LayerCompressOptions& lopts,
                                                            ByteSink* out) {
  const int threads = ResolveThreads(opts.threads);
  switch (opts.compression) {
    case Compression::kNone:
      return std::make_unique<BoundaryBlindCompressor>(std::make_unique<PassthroughSink>(out));
    case Compression::kGzip: {
      int level = opts.level < 0 ? 1 : opts.level;
      if (level > 9)
        return MakeError(ErrorCode::kInvalidArgument, "gzip level {} not in 0..9", level);
      auto c = std::make_unique<GzipCompressor>(level, threads, lopts, out);
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
      return std::make_unique<BoundaryBlindCompressor>(std::move(c));
    }
    case Compression::kUnknown:
      break;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown compression");
}

Result<std::unique_ptr<ByteSink>> NewCompressor(const CompressOptions& opts, ByteSink* out) {
  STRATA_ASSIGN_OR_RETURN(auto c, NewLayerCompressor(opts, {}, out));
  return std::unique_ptr<ByteSink>(std::move(c));
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
