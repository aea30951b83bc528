// Digest::Parse: never crashes; what parses round-trips through ToString.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "oci/digest.h"
#include "tools/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = strata::oci::Digest::Parse(text);
  if (!d) return 0;
  FUZZ_CHECK(d->valid());
  FUZZ_CHECK(d->ToString() == text);
  auto again = strata::oci::Digest::Parse(d->ToString());
  FUZZ_CHECK(again && *again == *d);
  return 0;
}
