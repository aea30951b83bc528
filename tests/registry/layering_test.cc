// registry/ depends on oci/ only and speaks through the Transport seam: no
// file includes curl, builder/ or tools/ (the libcurl transport lives in
// tools/curl and is injected).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace strata::registry {
namespace {

TEST(RegistryLayeringTest, IncludesOnlyOciTheStandardLibraryAndJson) {
  const auto dir = std::filesystem::path(STRATA_TESTDATA_DIR).parent_path() / "registry";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext != ".h" && ext != ".cc") continue;
    ++files;
    std::ifstream in(e.path());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (!line.starts_with("#include")) continue;
      const std::string where = e.path().filename().string() + ":" + std::to_string(n);
      EXPECT_EQ(line.find("curl"), std::string::npos) << where << ": " << line;
      EXPECT_EQ(line.find("\"builder/"), std::string::npos) << where << ": " << line;
      EXPECT_EQ(line.find("\"tools/"), std::string::npos) << where << ": " << line;
    }
  }
  EXPECT_GT(files, 10);
}

}  // namespace
}  // namespace strata::registry
