#include "builder/engine/git_source.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::StatusIs;
using ::testing::HasSubstr;

GitRef Parsed(std::string_view s) {
  auto r = ParseGitRef(s);
  EXPECT_TRUE(r.has_value()) << s << ": " << r.error().message();
  if (!r || !r->has_value()) {
    ADD_FAILURE() << s << " is not git";
    return {};
  }
  return **r;
}

TEST(GitSourceTest, HttpsUrlEndingInDotGitWithRefAndSubdir) {
  GitRef g = Parsed("https://example.com/org/repo.git#v1.2:sub/dir");
  EXPECT_EQ(g.remote, "https://example.com/org/repo.git");
  EXPECT_EQ(g.ref, "v1.2");
  EXPECT_EQ(g.subdir, "sub/dir");
  EXPECT_EQ(g.host, "example.com");
  EXPECT_FALSE(g.ssh);
}

TEST(GitSourceTest, HttpUrlWithFragmentIsGitNeverAFile) {
  // The case that once wrote the server's HTML page into an image.
  EXPECT_TRUE(IsGitSource("http://127.0.0.1:8080/repo.git#main"));
  GitRef g = Parsed("http://127.0.0.1:8080/repo.git#main");
  EXPECT_EQ(g.host, "127.0.0.1:8080");
  EXPECT_EQ(g.ref, "main");
  EXPECT_EQ(g.subdir, "");
}

TEST(GitSourceTest, HttpUrlsNotEndingInDotGitAreNotGit) {
  EXPECT_FALSE(IsGitSource("https://example.com/file.tar.gz"));
  EXPECT_FALSE(IsGitSource("https://example.com/page#section"));
  EXPECT_FALSE(IsGitSource("https://example.com/repo.git/file"));
}

TEST(GitSourceTest, ScpLikeFormHasHostAndPath) {
  GitRef g = Parsed("git@github.com:org/repo.git#main");
  EXPECT_EQ(g.remote, "git@github.com:org/repo.git");
  EXPECT_EQ(g.host, "github.com");
  EXPECT_EQ(g.ref, "main");
  EXPECT_TRUE(g.ssh);
  GitRef bare = Parsed("deploy@git.internal.example:repo");
  EXPECT_EQ(bare.host, "git.internal.example");
  EXPECT_EQ(bare.ref, "");
}

TEST(GitSourceTest, SshAndGitSchemes) {
  GitRef g = Parsed("ssh://root@127.0.0.1:2222/srv/repo.git#refs/heads/x:d");
  EXPECT_EQ(g.remote, "ssh://root@127.0.0.1:2222/srv/repo.git");
  EXPECT_EQ(g.host, "127.0.0.1:2222");
  EXPECT_EQ(g.ref, "refs/heads/x");
  EXPECT_EQ(g.subdir, "d");
  EXPECT_TRUE(g.ssh);
  GitRef plain = Parsed("git://example.com/repo");
  EXPECT_FALSE(plain.ssh);
  EXPECT_EQ(plain.host, "example.com");
}

TEST(GitSourceTest, LocalPathsAndOtherSchemesAreNotGit) {
  for (const char* s : {"./repo.git", "../x.git", "/abs/repo.git", "repo.git", "dir/file",
                        "ftp://example.com/r.git", "file:///srv/r.git", "user@:path", "@host:p",
                        "a b@host:p", "user@host:"}) {
    EXPECT_FALSE(IsGitSource(s)) << s;
  }
}

TEST(GitSourceTest, SubdirLeavingTheTreeIsRefused) {
  auto r = ParseGitRef("https://example.com/r.git#main:../../etc");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r, StatusIs(ErrorCode::kInvalidArgument, HasSubstr("leaves the tree")));
  EXPECT_TRUE(IsGitSource("https://example.com/r.git#main:../../etc"));
  EXPECT_EQ(Parsed("https://example.com/r.git#main:/a/./b/").subdir, "a/b");
  EXPECT_EQ(Parsed("https://example.com/r.git#:.").subdir, "");
}

TEST(GitSourceTest, QueryFormIsRefusedByName) {
  auto r = ParseGitRef("https://example.com/r.git?ref=main&subdir=x");
  EXPECT_THAT(r, StatusIs(ErrorCode::kUnimplemented, HasSubstr("query form")));
}

TEST(GitSourceTest, CommitIds) {
  EXPECT_TRUE(IsCommitId(std::string(40, 'a')));
  EXPECT_TRUE(IsCommitId(std::string(64, '0')));
  EXPECT_FALSE(IsCommitId(std::string(39, 'a')));
  EXPECT_FALSE(IsCommitId(std::string(40, 'A')));
  EXPECT_FALSE(IsCommitId("main"));
}

TEST(GitSourceTest, RedactUrlHidesPasswordsOnly) {
  EXPECT_EQ(RedactUrl("https://user:tok3n@example.com/r.git"),
            "https://user:xxxxx@example.com/r.git");
  EXPECT_EQ(RedactUrl("https://example.com/r.git"), "https://example.com/r.git");
  EXPECT_EQ(RedactUrl("git@github.com:org/r.git"), "git@github.com:org/r.git");
  EXPECT_EQ(RedactUrl("fatal: https://a:b@h/x.git and http://c:d@e:80 failed"),
            "fatal: https://a:xxxxx@h/x.git and http://c:xxxxx@e:80 failed");
}

}  // namespace
}  // namespace strata::builder
