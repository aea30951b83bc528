#include "oci/layer_reader.h"

#include "oci/layer_applier.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "oci/util/archive_handle.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"
#include "oci/util/path.h"
#include "oci/whiteout.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadChunk = 128 * 1024;

// Hashes the uncompressed stream (diffID) and stops it at the size limit.
class DiffIdSource : public ByteSource {
 public:
  DiffIdSource(ByteSource* in, uint64_t limit) : in_(in), limit_(limit) {}
  Result<size_t> Read(void* buf, size_t size) override {
    STRATA_ASSIGN_OR_RETURN(size_t n, in_->Read(buf, size));
    if (hasher_.bytes() + n > limit_) {
      limit_exceeded_ = true;
      return MakeError(ErrorCode::kInvalidArgument,
                       "uncompressed layer exceeds the limit of {} bytes ({}); raise it with "
                       "--max-layer-size or STRATA_MAX_LAYER_SIZE",
                       limit_, FormatByteSize(limit_));
    }
    hasher_.Update(buf, n);
    return n;
  }
  uint64_t bytes() const { return hasher_.bytes(); }
  bool limit_exceeded() const { return limit_exceeded_; }
  Digest Finish() { return hasher_.Finish(); }

 private:
  ByteSource* in_;
  uint64_t limit_;
  bool limit_exceeded_ = false;
  Digester hasher_;
};

struct ReadContext {
  ByteSource* src;
  std::vector<char> buf = std::vector<char>(kReadChunk);
  std::optional<Error> error = std::nullopt;
};

la_ssize_t ReadCallback(archive*, void* ctx, const void** out) {
  auto* c = static_cast<ReadContext*>(ctx);
  auto n = c->src->Read(c->buf.data(), c->buf.size());
  if (!n) {
    c->error = n.error();
    return -1;
  }
  *out = c->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// ApplyTar with the diffID check inside, so that a mismatch is rolled back
// too.
Result<ApplyResult> ApplyTarImpl(ByteSource* compressed, Compression compression,
                                 const fs::path& target, const ApplyOptions& opts,
                                 std::string_view layer_name, const Digest& expected_diff_id) {
  auto fail = [&](const Error& e, std::string_view entry = {}) {
    if (entry.empty()) return Unexpected(e.Wrap(fmt::format("layer {}", layer_name)));
    return Unexpected(e.Wrap(fmt::format("layer {}: entry \"{}\"", layer_name, entry)));
  };
  // `where`: "" or " (in entry \"x\")" / " (after entry \"x\")".
  auto broken = [&](const Error& e, std::string_view where = {}) {
    return Unexpected(
        Error(e.code(), fmt::format("layer {} is corrupt: {}{}", layer_name, e.message(), where)));
  };
  auto after = [](std::string_view entry) {
    return entry.empty() ? std::string() : fmt::format(" (after entry \"{}\")", entry);
  };
  auto in = [](std::string_view entry) { return fmt::format(" (in entry \"{}\")", entry); };
  // An error from the byte chain (blob -> decompressor -> size limit).
  auto source_failed = [&](const Error& e, const DiffIdSource& tar, std::string_view where = {}) {
    if (tar.limit_exceeded() || e.code() != ErrorCode::kDataLoss) return fail(e);
    return broken(e, where);
  };
  if (compression == Compression::kUnknown) {
    return fail(Error(ErrorCode::kInvalidArgument, "unknown layer compression"));
  }
  // Check the magic bytes against what the media type declares.
  auto head_or = ReadUpTo(compressed, 4);
  if (!head_or) return fail(head_or.error());
  std::string head = std::move(*head_or);
  const size_t got = head.size();
  Compression actual = DetectCompression(head);
  if (actual != compression) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("declared {} but the data is {}", CompressionName(compression),
                                  got == 0 ? "empty" : CompressionName(actual))));
  }
  PrefixSource prefixed(std::move(head), compressed);
  auto decompressor = NewDecompressor(compression, &prefixed);
  if (!decompressor) return fail(decompressor.error());
  DiffIdSource tar(decompressor->get(), opts.max_uncompressed_bytes);

  int root = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return fail(ErrnoError(errno, "open target " + target.string()).error());
  UniqueFd root_fd(root);

  ArchiveReadPtr a(archive_read_new());
  if (!a) return fail(Error(ErrorCode::kInternal, "archive_read_new failed"));
  // Tar formats only (ustar, pax, gnu); no filters: we decompressed already.
  archive_read_support_format_tar(a.get());
  ReadContext ctx{&tar};
  if (archive_read_open(a.get(), &ctx, nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
    if (ctx.error) return source_failed(*ctx.error, tar);
    return broken(Error(ErrorCode::kInvalidArgument,
                        fmt::format("not a tar stream: {}", ArchiveErrorText(a.get()))));
  }
  auto applier_owner = TarEntryApplier::New(root_fd.get(), opts);
  TarEntryApplier& applier = *applier_owner;
  if (auto s = applier.Start(); !s) return fail(s.error());

  auto run = [&]() -> Result<ApplyResult> {
    ApplyResult result;
    std::string last;
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      // ARCHIVE_RETRY (a damaged header) leaves no usable entry either.
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        if (ctx.error) return source_failed(*ctx.error, tar, after(last));
        return broken(Error(ErrorCode::kInvalidArgument,
                            fmt::format("malformed tar: {}", ArchiveErrorText(a.get()))),
                      after(last));
      }
      const char* p = archive_entry_pathname(e);
      last = p != nullptr ? p : "";
      auto s = applier.Apply(a.get(), e);
      if (!s) {
        if (ctx.error) return source_failed(*ctx.error, tar, in(last));
        if (applier.stream_error()) return broken(s.error(), in(last));
        return fail(s.error(), last);
      }
      ++result.entries;
    }
    if (auto s = applier.Finish(); !s) return fail(s.error());
    // Drain what follows the end-of-archive blocks: it belongs to the diffID,
    // and the compressed source verifies its digest only at its end.
    std::vector<char> buf(kReadChunk);
    for (;;) {
      auto n = tar.Read(buf.data(), buf.size());
      if (!n) return source_failed(n.error(), tar);
      if (*n == 0) break;
    }
    result.uncompressed_size = tar.bytes();
    result.diff_id = tar.Finish();
    if (expected_diff_id.valid() && result.diff_id != expected_diff_id) {
      return MakeError(ErrorCode::kDataLoss, "layer {}: diffID is {}, the config says {}",
                       layer_name, result.diff_id, expected_diff_id);
    }
    return result;
  };
  auto result = run();
  if (!result) {
    if (auto s = applier.Rollback(); !s) {
      return Unexpected(Error(result.error().code(),
                              fmt::format("{} (removing the partial layer also failed: {})",
                                          result.error().message(), s.error().message())));
    }
  }
  return result;
}

