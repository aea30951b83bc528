#include "builder/frontend/build_args.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

TEST(BuildArgsTest, PlatformParseAndPrint) {
  ASSERT_OK_AND_ASSIGN(BuildPlatform p, BuildPlatform::Parse("linux/arm64/v8"));
  EXPECT_EQ(p.arch, "arm64");
  EXPECT_EQ(p.variant, "v8");
  EXPECT_EQ(p.ToString(), "linux/arm64/v8");
  EXPECT_FALSE(BuildPlatform::Parse("linux").has_value());
  EXPECT_FALSE(BuildPlatform::Parse("linux//v7").has_value());
  EXPECT_FALSE(BuildPlatform::Host().arch.empty());
}

TEST(BuildArgsTest, PredefinedArgs) {
  BuildPlatform target{"linux", "arm", "v7"};
  BuildPlatform build{"linux", "amd64", ""};
  auto args = PredefinedArgs(target, build);
  ASSERT_EQ(args.size(), 8u);
  EXPECT_EQ(args[0], (KeyValue{"TARGETPLATFORM", "linux/arm/v7"}));
  EXPECT_EQ(args[3], (KeyValue{"TARGETVARIANT", "v7"}));
  EXPECT_EQ(args[4], (KeyValue{"BUILDPLATFORM", "linux/amd64"}));
  EXPECT_TRUE(IsPredefinedArg("BUILDARCH"));
  EXPECT_FALSE(IsPredefinedArg("HTTP_PROXY"));
  EXPECT_TRUE(IsProxyArg("https_proxy"));
  EXPECT_FALSE(IsProxyArg("Https_Proxy"));
}

TEST(BuildArgsTest, ArgScopeKeepsDeclarationOrder) {
  ArgScope s;
  s.Declare("B", "1");
  s.Declare("A", std::nullopt);
  s.Declare("B", "2");
  EXPECT_TRUE(s.Declared("A"));
  EXPECT_EQ(s.Get("A"), std::nullopt);
  EXPECT_EQ(s.Get("B"), "2");
  EXPECT_EQ(s.Values(), (std::vector<KeyValue>{{"B", "2"}}));
}

TEST(BuildArgsTest, DispatchEnvPrefersEnvOverArgs) {
  std::vector<std::string> image_env = {"PATH=/usr/bin", "X=old", "X=new", "EMPTY="};
  std::vector<KeyValue> args = {{"X", "arg"}, {"Y", "argy"}};
  EnvGetter get = DispatchEnv(image_env, args);
  EXPECT_EQ(get("X"), "new");
  EXPECT_EQ(get("Y"), "argy");
  EXPECT_EQ(get("EMPTY"), "");
  EXPECT_EQ(get("NONE"), std::nullopt);
}

}  // namespace
}  // namespace strata::builder
