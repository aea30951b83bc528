#include "tools/strata/stdin_context.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "builder/engine/add_archive.h"
#include "builder/engine/context_hasher.h"
#include "oci/compress.h"
#include "oci/layer_reader.h"

namespace strata::cli {

namespace fs = std::filesystem;

Result<StdinContext> StdinContext::Read(const oci::Store& store, int fd, uint64_t max_bytes,
                                        std::string_view what) {
  StdinContext c;
  STRATA_ASSIGN_OR_RETURN(c.scratch_, ScopedTempDir::Create(store.IngestDir(), "context-"));
  c.dir_ = c.scratch_.path() / "context";
  c.memo_ = builder::ContextHasher::MemoPath(store.CacheDir(), c.dir_);
  STRATA_RETURN_IF_ERROR(MakeDirs(c.dir_));
  const fs::path raw = c.scratch_.path() / "stdin";
  {
    STRATA_ASSIGN_OR_RETURN(auto out, OpenFile(raw, O_WRONLY | O_CREAT | O_EXCL, 0600));
    uint64_t total = 0;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, fmt::format("read the build context from {}", what));
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
      if (total > max_bytes) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "build context from {}: larger than {} (--max-layer-size)", what,
                         oci::FormatByteSize(max_bytes));
      }
      STRATA_RETURN_IF_ERROR(WriteAll(out.get(), buf, static_cast<size_t>(n)));
    }
  }
  STRATA_ASSIGN_OR_RETURN(bool is_tar, builder::IsTarArchive(raw));
  if (!is_tar) {
    STRATA_ASSIGN_OR_RETURN(auto text, ReadFile(raw));
    if (oci::DetectCompression(std::string_view(text).substr(0, 8)) != oci::Compression::kNone) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "build context from {}: compressed data that is not a tar archive", what);
    }
    c.dockerfile_text_ = std::move(text);
    return c;
  }
  STRATA_ASSIGN_OR_RETURN(auto src, builder::OpenDecompressed(raw));
  oci::ApplyOptions ao;
  ao.preserve_owners = ::geteuid() == 0;
  ao.max_uncompressed_bytes = max_bytes;
  auto applied = oci::ApplyTar(src.get(), oci::Compression::kNone, c.dir_, ao, std::string(what));
  if (!applied) return Unexpected(applied.error().Wrap(fmt::format("build context from {}", what)));
  (void)RemoveAll(raw);
  return c;
}

StdinContext::~StdinContext() {
  if (!memo_.empty()) (void)RemoveAll(memo_);
}

}  // namespace strata::cli
