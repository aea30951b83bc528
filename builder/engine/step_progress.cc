#include "builder/engine/step_progress.h"

#include <fmt/format.h>

namespace strata::builder {

std::string CommitSummary(const oci::LayerInfo& info, oci::Compression compression,
                          double seconds) {
  double mb = static_cast<double>(info.uncompressed_size) / 1e6;
  std::string line = fmt::format(
      "layer {}: {:.1f} MB tar -> {:.1f} MB {} in {:.2f}s ({:.0f} MB/s)",
      info.descriptor.digest.Short(), mb, static_cast<double>(info.descriptor.size) / 1e6,
      oci::CompressionName(compression), seconds, seconds > 0 ? mb / seconds : 0.0);
  const auto& c = info.chunks;
  if (c.reused > 0) {
    // Members copied from earlier layers by the chunk cache (oci/chunk_cache.h).
    line +=
        fmt::format(", {}/{} gzip members reused", c.reused, c.reused + c.compressed + c.stored);
  }
  return line;
}

}  // namespace strata::builder
