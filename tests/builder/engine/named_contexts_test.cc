// --build-context: the flag's parser and the executor's overrides of FROM,
// COPY --from and a stage of the same name, on the hermetic harness.
#include "builder/engine/named_contexts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "builder/engine/executor.h"
#include "oci/archive.h"
#include "tests/builder/engine/engine_harness.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;

TEST(ParseNamedContextTest, DirAndDockerImage) {
  ScopedTempDir dir = *ScopedTempDir::Create();
  auto d = ParseNamedContext("src=" + dir.path().string());
  ASSERT_OK(d);
  EXPECT_EQ(d->name, "src");
  EXPECT_EQ(d->context.kind, NamedContext::Kind::kDir);
  EXPECT_EQ(d->context.dir, dir.path().string());
  auto i = ParseNamedContext("alpine:3.18=docker-image://docker.io/library/alpine:3.19");
  ASSERT_OK(i);
  EXPECT_EQ(i->name, "alpine:3.18");
  EXPECT_EQ(i->context.kind, NamedContext::Kind::kImage);
  EXPECT_EQ(i->context.image, "docker.io/library/alpine:3.19");
}

TEST(ParseNamedContextTest, GitSources) {
  for (const char* flag : {"x=https://github.com/a/b.git", "x=git@github.com:a/b.git#v1:dir",
                           "x=ssh://git@host:2222/a/b#main"}) {
    auto r = ParseNamedContext(flag);
    ASSERT_OK(r);
    EXPECT_EQ(r->context.kind, NamedContext::Kind::kGit) << flag;
    EXPECT_EQ(r->context.url, std::string(flag).substr(2));
  }
}

TEST(ParseNamedContextTest, RefusedFormsAreNamed) {
  for (const auto& [flag, want] : std::vector<std::pair<std::string, std::string>>{
           {"x=https://github.com/a/b#main", "a git context"},
           {"x=https://github.com/a/b.git?ref=main", "query form"},
           {"x=target:other", "bake target"},
           {"x=s3://bucket/x", "s3://"}}) {
    auto r = ParseNamedContext(flag);
    ASSERT_FALSE(r.has_value()) << flag;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnimplemented) << flag;
    EXPECT_THAT(r.error().message(), HasSubstr(want)) << flag;
    EXPECT_THAT(r.error().message(), HasSubstr(flag)) << flag;
  }
  for (const char* bad : {"nothing", "=/tmp", "x=", "x=docker-image://UPPER:case", "x=/no/such/dir",
                          "x=oci-layout:///no/such", "x=oci-layout:///tmp@sha256:abc"}) {
    auto r = ParseNamedContext(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(FindNamedContextTest, ExactThenCaseInsensitive) {
  std::map<std::string, NamedContext> m;
  m["Deps"].value = "a";
  m["alpine:3.18"].value = "b";
  ASSERT_NE(FindNamedContext(m, "deps"), nullptr);
  EXPECT_EQ(FindNamedContext(m, "deps")->value, "a");
  EXPECT_EQ(FindNamedContext(m, "alpine:3.18")->value, "b");
  EXPECT_EQ(FindNamedContext(m, "alpine"), nullptr);
  EXPECT_EQ(FindNamedContext({}, "x"), nullptr);
}

class NamedContextExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(h_.MakeBase());
    ASSERT_OK(h_.MakeImage("other:1", {{File("other.txt", "from other image\n")}}));
    dir_ = *ScopedTempDir::Create();
    strata::testing::WriteTestFile(dir_.path() / "d.txt", "from dir\n");
  }
  BuildOptions With(std::map<std::string, std::string> flags) {
    BuildOptions o = h_.options();
    for (const auto& [k, v] : flags) {
      auto p = ParseNamedContext(k + "=" + v);
      EXPECT_TRUE(p.has_value()) << k;
      if (p) o.named_contexts[p->name] = p->context;
    }
    return o;
  }
  EngineHarness h_;
  ScopedTempDir dir_;
};

TEST_F(NamedContextExecutorTest, DirOverridesCopyFromAndAStageOfThatName) {
  // Stage "deps" would fail (no such file): overwritten, it is never built.
  constexpr std::string_view kFile =
      "FROM scratch AS deps\nCOPY nosuch /x\n"
      "FROM base\nCOPY --from=deps /d.txt /a.txt\nCOPY --from=extra /d.txt /b.txt\n";
  ASSERT_OK(
      h_.Build(kFile, With({{"deps", dir_.path().string()}, {"extra", dir_.path().string()}})));
  EXPECT_EQ(h_.ReadImageFile("/a.txt"), "from dir\n");
  EXPECT_EQ(h_.ReadImageFile("/b.txt"), "from dir\n");
  // A change in the directory reaches the image (no stale cache hit).
  strata::testing::WriteTestFile(dir_.path() / "d.txt", "changed\n");
  ASSERT_OK(
      h_.Build(kFile, With({{"deps", dir_.path().string()}, {"extra", dir_.path().string()}})));
  EXPECT_EQ(h_.ReadImageFile("/a.txt"), "changed\n");
}

