#include "oci/reference.h"

#include <fstream>

#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

struct Case {
  int line;
  std::string input;
  std::string expected;
};

std::vector<Case> LoadCases() {
  std::ifstream in(testing::TestData("reference/cases.txt"));
  std::vector<Case> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.starts_with("#")) continue;
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    out.push_back({n, line.substr(0, tab), line.substr(tab + 1)});
  }
  return out;
}

TEST(ReferenceTest, TableOfGrammarCases) {
  auto cases = LoadCases();
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "cases.txt:" << c.line << " input \"" << c.input << "\"");
    auto r = Reference::Parse(c.input);
    if (c.expected.starts_with("error: ")) {
      ASSERT_FALSE(r.has_value()) << "parsed as " << r->ToString();
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_THAT(r.error().message(), ::testing::HasSubstr(c.expected.substr(7)));
      EXPECT_THAT(r.error().message(), ::testing::HasSubstr("\"" + c.input + "\""));
    } else {
      ASSERT_TRUE(r.has_value()) << r.error().message();
      EXPECT_EQ(r->ToString(), c.expected);
      // The normalized form parses to itself.
      auto again = Reference::Parse(r->ToString());
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(*again, *r);
      // So does the familiar form.
      auto fam = Reference::Parse(r->Familiar());
      ASSERT_TRUE(fam.has_value()) << r->Familiar();
      EXPECT_EQ(*fam, *r);
    }
  }
}

TEST(ReferenceTest, FamiliarFormDropsDefaultDomainAndLibrary) {
  EXPECT_EQ(Reference::Parse("busybox")->Familiar(), "busybox:latest");
  EXPECT_EQ(Reference::Parse("docker.io/user/app:1")->Familiar(), "user/app:1");
  EXPECT_EQ(Reference::Parse("docker.io/library/a/b")->Familiar(), "library/a/b:latest");
  EXPECT_EQ(Reference::Parse("localhost:5000/app")->Familiar(), "localhost:5000/app:latest");
}

TEST(ReferenceTest, PartsAreExposed) {
  auto r = Reference::Parse(
      "localhost:5000/team/app:v2@sha256:"
      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
  ASSERT_OK(r);
  EXPECT_EQ(r->domain(), "localhost:5000");
  EXPECT_EQ(r->path(), "team/app");
  EXPECT_EQ(r->tag(), "v2");
  ASSERT_TRUE(r->digest().has_value());
  EXPECT_EQ(r->digest()->hex().substr(0, 4), "bbbb");
  EXPECT_EQ(r->WithoutDigest().ToString(), "localhost:5000/team/app:v2");
  EXPECT_EQ(r->WithTag("x").WithoutDigest().ToString(), "localhost:5000/team/app:x");
}

TEST(ReferenceTest, DigestOnlyReferenceHasNoImpliedTag) {
  auto r = Reference::Parse(
      "app@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
  ASSERT_OK(r);
  EXPECT_EQ(r->tag(), "");
  EXPECT_EQ(r->Familiar(),
            "app@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
}

TEST(ReferenceTest, NameLongerThan255IsRejected) {
  std::string longname = "a/" + std::string(260, 'b');
  auto r = Reference::Parse(longname);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("255"));
}

// Found by the reference fuzzer: the familiar form must read back as the
// same reference, so docker.io keeps its prefix where dropping it would make
// the first component a registry or the whole name an image ID.
TEST(ReferenceTest, FamiliarFormReadsBackAsTheSameReference) {
  for (const char* text :
       {"docker.io/foo.io/x", "docker.io/localhost/x:1",
        "docker.io/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "busybox",
        "docker.io/library/alpine:3", "user/app", "ghcr.io/o/r:t"}) {
    ASSERT_OK_AND_ASSIGN(Reference r, Reference::Parse(text));
    ASSERT_OK_AND_ASSIGN(Reference back, Reference::Parse(r.Familiar()));
    EXPECT_EQ(back, r) << text << " -> " << r.Familiar();
  }
  ASSERT_OK_AND_ASSIGN(Reference b, Reference::Parse("busybox"));
  EXPECT_EQ(b.Familiar(), "busybox:latest");
  ASSERT_OK_AND_ASSIGN(Reference d, Reference::Parse("docker.io/foo.io/x"));
  EXPECT_EQ(d.Familiar(), "docker.io/foo.io/x:latest");
}

}  // namespace
}  // namespace strata::oci
