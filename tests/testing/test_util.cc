#include "tests/testing/test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>

namespace strata::testing {

std::filesystem::path TestData(std::string_view rel) {
  return std::filesystem::path(STRATA_TESTDATA_DIR) / rel;
}

ScopedTempDir MakeTempDir() {
  auto d = ScopedTempDir::Create({}, "strata-test-");
  if (!d) {
    ADD_FAILURE() << d.error().message();
    std::abort();
  }
  return std::move(*d);
}

void WriteTestFile(const std::filesystem::path& path, std::string_view content, int mode) {
  auto s = MakeDirs(path.parent_path());
  ASSERT_TRUE(s.has_value()) << s.error().message();
  auto w = WriteFileAtomic(path, content, static_cast<mode_t>(mode));
  ASSERT_TRUE(w.has_value()) << w.error().message();
}

CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  std::string full = command + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool HaveTool(const std::string& tool) {
  return RunCommand("command -v " + tool + " >/dev/null").exit_code == 0;
}

}  // namespace strata::testing