TEST_F(NamedContextExecutorTest, DockerImageOverridesFromAndCopyFrom) {
  ASSERT_OK(h_.Build(
      "FROM alpine:3.18\nCOPY --from=tools /other.txt /copied.txt\n",
      With({{"alpine:3.18", "docker-image://other:1"}, {"tools", "docker-image://other:1"}})));
  EXPECT_EQ(h_.ReadImageFile("/other.txt"), "from other image\n");
  EXPECT_EQ(h_.ReadImageFile("/copied.txt"), "from other image\n");
}

TEST_F(NamedContextExecutorTest, DirAsFromBase) {
  ASSERT_OK(h_.Build("FROM src\nCOPY --from=base /etc/passwd /passwd\n",
                     With({{"src", dir_.path().string()}})));
  EXPECT_EQ(h_.ReadImageFile("/d.txt"), "from dir\n");
  EXPECT_TRUE(h_.ReadImageFile("/passwd").has_value());
}

TEST_F(NamedContextExecutorTest, OciLayoutByTagDigestOrSoleEntry) {
  // The layout comes from another store: its blobs are copied in.
  EngineHarness other;
  ASSERT_OK_AND_ASSIGN(auto desc, other.MakeImage("lay:1", {{File("lay.txt", "from layout\n")}}));
  const fs::path layout = dir_.path() / "layout";
  ASSERT_OK(oci::SaveOciLayout(other.store(), {"lay:1"}, layout, "v1"));
  ASSERT_FALSE(h_.store().Has(desc.digest));
  for (const std::string& v : {"oci-layout://" + layout.string() + ":v1",
                               "oci-layout://" + layout.string() + "@" + desc.digest.ToString(),
                               "oci-layout://" + layout.string()}) {
    auto built = h_.Build("FROM base\nCOPY --from=lay /lay.txt /copied.txt\n", With({{"lay", v}}));
    ASSERT_TRUE(built.has_value()) << v << ": " << built.error().message();
    EXPECT_EQ(h_.ReadImageFile("/copied.txt"), "from layout\n") << v;
  }
  EXPECT_TRUE(h_.store().Has(desc.digest));
  auto r = h_.Build("FROM lay\n", With({{"lay", "oci-layout://" + layout.string() + ":v2"}}));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("no tag v2 in the layout (it holds: v1)"));
}

TEST_F(NamedContextExecutorTest, UrlTarballThroughTheInjectedFetcher) {
  ASSERT_EQ(strata::testing::RunCommand("tar -C " + dir_.path().string() + " -czf " +
                                        (dir_.path() / "ctx.tgz").string() + " d.txt")
                .exit_code,
            0);
  std::vector<std::string> fetched;
  BuildOptions o = With({{"web", "https://example.com/ctx.tgz"}});
  o.fetcher = [&](const std::string& url, const fs::path& dest, std::string*) -> Status {
    fetched.push_back(url);
    std::error_code ec;
    fs::copy_file(dir_.path() / (url.ends_with(".tgz") ? "ctx.tgz" : "d.txt"), dest, ec);
    if (ec) return MakeError(ErrorCode::kInternal, "copy: {}", ec.message());
    return OkStatus();
  };
  ASSERT_OK(h_.Build("FROM base\nCOPY --from=web /d.txt /web.txt\n", o));
  EXPECT_EQ(h_.ReadImageFile("/web.txt"), "from dir\n");
  EXPECT_THAT(fetched, ::testing::ElementsAre("https://example.com/ctx.tgz"));
  // Not a tarball: refused naming the URL.
  o.named_contexts["web"].url = "https://example.com/d.txt";
  auto r = h_.Build("FROM base\nCOPY --from=web /d.txt /web.txt\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("https://example.com/d.txt is not a tar archive"));
}

TEST_F(NamedContextExecutorTest, RunMountFromANamedContext) {
  h_.runner().On("step-a").Write("/ran", "yes");
  // "src" is no stage and no image: only the override makes it resolve.
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=bind,from=src,target=/m step-a\n",
                     With({{"src", dir_.path().string()}})));
  ASSERT_FALSE(h_.runner().calls().empty());
  bool bound = false;
  for (const auto& b : h_.runner().calls().back().binds) bound |= b.destination == "/m";
  EXPECT_TRUE(bound);
  auto r = h_.Build("FROM base\nRUN --mount=type=bind,from=src,target=/m step-a\n");
  EXPECT_FALSE(r.has_value()) << "without the override src is an image that is nowhere";
}

TEST_F(NamedContextExecutorTest, MissingDockerImageIsNotFoundNamingIt) {
  auto r = h_.Build("FROM base\nCOPY --from=x /a /a\n", With({{"x", "docker-image://nosuch:1"}}));
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("nosuch"));
}

}  // namespace
}  // namespace strata::builder
