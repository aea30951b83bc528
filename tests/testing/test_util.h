// Helpers shared by the test suites.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "oci/util/error.h"
#include "oci/util/file_util.h"
#include "tests/testing/status_matchers.h"

// StatusIs(code[, message matcher]) and IsOk() come from status_matchers.h.

// ASSERT_OK(expr): the Status/Result is OK; prints the error otherwise.
#define ASSERT_OK(expr)                                                         \
  do {                                                                          \
    const auto& strata_r_ = (expr);                                             \
    ASSERT_TRUE(strata_r_.has_value()) << ::strata::testing::Describe(strata_r_); \
  } while (0)
#define EXPECT_OK(expr)                                                         \
  do {                                                                          \
    const auto& strata_r_ = (expr);                                             \
    EXPECT_TRUE(strata_r_.has_value()) << ::strata::testing::Describe(strata_r_); \
  } while (0)

// ASSERT_OK_AND_ASSIGN(auto x, Foo());
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(STRATA_CONCAT_(strata_t_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)                        \
  auto tmp = (expr);                                                      \
  ASSERT_TRUE(tmp.has_value()) << ::strata::testing::Describe(tmp);       \
  lhs = std::move(*tmp)

namespace strata::testing {

template <typename R>
std::string Describe(const R& r) {
  if (r.has_value()) return "OK";
  return std::string(ErrorCodeName(r.error().code())) + ": " + r.error().message();
}

// Path of a file under testdata/.
std::filesystem::path TestData(std::string_view rel);

// A fresh temp dir; fails the test if it cannot be made.
ScopedTempDir MakeTempDir();

// Writes a file, creating parents.
void WriteTestFile(const std::filesystem::path& path, std::string_view content,
                   int mode = 0644);

// Runs a shell command, returns its exit status and captures stdout+stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

// True if `tool` is on PATH.
bool HaveTool(const std::string& tool);

}  // namespace strata::testing
