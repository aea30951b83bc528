#include "builder/runtime/rootless.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oci/util/userns.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RootlessTest, ParseSubIdsByNameOrId) {
  const char* text =
      "# comment\n"
      "alice:100000:65536\n"
      "bob:165536:65536\n"
      "1000:300000:10\n"
      "\n"
      "alice:400000:5\n"
      "alice:bad:5\n"
      "alice:500000:0\n"
      "alice:4294967290:10\n"
      "alice\n";
  EXPECT_THAT(
      ParseSubIds(text, "alice", 1000),
      ElementsAre(SubIdRange{100000, 65536}, SubIdRange{300000, 10}, SubIdRange{400000, 5}));
  EXPECT_THAT(ParseSubIds(text, "bob", 1001), ElementsAre(SubIdRange{165536, 65536}));
  EXPECT_TRUE(ParseSubIds(text, "carol", 1002).empty());
  // No login name: only the numeric form matches.
  EXPECT_THAT(ParseSubIds(text, "", 1000), ElementsAre(SubIdRange{300000, 10}));
}

TEST(RootlessTest, IdMapPutsTheUserAtZeroAndRangesAfter) {
  EXPECT_THAT(RootlessIdMap(1000, {}), ElementsAre(IdMapping{0, 1000, 1}));
  EXPECT_THAT(RootlessIdMap(1000, {{100000, 65536}, {300000, 10}}),
              ElementsAre(IdMapping{0, 1000, 1}, IdMapping{1, 100000, 65536},
                          IdMapping{65537, 300000, 10}));
  std::vector<SubIdRange> many(400, SubIdRange{100000, 1});
  EXPECT_EQ(RootlessIdMap(1000, many).size(), 340u);  // the kernel's limit
}

RootlessHost Host(const fs::path& bin_dir) {
  RootlessHost h;
  h.uid = 1000;
  h.gid = 1000;
  h.user = "alice";
  h.max_user_namespaces = "15000\n";
  h.subuid = "alice:100000:65536\n";
  h.subgid = "alice:200000:65536\n";
  h.path_env = bin_dir.string();
  return h;
}

fs::path BinDirWithHelpers(const fs::path& dir) {
  for (const char* name : {"newuidmap", "newgidmap"}) {
    WriteTestFile(dir / name, "#!/bin/sh\nexit 0\n");
    EXPECT_EQ(::chmod((dir / name).c_str(), 0755), 0);
  }
  return dir;
}

TEST(RootlessTest, PlanWithRangesUsesTheHelpers) {
  auto tmp = MakeTempDir();
  fs::path bin = BinDirWithHelpers(tmp.path());
  ASSERT_OK_AND_ASSIGN(RootlessPlan plan, PlanRootless(Host(bin)));
  EXPECT_FALSE(plan.single_id);
  EXPECT_EQ(plan.newuidmap, bin / "newuidmap");
  EXPECT_EQ(plan.newgidmap, bin / "newgidmap");
  EXPECT_THAT(plan.uid_map, ElementsAre(IdMapping{0, 1000, 1}, IdMapping{1, 100000, 65536}));
  EXPECT_THAT(plan.gid_map, ElementsAre(IdMapping{0, 1000, 1}, IdMapping{1, 200000, 65536}));
  EXPECT_EQ(DescribePlan(plan),
            "user namespace: uid map 0:1000:1 1:100000:65536, gid map 0:1000:1 1:200000:65536");
}

TEST(RootlessTest, PlanWithoutRangesMapsTheUserAlone) {
  auto tmp = MakeTempDir();
  RootlessHost h = Host(tmp.path());  // no helpers needed
  h.subuid = std::nullopt;
  h.subgid = "";
  ASSERT_OK_AND_ASSIGN(RootlessPlan plan, PlanRootless(h));
  EXPECT_TRUE(plan.single_id);
  EXPECT_THAT(plan.uid_map, ElementsAre(IdMapping{0, 1000, 1}));
  EXPECT_THAT(DescribePlan(plan), HasSubstr("no /etc/subuid range"));
}

TEST(RootlessTest, EachMissingPrerequisiteIsOneLine) {
  auto tmp = MakeTempDir();
  fs::path bin = BinDirWithHelpers(tmp.path());
  auto check = [](const RootlessHost& h, const std::string& want) {
    auto r = PlanRootless(h);
    ASSERT_FALSE(r.has_value()) << want;
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_THAT(r.error().message(), HasSubstr(want));
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  };
  RootlessHost h = Host(bin);
  h.max_user_namespaces = "0\n";
  check(h, "user.max_user_namespaces");
  h = Host(bin);
  h.unprivileged_userns_clone = "0\n";
  check(h, "kernel.unprivileged_userns_clone=1");
  h = Host(bin);
  h.subgid = "";
  check(h, "alice has a range in /etc/subuid but none in /etc/subgid");
  auto empty = MakeTempDir();
  h = Host(empty.path());
  check(h, "newuidmap not found in PATH; install Debian's uidmap");
  // An enabled clone switch is no obstacle.
  h = Host(bin);
  h.unprivileged_userns_clone = "1\n";
  EXPECT_TRUE(PlanRootless(h).has_value());
}

TEST(RootlessTest, TunCheckNamesTheDeviceOnlyInAUserNamespace) {
  auto tmp = MakeTempDir();
  fs::path missing = tmp.path() / "tun";
  auto s = CheckRootlessTun(missing);
  if (!InUserNamespace()) {
    EXPECT_TRUE(s.has_value());
  } else {
    ASSERT_FALSE(s.has_value());
    EXPECT_THAT(s.error().message(), HasSubstr(missing.string()));
    EXPECT_THAT(s.error().message(), HasSubstr("--network none"));
  }
}

}  // namespace
}  // namespace strata::builder
