// The layer applier (oci/layer_reader.h ApplyTar) on hostile tars. The input
// is the layer blob: gzip or zstd when it starts with their magic, plain tar
// otherwise; odd-sized inputs are applied in overlay form (whiteouts become
// 0/0 devices), even-sized ones flattened. Each input is applied into a fresh
// root inside a sandbox directory; nothing may appear next to that root (no
// ".." escape), and a failed apply must leave the root empty (the applier's
// rollback contract for an empty target).
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "oci/layer_reader.h"
#include "oci/media_types.h"
#include "tools/fuzz/fuzz_check.h"
#include "tools/fuzz/scratch_dir.h"

namespace {

class SpanSource : public strata::oci::ByteSource {
 public:
  SpanSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  strata::Result<size_t> Read(void* buf, size_t size) override {
    size_t n = std::min(size, size_ - pos_);
    if (n > 0) std::memcpy(buf, data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

strata::oci::Compression Sniff(const uint8_t* data, size_t size) {
  using strata::oci::Compression;
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return Compression::kGzip;
  if (size >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  using namespace strata::oci;
  const fs::path sandbox = strata::fuzz::ScratchDir() / "sandbox";
  const fs::path root = sandbox / "root";
  std::error_code ec;
  fs::remove_all(sandbox, ec);
  fs::create_directories(root);

  ApplyOptions opts;
  opts.form = size % 2 == 1 ? ApplyForm::kOverlay : ApplyForm::kFlattened;
  opts.allow_devices = false;
  opts.preserve_owners = geteuid() == 0;
  opts.max_uncompressed_bytes = 8 << 20;
  SpanSource source(data, size);
  auto result = ApplyTar(&source, Sniff(data, size), root, opts, "fuzz");

  for (const auto& entry : fs::directory_iterator(sandbox)) {
    FUZZ_CHECK(entry.path().filename() == "root");
  }
  if (!result) FUZZ_CHECK(fs::is_empty(root));
  fs::remove_all(sandbox, ec);
  return 0;
}
