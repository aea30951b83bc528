#include "builder/engine/provenance.h"

#include "oci/util/file_util.h"
#include "tests/builder/engine/engine_harness.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ProvenanceTest, RedactUrlDropsCredentials) {
  EXPECT_EQ(StripUrlUserinfo("https://user:pw@example.com/a@b"), "https://example.com/a@b");
  EXPECT_EQ(StripUrlUserinfo("https://example.com/x"), "https://example.com/x");
  EXPECT_EQ(StripUrlUserinfo("https://tok@host:8443"), "https://host:8443");
}

TEST(ProvenanceTest, ImagePurl) {
  ResolvedInput in{ResolvedInput::Kind::kImage, "docker.io/library/debian:bookworm",
                   oci::Digest::Of("m"), "linux/amd64"};
  EXPECT_EQ(ImagePurl(in), "pkg:docker/debian@bookworm?platform=linux%2Famd64");
  in.ref = "127.0.0.1:5000/team/app:1";
  EXPECT_EQ(ImagePurl(in), "pkg:docker/127.0.0.1%3A5000/team/app@1?platform=linux%2Famd64");
}

ProvenanceInput Input() {
  ProvenanceInput in;
  in.dockerfile_path = "Dockerfile";
  in.platform = "linux/amd64";
  in.build_args = {{"VERSION", "1.2"}};
  in.secret_ids = {"token"};
  in.inputs = {
      {ResolvedInput::Kind::kImage, "docker.io/library/debian:12", oci::Digest::Of("m"),
       "linux/amd64"},
      {ResolvedInput::Kind::kUrl, "https://u:hunter2@example.com/f", oci::Digest::Of("f"), ""}};
  in.builder_id = "https://strata.invalid/builder";
  in.builder_version = "0.1";
  in.started_on = "2024-01-01T00:00:00Z";
  in.finished_on = "2024-01-01T00:00:05Z";
  in.dockerfile_text = "FROM debian:12\n";
  in.build_config = {{"stages", 1}};
  return in;
}

TEST(ProvenanceTest, PredicateRecordsDefinitionDependenciesAndNoSecrets) {
  auto p = ProvenancePredicate(Input());
  const auto& def = p["buildDefinition"];
  EXPECT_EQ(def["externalParameters"]["configSource"]["path"], "Dockerfile");
  EXPECT_EQ(def["externalParameters"]["request"]["args"]["build-arg:VERSION"], "1.2");
  EXPECT_EQ(def["externalParameters"]["request"]["secrets"][0]["id"], "token");
  ASSERT_EQ(def["resolvedDependencies"].size(), 2u);
  EXPECT_EQ(def["resolvedDependencies"][0]["uri"], "pkg:docker/debian@12?platform=linux%2Famd64");
  EXPECT_EQ(def["resolvedDependencies"][0]["digest"]["sha256"], oci::Digest::Of("m").hex());
  EXPECT_EQ(def["resolvedDependencies"][1]["uri"], "https://example.com/f");
  EXPECT_EQ(p["runDetails"]["metadata"]["startedOn"], "2024-01-01T00:00:00Z");
  EXPECT_THAT(p.dump(), Not(HasSubstr("hunter2")));
  // min: no Dockerfile, no steps; max: both.
  EXPECT_FALSE(def["internalParameters"].contains("dockerfile"));
  auto in = Input();
  in.max = true;
  auto max = ProvenancePredicate(in);
  EXPECT_EQ(max["buildDefinition"]["internalParameters"]["dockerfile"], "FROM debian:12\n");
  EXPECT_EQ(max["buildDefinition"]["internalParameters"]["buildConfig"]["stages"], 1);
  EXPECT_EQ(ProvenancePredicate(Input()).dump(), p.dump());
}

// A git source: SLSA's git+<remote>#<ref> with the commit as gitCommit,
// never the URL's password.
TEST(ProvenanceTest, GitSourcesAreDependenciesByCommit) {
  auto in = Input();
  ResolvedInput g;
  g.kind = ResolvedInput::Kind::kGit;
  g.ref = "https://u:pw@example.com/r.git#main";
  g.commit = std::string(40, 'c');
  in.inputs.push_back(g);
  auto p = ProvenancePredicate(in);
  const auto& deps = p["buildDefinition"]["resolvedDependencies"];
  ASSERT_EQ(deps.size(), 3u);
  EXPECT_EQ(deps[2]["uri"], "git+https://example.com/r.git#main");
  EXPECT_EQ(deps[2]["digest"]["gitCommit"], std::string(40, 'c'));
  EXPECT_THAT(p.dump(), Not(HasSubstr(":pw@")));
}

TEST(ProvenanceTest, StatementV1) {
  auto s =
      InTotoStatement("app", oci::Digest::Of("x"), "https://slsa.dev/provenance/v1", {{"a", 1}});
  EXPECT_EQ(s["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(s["subject"][0]["name"], "app");
  EXPECT_EQ(s["subject"][0]["digest"]["sha256"], oci::Digest::Of("x").hex());
  EXPECT_EQ(s["predicateType"], "https://slsa.dev/provenance/v1");
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339(1700000000), "2023-11-14T22:13:20Z");
}

// The executor hands every image and URL it resolved to the caller.
TEST(ProvenanceTest, BuildResultListsResolvedInputs) {
  testing::EngineHarness h;
  auto base = h.MakeBase("base:latest");
  ASSERT_OK(base);
  BuildOptions o = h.options();
  o.fetcher = [&](const std::string&, const fs::path& dest, std::string*) {
    return WriteFileAtomic(dest, "downloaded");
  };
  auto r = h.Build(
      "FROM base:latest AS b\nFROM scratch\nCOPY --from=b /etc/passwd /p\n"
      "ADD https://example.com/t /t\n",
      o);
  ASSERT_OK(r);
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(r->inputs[0].kind, ResolvedInput::Kind::kImage);
  EXPECT_EQ(r->inputs[0].ref, "docker.io/library/base:latest");
  EXPECT_EQ(r->inputs[0].digest, base->digest);
  EXPECT_EQ(r->inputs[1].kind, ResolvedInput::Kind::kUrl);
  EXPECT_EQ(r->inputs[1].ref, "https://example.com/t");
  EXPECT_EQ(r->inputs[1].digest, oci::Digest::Of("downloaded"));
}

}  // namespace
}  // namespace strata::builder
