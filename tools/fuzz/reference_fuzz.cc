// Reference::Parse: never crashes; the normalized form is a fixed point
// (parsing ToString() gives the same reference) and Familiar() parses back to
// the same reference, except for the known ambiguity below.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "oci/reference.h"
#include "tools/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using strata::oci::Reference;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ref = Reference::Parse(text);
  if (!ref) return 0;
  auto again = Reference::Parse(ref->ToString());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *ref);
  auto familiar = Reference::Parse(ref->Familiar());
  FUZZ_CHECK(familiar.has_value());
  FUZZ_CHECK(*familiar == *ref);
  (void)ref->WithoutDigest().ToString();
  return 0;
}
