// `strata build -`: the build context from standard input, as `docker build -`
// takes it. A tar (plain, or gzip/zstd/xz/bzip2/lz4 compressed) is the
// context: extracted by the layer applier (oci/layer_reader.h: every entry
// kept inside the root, no devices, the uncompressed size bounded) into a
// scratch directory under the store's ingest/ dir. Anything else that is not
// compressed is a Dockerfile with an empty context (docker's
// `docker build - < Dockerfile`). The scratch directory, and the context
// hasher's memo for it, are removed when the StdinContext goes (a crash
// leaves them to `strata prune`, as every ingest leftover).
// Not thread-safe; one per build.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "oci/store.h"
#include "oci/util/error.h"
#include "oci/util/file_util.h"

namespace strata::cli {

class StdinContext {
 public:
  // Reads `fd` to its end (at most `max_bytes`, also the bound of the
  // extracted tar). InvalidArgument for more, for a compressed stream that
  // is no tar, or for an entry the applier refuses; DataLoss for corrupt
  // compressed data.
  // `what` names the source in messages ("stdin", or a context URL).
  static Result<StdinContext> Read(const oci::Store& store, int fd, uint64_t max_bytes,
                                   std::string_view what = "stdin");

  StdinContext(StdinContext&& o) noexcept
      : scratch_(std::move(o.scratch_)),
        dir_(std::move(o.dir_)),
        memo_(std::exchange(o.memo_, {})),
        dockerfile_text_(std::move(o.dockerfile_text_)) {}
  StdinContext& operator=(StdinContext&&) = delete;
  ~StdinContext();

  // The context directory (empty when stdin was a Dockerfile).
  const std::filesystem::path& dir() const { return dir_; }
  // Set when stdin was a Dockerfile rather than a tar.
  const std::optional<std::string>& dockerfile_text() const { return dockerfile_text_; }

 private:
  StdinContext() = default;
  ScopedTempDir scratch_;
  std::filesystem::path dir_;
  std::filesystem::path memo_;
  std::optional<std::string> dockerfile_text_;
};

}  // namespace strata::cli