// Hashes a stored blob through the store's reader; the actual digest even
// when it does not match the name (the reader's complaint at the end is
// expected then).
Result<Digest> HashStoredBlob(const Store& store, const Digest& d) {
  STRATA_ASSIGN_OR_RETURN(BlobReader reader, store.Open(d));
  Digester h;
  std::vector<char> buf(kReadChunk);
  for (;;) {
    auto n = reader.Read(buf.data(), buf.size());
    if (!n) {
      if (static_cast<int64_t>(h.bytes()) == reader.size()) break;  // mismatch at the end
      return Unexpected(n.error());
    }
    if (*n == 0) break;
    h.Update(buf.data(), *n);
  }
  return h.Finish();
}

}  // namespace

Result<ApplyResult> ApplyTar(ByteSource* compressed, Compression compression,
                             const fs::path& target, const ApplyOptions& opts,
                             std::string_view layer_name) {
  return ApplyTarImpl(compressed, compression, target, opts, layer_name, Digest());
}

Result<ApplyResult> ApplyLayer(const Store& store, const Descriptor& layer,
                               const Digest& expected_diff_id, const fs::path& target,
                               const ApplyOptions& opts) {
  Compression c = media_type::LayerCompression(layer.media_type);
  if (c == Compression::kUnknown) {
    return MakeError(ErrorCode::kUnimplemented, "layer {}: unsupported media type {}", layer.digest,
                     layer.media_type);
  }
  auto reader = store.Open(layer.digest);
  if (!reader) return Unexpected(reader.error().Wrap(fmt::format("layer {}", layer.digest)));
  BlobSource src(&*reader);
  auto r = ApplyTarImpl(&src, c, target, opts, layer.digest.ToString(), expected_diff_id);
  // Tell a blob whose bytes changed from a well-formed blob holding a bad
  // layer: the stream mostly stops before the reader checks the digest at its
  // end. A changed blob is the cause whatever the symptom was; only a full
  // disk (Unavailable) is not worth reading the blob again.
  if (!r && r.error().code() != ErrorCode::kUnavailable) {
    auto actual = HashStoredBlob(store, layer.digest);
    if (actual && *actual != layer.digest) {
      return MakeError(ErrorCode::kDataLoss,
                       "layer {} is corrupt: digest mismatch: expected {}, got {}", layer.digest,
                       layer.digest, *actual);
    }
  }
  return r;
}

}  // namespace strata::oci
