// layer_commit_bench: commits one directory as a layer into a scratch store
// and reports the throughput, for tools/bench/layer_bench.sh.
//
//   layer_commit_bench DIR gzip|zstd|none [LEVEL] [THREADS] [THEN_DIR]
//
// Prints one line: "<codec> level=<n> threads=<n> tar_bytes=<n> blob_bytes=<n>
// seconds=<s> MB/s=<uncompressed MB per second> reused=<n> compressed=<n>
// stored=<n>" (gzip members). With THEN_DIR, DIR is committed first
// (untimed) and the line describes the commit of THEN_DIR into the same store:
// an incremental commit that can copy DIR's members. The store lives in a
// temp dir next to $TMPDIR and is removed afterwards.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "oci/compress.h"
#include "oci/layer_writer.h"
#include "oci/store.h"
#include "oci/util/file_util.h"

int main(int argc, char** argv) {
  using namespace strata;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DIR gzip|zstd|none [LEVEL] [THREADS] [THEN_DIR]\n", argv[0]);
    return 2;
  }
  oci::LayerWriterOptions opts;
  std::string codec = argv[2];
  if (codec == "gzip") {
    opts.compress.compression = oci::Compression::kGzip;
  } else if (codec == "zstd") {
    opts.compress.compression = oci::Compression::kZstd;
  } else if (codec == "none") {
    opts.compress.compression = oci::Compression::kNone;
  } else {
    std::fprintf(stderr, "unknown compression %s\n", argv[2]);
    return 2;
  }
  if (argc > 3) opts.compress.level = std::atoi(argv[3]);
  if (argc > 4) opts.compress.threads = std::atoi(argv[4]);
  auto tmp = ScopedTempDir::Create({}, "layer-bench-");
  if (!tmp) {
    std::fprintf(stderr, "%s\n", tmp.error().message().c_str());
    return 1;
  }
  auto store = oci::Store::Open(tmp->path() / "store");
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message().c_str());
    return 1;
  }
  const char* dir = argv[1];
  if (argc > 5) {
    auto first = oci::CommitLayer(**store, dir, opts);
    if (!first) {
      std::fprintf(stderr, "%s\n", first.error().message().c_str());
      return 1;
    }
    dir = argv[5];
  }
  auto start = std::chrono::steady_clock::now();
  auto info = oci::CommitLayer(**store, dir, opts);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!info) {
    std::fprintf(stderr, "%s\n", info.error().message().c_str());
    return 1;
  }
  std::printf(
      "%s level=%d threads=%d tar_bytes=%lld blob_bytes=%lld seconds=%.3f MB/s=%.1f reused=%lld "
      "compressed=%lld stored=%lld\n",
      codec.c_str(), opts.compress.level, opts.compress.threads,
      static_cast<long long>(info->uncompressed_size),
      static_cast<long long>(info->descriptor.size), secs,
      static_cast<double>(info->uncompressed_size) / 1e6 / secs,
      static_cast<long long>(info->chunks.reused), static_cast<long long>(info->chunks.compressed),
      static_cast<long long>(info->chunks.stored));
  return 0;
}
