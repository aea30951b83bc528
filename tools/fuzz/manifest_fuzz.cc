// Manifest/Index parsing (non-throwing JSON): never crashes or throws; what
// parses serializes to canonical bytes that parse to the same canonical bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "oci/manifest.h"
#include "tools/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using strata::oci::Index;
  using strata::oci::Manifest;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)strata::oci::DetectManifestMediaType(text);
  if (auto m = Manifest::Parse(text)) {
    std::string canonical = m->Serialize();
    auto again = Manifest::Parse(canonical);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->Serialize() == canonical);
  }
  if (auto ix = Index::Parse(text)) {
    std::string canonical = ix->Serialize();
    auto again = Index::Parse(canonical);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->Serialize() == canonical);
  }
  return 0;
}
