#include "builder/frontend/stage_graph.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

TEST(StageGraphTest, ResolveByNameOrIndex) {
  std::vector<std::string> names = {"base", "", "final"};
  EXPECT_EQ(StageGraph::Resolve(names, "BASE"), 0);
  EXPECT_EQ(StageGraph::Resolve(names, "1"), 1);
  EXPECT_EQ(StageGraph::Resolve(names, "3"), std::nullopt);
  EXPECT_EQ(StageGraph::Resolve(names, "alpine:3.19"), std::nullopt);
  EXPECT_EQ(StageGraph::Resolve(names, ""), std::nullopt);
}

TEST(StageGraphTest, OrdersDependenciesFirstAndPrunesToTarget) {
  // 0 <- 1, 0 <- 2, {1,2} <- 3, 4 independent.
  ASSERT_OK_AND_ASSIGN(StageGraph g, StageGraph::Build({{"base", 1, {}},
                                                        {"a", 3, {{0, 3}}},
                                                        {"b", 5, {{0, 5}}},
                                                        {"final", 7, {{2, 8}, {1, 9}}},
                                                        {"other", 11, {}}}));
  EXPECT_EQ(g.StagesNeededFor(3), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(g.StagesNeededFor(1), (std::vector<int>{0, 1}));
  EXPECT_EQ(g.StagesNeededFor(4), (std::vector<int>{4}));
  EXPECT_EQ(g.ParallelWaves(3), (std::vector<std::vector<int>>{{0}, {1, 2}, {3}}));
  EXPECT_EQ(g.Dependencies(3), (std::vector<int>{1, 2}));
  ASSERT_OK_AND_ASSIGN(int t, g.ResolveTarget("FINAL"));
  EXPECT_EQ(t, 3);
  auto missing = g.ResolveTarget("nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "target stage \"nope\" could not be found");
}

TEST(StageGraphTest, ForwardReferenceIsFine) {
  ASSERT_OK_AND_ASSIGN(StageGraph g, StageGraph::Build({{"a", 1, {{1, 2}}}, {"b", 3, {}}}));
  EXPECT_EQ(g.StagesNeededFor(0), (std::vector<int>{1, 0}));
}

TEST(StageGraphTest, CycleNamesTheClosingLine) {
  auto r = StageGraph::Build({{"a", 1, {{1, 2}}}, {"b", 3, {{0, 4}}}}, "app.Dockerfile");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "app.Dockerfile:4: circular dependency detected on stage: a");
  auto self = StageGraph::Build({{"", 1, {{0, 2}}}});
  ASSERT_FALSE(self.has_value());
  EXPECT_EQ(self.error().message(), "Dockerfile:2: circular dependency detected on stage: 0");
}

}  // namespace
}  // namespace strata::builder
