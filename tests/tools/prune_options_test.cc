#include "tools/strata/prune_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseGoDurationTest, AcceptsGoSyntax) {
  EXPECT_EQ(*ParseGoDuration("24h"), 24h);
  EXPECT_EQ(*ParseGoDuration("30m"), 30min);
  EXPECT_EQ(*ParseGoDuration("1h30m"), 90min);
  EXPECT_EQ(*ParseGoDuration("1.5h"), 90min);
  EXPECT_EQ(*ParseGoDuration("2h45m10s"), 2h + 45min + 10s);
  EXPECT_EQ(*ParseGoDuration("500ms"), 500ms);
  EXPECT_EQ(*ParseGoDuration("10us"), 10us);
  EXPECT_EQ(*ParseGoDuration("7ns"), 7ns);
  EXPECT_EQ(*ParseGoDuration("0"), 0s);
  EXPECT_EQ(*ParseGoDuration("+5s"), 5s);
  EXPECT_EQ(*ParseGoDuration(".5s"), 500ms);
}

TEST(ParseGoDurationTest, RejectsWhatGoRejectsAndNegatives) {
  for (const char* bad : {"", "24", "1d", "h", "1h30", "-1h", "1.h.", "abc", "1 h", "5S", "."}) {
    auto d = ParseGoDuration(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(d.error().message(), HasSubstr(std::string("\"") + bad + "\""));
  }
}

TEST(ParseBuildxSizeTest, BinaryUnitsAsGoUnitsRamInBytes) {
  EXPECT_EQ(*ParseBuildxSize("0"), 0);
  EXPECT_EQ(*ParseBuildxSize("1234"), 1234);
  EXPECT_EQ(*ParseBuildxSize("10b"), 10);
  EXPECT_EQ(*ParseBuildxSize("1k"), 1024);
  EXPECT_EQ(*ParseBuildxSize("512MB"), 512LL << 20);
  EXPECT_EQ(*ParseBuildxSize("512mb"), 512LL << 20);
  EXPECT_EQ(*ParseBuildxSize("1GB"), 1LL << 30);
  EXPECT_EQ(*ParseBuildxSize("1GiB"), 1LL << 30);
  EXPECT_EQ(*ParseBuildxSize("10g"), 10LL << 30);
  EXPECT_EQ(*ParseBuildxSize("1.5GB"), 3LL << 29);
  EXPECT_EQ(*ParseBuildxSize("2 TB"), 2LL << 40);
}

TEST(ParseBuildxSizeTest, RejectsGarbage) {
  for (const char* bad : {"", "GB", "-1GB", "1XB", "1GBB", "1.GB", "ten"}) {
    auto s = ParseBuildxSize(bad);
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(ParsePruneFiltersTest, UntilAndErrorsNamingTheKey) {
  auto f = ParsePruneFilters({"until=24h"});
  ASSERT_OK(f);
  EXPECT_EQ(f->until, 24h);
  EXPECT_FALSE(ParsePruneFilters({})->until.has_value());
  auto unknown = ParsePruneFilters({"type=regular"});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_THAT(unknown.error().message(), HasSubstr("\"type\""));
  EXPECT_FALSE(ParsePruneFilters({"until"}).has_value());
  EXPECT_FALSE(ParsePruneFilters({"until=1h", "until=2h"}).has_value());
  auto bad = ParsePruneFilters({"until=3days"});
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("3days"));
}

CacheEntry Mount(std::string name, int64_t last_used, int64_t size) {
  CacheEntry e;
  e.name = std::move(name);
  e.is_mount = true;
  e.last_used = last_used;
  e.size = size;
  return e;
}

CacheEntry Record(std::string name, int64_t last_used, std::vector<std::string> blobs) {
  CacheEntry e;
  e.name = std::move(name);
  e.last_used = last_used;
  e.blobs = std::move(blobs);
  return e;
}

CacheSelection OlderThan(int64_t t) {
  CacheSelection s;
  s.older_than = t;
  return s;
}

CacheSelection Keep(int64_t bytes) {
  CacheSelection s;
  s.keep_storage = bytes;
  return s;
}

std::vector<std::string> Removed(const std::vector<CacheEntry>& entries,
                                 const std::unordered_map<std::string, int64_t>& sizes,
                                 const CacheSelection& sel, int64_t* left = nullptr,
                                 const std::string& busy = "") {
  std::vector<std::string> removed;
  int64_t l = SelectCacheForRemoval(entries, sizes, sel, [&](const CacheEntry& e) {
    if (e.name == busy) return false;
    removed.push_back(e.name);
    return true;
  });
  if (left) *left = l;
  return removed;
}

TEST(SelectCacheForRemovalTest, AllWithoutLimits) {
  std::vector<CacheEntry> e = {Record("b", 20, {"x"}), Mount("a", 10, 5)};
  int64_t left = -1;
  EXPECT_THAT(Removed(e, {{"x", 100}}, {}, &left), ElementsAre("a", "b"));
  EXPECT_EQ(left, 0);
}

TEST(SelectCacheForRemovalTest, UntilKeepsRecentEntries) {
  std::vector<CacheEntry> e = {Mount("old", 10, 5), Mount("new", 30, 5)};
  EXPECT_THAT(Removed(e, {}, OlderThan(20)), ElementsAre("old"));
}

TEST(SelectCacheForRemovalTest, KeepStorageRemovesLeastRecentlyUsedFirst) {
  // Records r1 and r2 share blob "s": it is freed only with the second one.
  std::vector<CacheEntry> e = {
      Mount("m", 40, 100),
      Record("r1", 10, {"s", "a"}),
      Record("r2", 20, {"s"}),
      Record("r3", 30, {"b"}),
  };
  std::unordered_map<std::string, int64_t> sizes = {{"s", 50}, {"a", 10}, {"b", 20}};
  EXPECT_EQ(CacheUsage(e, sizes), 180);
  int64_t left = 0;
  EXPECT_THAT(Removed(e, sizes, Keep(170), &left), ElementsAre("r1"));
  EXPECT_EQ(left, 170);
  EXPECT_THAT(Removed(e, sizes, Keep(150), &left), ElementsAre("r1", "r2"));
  EXPECT_EQ(left, 120);
  EXPECT_THAT(Removed(e, sizes, Keep(180)), ElementsAre());
  EXPECT_THAT(Removed(e, sizes, Keep(0)), ElementsAre("r1", "r2", "r3", "m"));
}

TEST(SelectCacheForRemovalTest, BusyEntryStillCountsAndTheNextOneGoes) {
  std::vector<CacheEntry> e = {Mount("busy", 1, 100), Mount("idle", 2, 100)};
  int64_t left = 0;
  EXPECT_THAT(Removed(e, {}, Keep(100), &left, "busy"), ElementsAre("idle"));
  EXPECT_EQ(left, 100);
}

}  // namespace
}  // namespace strata::cli
