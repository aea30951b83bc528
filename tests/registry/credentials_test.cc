#include "registry/credentials.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/testing/test_util.h"

namespace strata::registry {
namespace {

using strata::testing::MakeTempDir;
using strata::testing::WriteTestFile;

class FakeHelpers : public CredentialHelperRunner {
 public:
  std::map<std::string, std::string> outputs;  // "name url" -> stdout
  mutable std::vector<std::string> calls;
  Result<std::string> Run(std::string_view name, std::string_view verb,
                          std::string_view input) const override {
    calls.push_back(fmt::format("{} {} {}", name, verb, input));
    auto it = outputs.find(fmt::format("{} {}", name, input));
    if (it == outputs.end()) return MakeError(ErrorCode::kNotFound, "credentials not found");
    return it->second;
  }
};

TEST(RegistryKeyTest, NormalizesDockerHubAliasesAndUrls) {
  EXPECT_EQ(NormalizeRegistryKey("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeRegistryKey("index.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryKey("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryKey("docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryKey("https://quay.io/v2/"), "quay.io");
  EXPECT_EQ(NormalizeRegistryKey("localhost:5000"), "localhost:5000");
  EXPECT_EQ(NormalizeRegistryKey("quay.io/org/repo"), "quay.io/org/repo");
  EXPECT_EQ(RegistryApiHost("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(RegistryApiHost("ghcr.io"), "ghcr.io");
}

TEST(CredsFlagTest, SplitsAtFirstColon) {
  ASSERT_OK_AND_ASSIGN(auto a, ParseCredsFlag("bob:pa:ss"));
  EXPECT_EQ(a.username, "bob");
  EXPECT_EQ(a.password, "pa:ss");
  EXPECT_FALSE(ParseCredsFlag(":x"));
}

TEST(Base64Test, RoundTrips) {
  EXPECT_EQ(Base64Encode("alice:secret"), "YWxpY2U6c2VjcmV0");
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:p@ss:w0rd"}) {
    ASSERT_OK_AND_ASSIGN(auto d, Base64Decode(Base64Encode(s)));
    EXPECT_EQ(d, s);
  }
  EXPECT_FALSE(Base64Decode("abc"));
}

TEST(AuthFileTest, ReadsDockerLegacyHubKey) {
  FakeHelpers helpers;
  std::string json = R"({"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6c2VjcmV0"}}})";
  ASSERT_OK_AND_ASSIGN(auto a, LookupInAuthFile(json, "docker.io", "library/busybox", helpers));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->username, "alice");
  EXPECT_EQ(a->password, "secret");
  ASSERT_OK_AND_ASSIGN(auto none, LookupInAuthFile(json, "quay.io", "", helpers));
  EXPECT_FALSE(none);
}

TEST(AuthFileTest, MostSpecificRepositoryKeyWins) {
  FakeHelpers helpers;
  std::string json = fmt::format(
      R"({{"auths":{{"quay.io":{{"auth":"{}"}},"quay.io/org":{{"auth":"{}"}},"quay.io/org/app":{{"auth":"{}"}}}}}})",
      Base64Encode("host:1"), Base64Encode("ns:2"), Base64Encode("repo:3"));
  ASSERT_OK_AND_ASSIGN(auto a, LookupInAuthFile(json, "quay.io", "org/app", helpers));
  EXPECT_EQ(a->username, "repo");
  ASSERT_OK_AND_ASSIGN(a, LookupInAuthFile(json, "quay.io", "org/other", helpers));
  EXPECT_EQ(a->username, "ns");
  ASSERT_OK_AND_ASSIGN(a, LookupInAuthFile(json, "quay.io", "x/y", helpers));
  EXPECT_EQ(a->username, "host");
}

TEST(AuthFileTest, CredHelpersThenAuthsThenCredsStore) {
  FakeHelpers helpers;
  helpers.outputs["ecr 123.dkr.ecr.aws"] =
      R"({"ServerURL":"123.dkr.ecr.aws","Username":"AWS","Secret":"ecr-pw"})";
  helpers.outputs["desktop https://index.docker.io/v1/"] =
      R"({"Username":"<token>","Secret":"idtok"})";
  std::string json = R"({"credHelpers":{"123.dkr.ecr.aws":"ecr"},"credsStore":"desktop",
      "auths":{"ghcr.io":{"auth":"Z2g6dG9r"}}})";
  ASSERT_OK_AND_ASSIGN(auto a, LookupInAuthFile(json, "123.dkr.ecr.aws", "r", helpers));
  EXPECT_EQ(a->username, "AWS");
  EXPECT_EQ(a->password, "ecr-pw");
  ASSERT_OK_AND_ASSIGN(a, LookupInAuthFile(json, "ghcr.io", "r", helpers));
  EXPECT_EQ(a->username, "gh");
  ASSERT_OK_AND_ASSIGN(a, LookupInAuthFile(json, "docker.io", "library/x", helpers));
  EXPECT_EQ(a->identity_token, "idtok");
  EXPECT_TRUE(a->username.empty());
  ASSERT_OK_AND_ASSIGN(a, LookupInAuthFile(json, "quay.io", "", helpers));
  EXPECT_FALSE(a);  // the store has nothing for quay.io
}

TEST(AuthFileTest, MalformedFileIsInvalidArgumentWithoutContent) {
  FakeHelpers helpers;
  auto r = LookupInAuthFile(R"({"auths":{"x":{"auth":"@@@@"}}})", "x", "", helpers);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(LookupInAuthFile("not json", "x", "", helpers));
}

TEST(CredentialStoreTest, LookupOrderFollowsPodman) {
  auto dir = MakeTempDir();
  CredentialSources src;
  src.home = dir.path() / "home";
  src.xdg_runtime_dir = dir.path() / "run";
  src.registry_auth_file = dir.path() / "env-auth.json";
  WriteTestFile(
      src.home / ".docker/config.json",
      fmt::format(
          R"({{"auths":{{"a.io":{{"auth":"{}"}},"b.io":{{"auth":"{}"}},"c.io":{{"auth":"{}"}}}}}})",
          Base64Encode("docker-a:1"), Base64Encode("docker-b:1"), Base64Encode("docker-c:1")));
  WriteTestFile(src.xdg_runtime_dir / "containers/auth.json",
                fmt::format(R"({{"auths":{{"a.io":{{"auth":"{}"}},"b.io":{{"auth":"{}"}}}}}})",
                            Base64Encode("run-a:1"), Base64Encode("run-b:1")));
  WriteTestFile(src.registry_auth_file,
                fmt::format(R"({{"auths":{{"a.io":{{"auth":"{}"}}}}}})", Base64Encode("env-a:1")));
  auto helpers = std::make_shared<FakeHelpers>();
  CredentialStore store(src, helpers);
  EXPECT_EQ(store.Lookup("a.io")->username, "env-a");
  EXPECT_EQ(store.Lookup("b.io")->username, "run-b");
  EXPECT_EQ(store.Lookup("c.io")->username, "docker-c");
  EXPECT_TRUE(store.Lookup("d.io")->empty());

  // --authfile alone; --creds above everything.
  CredentialSources only = src;
  only.authfile = src.home / ".docker/config.json";
  EXPECT_EQ(CredentialStore(only, helpers).Lookup("a.io")->username, "docker-a");
  only.creds = AuthConfig{"flag", "pw", ""};
  EXPECT_EQ(CredentialStore(only, helpers).Lookup("a.io")->username, "flag");
}

TEST(CredentialStoreTest, LoginWritesAuthJsonKeepingOtherFieldsAndLogoutRemoves) {
  auto dir = MakeTempDir();
  CredentialSources src;
  src.authfile = dir.path() / "auth.json";
  WriteTestFile(src.authfile,
                R"({"auths":{"other.io":{"auth":"eDp5"}},"credHelpers":{"z.io":"z"}})");
  CredentialStore store(src, std::make_shared<FakeHelpers>());
  ASSERT_OK(store.Login("localhost:5000", AuthConfig{"u", "p:w", ""}));
  ASSERT_OK_AND_ASSIGN(auto a, store.Lookup("localhost:5000", "app"));
  EXPECT_EQ(a.username, "u");
  EXPECT_EQ(a.password, "p:w");
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(src.authfile));
  EXPECT_NE(text.find("other.io"), std::string::npos);
  EXPECT_NE(text.find("credHelpers"), std::string::npos);
  EXPECT_EQ(std::filesystem::status(src.authfile).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_OK(store.Logout("localhost:5000"));
  EXPECT_TRUE(store.Lookup("localhost:5000")->empty());
  EXPECT_EQ(store.Logout("localhost:5000").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store.Lookup("other.io")->username, "x");
}

TEST(CredentialStoreTest, DockerConfigGetsTheLegacyHubKey) {
  auto dir = MakeTempDir();
  CredentialSources src;
  src.home = dir.path();
  CredentialStore store(src, std::make_shared<FakeHelpers>());
  ASSERT_OK(store.Login("docker.io", AuthConfig{"hubuser", "pw", ""}));
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(dir.path() / ".docker/config.json"));
  EXPECT_NE(text.find("https://index.docker.io/v1/"), std::string::npos) << text;
  EXPECT_EQ(store.Lookup("docker.io")->username, "hubuser");
}

TEST(ExecCredentialHelperTest, RunsHelperWithServerUrlOnStdin) {
  auto dir = MakeTempDir();
  WriteTestFile(dir.path() / "docker-credential-fake",
                "#!/bin/sh\n"
                "read url\n"
                "if [ \"$1\" = get ] && [ \"$url\" = reg.example ]; then\n"
                "  echo '{\"ServerURL\":\"reg.example\",\"Username\":\"h\",\"Secret\":\"hs\"}'\n"
                "else echo 'credentials not found in native keychain'; exit 1; fi\n",
                0755);
  ExecCredentialHelperRunner runner({dir.path()});
  ASSERT_OK_AND_ASSIGN(std::string out, runner.Run("fake", "get", "reg.example"));
  EXPECT_NE(out.find("\"Secret\":\"hs\""), std::string::npos);
  auto missing = runner.Run("fake", "get", "other.example");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto absent = runner.Run("does-not-exist-xyz", "get", "x");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().code(), ErrorCode::kUnavailable);

  auto json_dir = MakeTempDir();
  CredentialSources src;
  src.authfile = json_dir.path() / "config.json";
  WriteTestFile(src.authfile, R"({"credsStore":"fake"})");
  CredentialStore store(src, std::make_shared<ExecCredentialHelperRunner>(
                                 std::vector<std::filesystem::path>{dir.path()}));
  ASSERT_OK_AND_ASSIGN(auto a, store.Lookup("reg.example"));
  EXPECT_EQ(a.username, "h");
  EXPECT_EQ(a.password, "hs");
}

}  // namespace
}  // namespace strata::registry
