// registry::ParseChallenges on one WWW-Authenticate value: never crashes;
// schemes and parameter names come back lowercased.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/auth.h"
#include "tools/fuzz/fuzz_check.h"

namespace {
bool Lower(const std::string& s) {
  for (unsigned char c : s) {
    if (std::isupper(c)) return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto challenges = strata::registry::ParseChallenges(text);
  if (!challenges) return 0;
  for (const auto& c : *challenges) {
    FUZZ_CHECK(Lower(c.scheme));
    for (const auto& [key, value] : c.params) FUZZ_CHECK(Lower(key));
    (void)c.Param("realm");
  }
  return 0;
}
