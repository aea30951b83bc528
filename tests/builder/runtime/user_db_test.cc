#include "builder/runtime/user_db.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "broken:x:notanumber:1:x:/x:/bin/sh\n"
    "short:x:5\n";
constexpr std::string_view kGroup =
    "root:x:0:\n"
    "wheel:x:10:root,app\n"
    "staff:x:50:app\n"
    "app:x:1000:\n"
    "devs:x:60:bob,app\n"
    "nogroup:x:65534:\n";

Result<ResolvedUser> Resolve(std::string_view spec) {
  return ResolveUserFromDb(spec, std::string(kPasswd), std::string(kGroup));
}

TEST(UserDbTest, ParsesPasswdSkippingMalformedLines) {
  auto entries = ParsePasswd(kPasswd);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].name, "app");
  EXPECT_EQ(entries[2].uid, 1000u);
  EXPECT_EQ(entries[2].gid, 1000u);
  EXPECT_EQ(entries[2].home, "/home/app");
}

TEST(UserDbTest, ParsesGroupMembers) {
  auto groups = ParseGroup(kGroup);
  ASSERT_EQ(groups.size(), 6u);
  EXPECT_EQ(groups[1].name, "wheel");
  EXPECT_THAT(groups[1].members, ElementsAre("root", "app"));
  EXPECT_THAT(groups[0].members, IsEmpty());
}

TEST(UserDbTest, EmptySpecIsRootWithItsGroups) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve(""));
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_EQ(u.home, "/root");
  EXPECT_THAT(u.supplementary_gids, ElementsAre(10u));
}

TEST(UserDbTest, NameGivesPasswdGidHomeAndSupplementaryGroups) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("app"));
  EXPECT_EQ(u, (ResolvedUser{1000, 1000, {10, 50, 60}, "/home/app"}));
}

TEST(UserDbTest, NameColonGroupNameOverridesPrimaryGid) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("app:staff"));
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 50u);
  // staff is the primary group now, so it is not repeated.
  EXPECT_THAT(u.supplementary_gids, ElementsAre(10u, 60u));
}

TEST(UserDbTest, NameColonNumericGidNeedNotExist) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("app:4242"));
  EXPECT_EQ(u.gid, 4242u);
  EXPECT_EQ(u.uid, 1000u);
}

TEST(UserDbTest, NumericUidMatchingAnEntryUsesIt) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("1000"));
  EXPECT_EQ(u.gid, 1000u);
  EXPECT_EQ(u.home, "/home/app");
  EXPECT_THAT(u.supplementary_gids, ElementsAre(10u, 50u, 60u));
}

TEST(UserDbTest, UnknownNumericUidGetsGidZeroAndRootHome) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("4321"));
  EXPECT_EQ(u, (ResolvedUser{4321, 0, {}, "/"}));
  ASSERT_OK_AND_ASSIGN(auto v, Resolve("4321:77"));
  EXPECT_EQ(v, (ResolvedUser{4321, 77, {}, "/"}));
}

TEST(UserDbTest, NumericUidWithGroupName) {
  ASSERT_OK_AND_ASSIGN(auto u, Resolve("4321:staff"));
  EXPECT_EQ(u.uid, 4321u);
  EXPECT_EQ(u.gid, 50u);
}

TEST(UserDbTest, UnknownUserIsNotFoundWithDockersMessage) {
  auto r = Resolve("foo");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(), "unable to find user foo: no matching entries in passwd file");
}

TEST(UserDbTest, UnknownGroupIsNotFoundWithDockersMessage) {
  auto r = Resolve("app:nope");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(), "unable to find group nope: no matching entries in group file");
}

TEST(UserDbTest, MissingFilesStillResolveNumericIds) {
  ASSERT_OK_AND_ASSIGN(auto u, ResolveUserFromDb("12:34", std::nullopt, std::nullopt));
  EXPECT_EQ(u, (ResolvedUser{12, 34, {}, "/"}));
  auto r = ResolveUserFromDb("app", std::nullopt, std::nullopt);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(UserDbTest, RejectsMalformedSpecsAndOutOfRangeIds) {
  for (std::string_view spec : {"app:", ":staff", "a:b:c", "99999999999", "1:4294967296"}) {
    auto r = Resolve(spec);
    ASSERT_FALSE(r.has_value()) << spec;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << spec;
  }
}

TEST(UserDbTest, ReadsEtcFilesFromTheRootfs) {
  auto root = MakeTempDir();
  WriteTestFile(root.path() / "etc/passwd", kPasswd);
  WriteTestFile(root.path() / "etc/group", kGroup);
  ASSERT_OK_AND_ASSIGN(auto u, ResolveUser(root.path(), "app:staff"));
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 50u);
}

TEST(UserDbTest, RootfsWithoutEtcResolvesNumericOnly) {
  auto root = MakeTempDir();
  ASSERT_OK_AND_ASSIGN(auto u, ResolveUser(root.path(), "5:6"));
  EXPECT_EQ(u.uid, 5u);
  auto r = ResolveUser(root.path(), "app");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

// A hostile image makes /etc/passwd an absolute symlink to a host file. The
// lookup must resolve it inside the rootfs, never reading the host's file.
TEST(UserDbTest, AbsoluteSymlinkResolvesInsideTheRootfs) {
  auto host = MakeTempDir();
  auto root = MakeTempDir();
  const std::filesystem::path host_passwd = host.path() / "passwd";
  WriteTestFile(host_passwd, "evil:x:0:0:evil:/evil:/bin/sh\n");
  std::filesystem::create_directories(root.path() / "etc");
  std::filesystem::create_symlink(host_passwd, root.path() / "etc/passwd");

  // The host file is not reachable: "evil" does not exist.
  auto r = ResolveUser(root.path(), "evil");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);

  // The same absolute path inside the rootfs is what the link means.
  WriteTestFile(root.path() / host_passwd.relative_path(), "inner:x:7:8:i:/inner:/bin/sh\n");
  ASSERT_OK_AND_ASSIGN(auto u, ResolveUser(root.path(), "inner"));
  EXPECT_EQ(u.uid, 7u);
  EXPECT_EQ(u.home, "/inner");
  EXPECT_FALSE(ResolveUser(root.path(), "evil").has_value());
}

TEST(UserDbTest, DotDotSymlinkCannotEscapeTheRootfs) {
  auto root = MakeTempDir();
  std::filesystem::create_directories(root.path() / "etc");
  // ../../../../etc/passwd from rootfs/etc clamps at the rootfs root.
  std::filesystem::create_symlink("../../../../../../../../etc/passwd.real",
                                  root.path() / "etc/passwd");
  WriteTestFile(root.path() / "etc/passwd.real", "clamped:x:9:9:c:/c:/bin/sh\n");
  ASSERT_OK_AND_ASSIGN(auto u, ResolveUser(root.path(), "clamped"));
  EXPECT_EQ(u.uid, 9u);
}

TEST(UserDbTest, NonRegularPasswdIsRefused) {
  auto root = MakeTempDir();
  std::filesystem::create_directories(root.path() / "etc");
  ASSERT_EQ(::mkfifo((root.path() / "etc/passwd").c_str(), 0644), 0);
  auto r = ResolveUser(root.path(), "app");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace strata::builder
