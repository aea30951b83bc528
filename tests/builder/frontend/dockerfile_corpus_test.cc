// Golden tests: every testdata/dockerfiles/<case>/ holds a Dockerfile, an
// optional options.json ({"build_args": {...}, "target": "...",
// "platform": "linux/arm64"}), and either plan.json (the expected plan) or
// error.txt (the expected error message). STRATA_UPDATE_GOLDEN=1 rewrites the
// goldens from the current output; review every diff before committing.
#include <cstdlib>
#include <filesystem>

#include "builder/frontend/plan.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(testing::TestData("dockerfiles"))) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, MatchesGolden) {
  const fs::path dir = testing::TestData("dockerfiles/" + GetParam());
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(dir / "Dockerfile"));
  ParseOptions opt;
  opt.target_platform = {"linux", "amd64", ""};
  opt.build_platform = {"linux", "amd64", ""};
  if (fs::exists(dir / "options.json")) {
    ASSERT_OK_AND_ASSIGN(std::string o, ReadFile(dir / "options.json"));
    nlohmann::json j = nlohmann::json::parse(o, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "bad options.json";
    if (j.contains("build_args")) {
      for (const auto& [k, v] : j["build_args"].items()) opt.build_args[k] = v.get<std::string>();
    }
    if (j.contains("target")) opt.target = j["target"].get<std::string>();
    if (j.contains("platform")) {
      ASSERT_OK_AND_ASSIGN(opt.target_platform,
                           BuildPlatform::Parse(j["platform"].get<std::string>()));
    }
  }
  const bool update = std::getenv("STRATA_UPDATE_GOLDEN") != nullptr &&
                      std::string_view(std::getenv("STRATA_UPDATE_GOLDEN")) == "1";
  auto plan = ParseDockerfileToJson(text, opt);
  if (fs::exists(dir / "error.txt") || (update && !plan)) {
    ASSERT_FALSE(plan.has_value()) << "expected an error, got a plan";
    if (update) {
      ASSERT_OK(WriteFileAtomic(dir / "error.txt", plan.error().message() + "\n"));
      return;
    }
    ASSERT_OK_AND_ASSIGN(std::string want, ReadFile(dir / "error.txt"));
    while (!want.empty() && want.back() == '\n') want.pop_back();
    EXPECT_EQ(plan.error().message(), want);
    return;
  }
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  std::string got = plan->dump(2) + "\n";
  if (update) {
    ASSERT_OK(WriteFileAtomic(dir / "plan.json", got));
    return;
  }
  ASSERT_OK_AND_ASSIGN(std::string want_text, ReadFile(dir / "plan.json"));
  nlohmann::json want = nlohmann::json::parse(want_text, nullptr, false);
  ASSERT_FALSE(want.is_discarded()) << "plan.json is not JSON";
  EXPECT_EQ(*plan, want) << "got:\n" << got;
}

INSTANTIATE_TEST_SUITE_P(Dockerfiles, CorpusTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(CorpusSizeTest, HasAtLeastSixtyCases) { EXPECT_GE(Cases().size(), 60u); }

}  // namespace
}  // namespace strata::builder
