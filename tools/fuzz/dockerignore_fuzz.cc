// .dockerignore: the input up to the first NUL is the ignore file, each
// NUL-separated piece after it a path to match. Never crashes; MayReincludeUnder
// is consistent with Matches (an excluded path under `dir` re-included by an
// exception means the walker must descend).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/fuzz/builder_headers.h"
#include "tools/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using strata::builder::DockerIgnore;
  if (size > 16 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nul = text.find('\0');
  std::string_view content = text.substr(0, nul);
  auto ignore = DockerIgnore::Parse(content);
  if (!ignore) return 0;
  (void)strata::CleanPath(content);
  if (nul == std::string_view::npos) {
    (void)ignore->Matches("a/b/c");
    return 0;
  }
  std::string_view rest = text.substr(nul + 1);
  while (true) {
    size_t next = rest.find('\0');
    std::string path = strata::CleanPath(rest.substr(0, next));
    bool excluded = ignore->Matches(path);
    size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      std::string parent = path.substr(0, slash);
      // A path kept while its parent is excluded can only be kept by an
      // exception, so the walker must be told to descend into the parent.
      if (!excluded && ignore->Matches(parent)) {
        FUZZ_CHECK(ignore->HasExceptions());
        FUZZ_CHECK(ignore->MayReincludeUnder(parent));
      }
    }
    if (next == std::string_view::npos) break;
    rest = rest.substr(next + 1);
  }
  return 0;
}
