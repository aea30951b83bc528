#include "builder/engine/lockfile.h"

#include "oci/util/file_util.h"
#include "tests/builder/engine/engine_harness.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

ResolvedInput Image(const std::string& ref, const std::string& content) {
  return {ResolvedInput::Kind::kImage, ref, oci::Digest::Of(content), "linux/amd64"};
}
ResolvedInput Url(const std::string& url, const std::string& content) {
  return {ResolvedInput::Kind::kUrl, url, oci::Digest::Of(content), ""};
}

TEST(LockfileTest, RoundTripsInStableOrder) {
  Lockfile lf;
  lf.Update({Image("docker.io/library/z:1", "z"), Image("docker.io/library/a:1", "a"),
             Url("https://example.com/f", "f")});
  const std::string text = lf.Serialize();
  EXPECT_LT(text.find("library/a:1"), text.find("library/z:1"));
  auto back = Lockfile::Parse(text, "strata.lock");
  ASSERT_OK(back);
  EXPECT_EQ(back->Serialize(), text);
  EXPECT_OK(back->Check(Image("docker.io/library/a:1", "a")));
  EXPECT_OK(back->Check(Url("https://example.com/f", "f")));
}

TEST(LockfileTest, CheckNamesMovedAndMissingInputs) {
  Lockfile lf;
  lf.Update({Image("docker.io/library/a:1", "a"), Url("https://example.com/f", "f")});
  auto moved = lf.Check(Image("docker.io/library/a:1", "a2"));
  ASSERT_FALSE(moved.has_value());
  EXPECT_EQ(moved.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(moved.error().message(), HasSubstr("docker.io/library/a:1 (linux/amd64) moved"));
  auto missing = lf.Check(Image("docker.io/library/b:1", "b"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message(), HasSubstr("b:1 (linux/amd64) is not pinned"));
  auto other_platform = lf.Check(
      {ResolvedInput::Kind::kImage, "docker.io/library/a:1", oci::Digest::Of("a"), "linux/arm64"});
  EXPECT_FALSE(other_platform.has_value());
  auto url = lf.Check(Url("https://example.com/f", "changed"));
  ASSERT_FALSE(url.has_value());
  EXPECT_THAT(url.error().message(), HasSubstr("ADD https://example.com/f changed"));
  // Update keeps the pins of inputs a build did not use (other targets).
  lf.Update({Image("docker.io/library/a:1", "a2")});
  EXPECT_OK(lf.Check(Url("https://example.com/f", "f")));
  EXPECT_OK(lf.Check(Image("docker.io/library/a:1", "a2")));
}

TEST(LockfileTest, GitSourcesArePinnedByCommit) {
  ResolvedInput g;
  g.kind = ResolvedInput::Kind::kGit;
  g.ref = "https://example.com/r.git#main";
  g.commit = std::string(40, 'a');
  Lockfile lf;
  lf.Update({g});
  auto round = Lockfile::Parse(lf.Serialize(), "x");
  ASSERT_OK(round);
  EXPECT_OK(round->Check(g));
  ResolvedInput moved = g;
  moved.commit = std::string(40, 'b');
  auto m = round->Check(moved);
  ASSERT_FALSE(m.has_value());
  EXPECT_THAT(m.error().message(),
              HasSubstr("git https://example.com/r.git#main moved: strata.lock pins commit " +
                        std::string(40, 'a')));
  ResolvedInput other = g;
  other.ref = "https://example.com/r.git#dev";
  auto missing = round->Check(other);
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message(), HasSubstr("r.git#dev is not pinned"));
}

TEST(LockfileTest, RefusesMalformedAndUnknown) {
  EXPECT_FALSE(Lockfile::Parse("[]", "x").has_value());
  EXPECT_FALSE(Lockfile::Parse(R"({"version":2})", "x").has_value());
  auto unknown = Lockfile::Parse(R"({"version":1,"helm":{}})", "dir/strata.lock");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_THAT(unknown.error().message(), HasSubstr("dir/strata.lock: unknown key \"helm\""));
  EXPECT_FALSE(
      Lockfile::Parse(R"({"version":1,"images":{"a":{"linux/amd64":"nope"}}})", "x").has_value());
  auto git = Lockfile::Parse(R"({"version":1,"git":{"https://g/r.git#main":"abc"}})", "x");
  ASSERT_OK(git);
  EXPECT_EQ(git->git.size(), 1u);
}

// The executor calls check_input for every image and URL and fails the step.
TEST(LockfileTest, ExecutorFailsAtTheFirstUnpinnedInput) {
  testing::EngineHarness h;
  auto base = h.MakeBase("base:latest");
  ASSERT_OK(base);
  BuildOptions o = h.options();
  o.fetcher = [&](const std::string&, const fs::path& dest, std::string*) {
    return WriteFileAtomic(dest, "served");
  };
  Lockfile lf;
  lf.Update({{ResolvedInput::Kind::kImage, "docker.io/library/base:latest", base->digest,
              oci::Platform::Host().ToString()}});
  o.check_input = [&](const ResolvedInput& in) { return lf.Check(in); };
  auto r = h.Build("FROM base:latest\nADD https://example.com/t /t\n", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.error().message(), HasSubstr("ADD https://example.com/t is not pinned"));
  lf.Update({Url("https://example.com/t", "served")});
  ASSERT_OK(h.Build("FROM base:latest\nADD https://example.com/t /t\n", o));
}

}  // namespace
}  // namespace strata::builder
