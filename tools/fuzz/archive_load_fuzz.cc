// Image archive loading (oci/archive.h Load): the input is the archive file
// (oci-archive or docker-archive, tar or compressed tar), loaded into a fresh
// store. Errors are fine; a crash, a hang or an error that leaves the store
// changed are not: on failure the store must still hold no image and no blob.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "oci/archive.h"
#include "oci/store.h"
#include "tools/fuzz/fuzz_check.h"
#include "tools/fuzz/scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = strata::fuzz::ScratchDir() / "load";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  const fs::path input = dir / "image.tar";
  {
    std::ofstream out(input, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  {
    auto store = strata::oci::Store::Open(dir / "store");
    FUZZ_CHECK(store.has_value());
    auto loaded = strata::oci::Load(**store, input);
    if (!loaded) {
      // "On any error blobs/ and index.json are exactly as before": empty.
      auto images = (*store)->ListImages();
      FUZZ_CHECK(images.has_value() && images->empty());
      auto blobs = (*store)->ListBlobs();
      FUZZ_CHECK(blobs.has_value() && blobs->empty());
    }
  }
  fs::remove_all(dir, ec);
  return 0;
}
