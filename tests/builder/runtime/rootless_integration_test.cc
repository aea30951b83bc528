// RunInRootlessNamespace for real: the test binary re-executes itself in a
// user namespace (single-id mapping, written by the child itself) and a
// probe test, run only in that child, reports what it sees. Run as root here
// (CI), which maps uid 0 to itself, or as any user; the re-exec, the marker, the extra
// environment and the exit code are what is checked. The mapping through
// newuidmap is exercised by tests/integration/rootless_integration_test.cc.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "builder/runtime/rootless.h"
#include "oci/util/file_util.h"
#include "oci/util/userns.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::MakeTempDir;
using ::testing::HasSubstr;

constexpr char kProbeOut[] = "STRATA_ROOTLESS_PROBE_OUT";

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs only as the re-executed child: writes what it sees, exits 7.
TEST(RootlessIntegrationChildProbe, ReportsItsNamespace) {
  const char* out = std::getenv(kProbeOut);
  if (out == nullptr || !AdoptRootlessChild()) GTEST_SKIP() << "only in the re-executed child";
  std::ofstream f(out);
  f << "uid=" << ::geteuid() << " userns=" << InUserNamespace() << "\n"
    << Slurp("/proc/self/uid_map") << Slurp("/proc/self/setgroups");
  f.close();
  std::_Exit(7);
}

TEST(RootlessIntegrationTest, SingleIdChildIsRootInItsOwnNamespace) {
  auto tmp = MakeTempDir();
  RootlessPlan plan;
  plan.single_id = true;
  plan.uid_map = RootlessIdMap(::getuid(), {});
  plan.gid_map = RootlessIdMap(::getgid(), {});
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=RootlessIntegrationChildProbe.ReportsItsNamespace";
  char* argv[] = {self.data(), filter.data(), nullptr};
  std::string out = (tmp.path() / "probe.txt").string();
  auto code = RunInRootlessNamespace(plan, argv, {std::string(kProbeOut) + "=" + out});
  if (!code && code.error().code() == ErrorCode::kFailedPrecondition) {
    GTEST_SKIP() << "no user namespaces here: " << code.error().message();
  }
  ASSERT_OK(code);
  EXPECT_EQ(*code, 7);
  std::string seen = Slurp(out);
  EXPECT_THAT(seen, HasSubstr("uid=0 userns=1\n"));
  EXPECT_THAT(seen, ::testing::ContainsRegex("\n *0 +" + std::to_string(::getuid()) + " +1\n"));
  EXPECT_THAT(seen, HasSubstr("deny"));
}

TEST(RootlessIntegrationTest, RefusedHelperIsOneLineNamingTheMap) {
  // A "newuidmap" that refuses, as shadow's does for a range not in /etc/subuid.
  auto tmp = MakeTempDir();
  auto helper = tmp.path() / "newuidmap";
  testing::WriteTestFile(
      helper, "#!/bin/sh\necho 'newuidmap: uid range [1-2) -> [5-6) not allowed' >&2\nexit 1\n");
  ASSERT_EQ(::chmod(helper.c_str(), 0755), 0);
  RootlessPlan plan;
  plan.newuidmap = helper;
  plan.newgidmap = helper;
  plan.uid_map = RootlessIdMap(::getuid(), {{5, 1}});
  plan.gid_map = RootlessIdMap(::getgid(), {{5, 1}});
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=RootlessIntegrationChildProbe.*";
  char* argv[] = {self.data(), filter.data(), nullptr};
  auto code = RunInRootlessNamespace(plan, argv, {});
  ASSERT_FALSE(code.has_value());
  EXPECT_EQ(code.error().code(), ErrorCode::kFailedPrecondition);
  if (code.error().message().find("refuses unprivileged user namespaces") != std::string::npos) {
    GTEST_SKIP() << code.error().message();
  }
  EXPECT_THAT(code.error().message(),
              HasSubstr("mapping 0 " + std::to_string(::getuid()) + " 1 1 5 1 refused"));
  EXPECT_THAT(code.error().message(), HasSubstr("uid range [1-2) -> [5-6) not allowed"));
  EXPECT_EQ(code.error().message().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace strata::builder
