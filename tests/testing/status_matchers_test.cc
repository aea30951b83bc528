#include "tests/testing/status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "oci/util/error.h"

namespace strata::testing {
namespace {

using ::testing::DescribeMatcher;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

Status NotFound() { return MakeError(ErrorCode::kNotFound, "blob sha256:abc not found"); }
Result<int> BadLine() { return MakeError(ErrorCode::kInvalidArgument, "Dockerfile:3: bad"); }
Result<int> Seven() { return 7; }

// The listener's explanation of a mismatch.
template <typename M, typename V>
std::string Explain(const M& matcher, const V& value) {
  ::testing::StringMatchResultListener listener;
  ::testing::Matcher<const V&> m = matcher;
  EXPECT_FALSE(m.MatchAndExplain(value, &listener));
  return listener.str();
}

TEST(StatusIsTest, MatchesCodeOfStatusResultAndError) {
  EXPECT_THAT(NotFound(), StatusIs(ErrorCode::kNotFound));
  EXPECT_THAT(BadLine(), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Error(ErrorCode::kDataLoss, "x"), StatusIs(ErrorCode::kDataLoss));
  EXPECT_THAT(Result<std::string>(MakeError(ErrorCode::kUnavailable, "503")),
              StatusIs(ErrorCode::kUnavailable));
}

TEST(StatusIsTest, RejectsOtherCodeAndOk) {
  EXPECT_THAT(NotFound(), Not(StatusIs(ErrorCode::kAlreadyExists)));
  EXPECT_THAT(Seven(), Not(StatusIs(ErrorCode::kNotFound)));
  EXPECT_THAT(OkStatus(), Not(StatusIs(ErrorCode::kNotFound)));
}

TEST(StatusIsTest, MatchesMessageWithMatcherOrString) {
  EXPECT_THAT(NotFound(), StatusIs(ErrorCode::kNotFound, HasSubstr("sha256:abc")));
  EXPECT_THAT(BadLine(), StatusIs(ErrorCode::kInvalidArgument, StartsWith("Dockerfile:3:")));
  EXPECT_THAT(BadLine(), StatusIs(ErrorCode::kInvalidArgument, "Dockerfile:3: bad"));
  EXPECT_THAT(BadLine(), StatusIs(ErrorCode::kInvalidArgument, std::string("Dockerfile:3: bad")));
  EXPECT_THAT(BadLine(), Not(StatusIs(ErrorCode::kInvalidArgument, HasSubstr("line 4"))));
  EXPECT_THAT(BadLine(), Not(StatusIs(ErrorCode::kNotFound, HasSubstr("bad"))));
}

TEST(StatusIsTest, ExplainsMismatch) {
  EXPECT_EQ(Explain(StatusIs(ErrorCode::kNotFound), Seven()), "which is OK");
  EXPECT_EQ(Explain(StatusIs(ErrorCode::kNotFound), BadLine()),
            "whose code is InvalidArgument");
  EXPECT_THAT(Explain(StatusIs(ErrorCode::kInvalidArgument, HasSubstr("zzz")), BadLine()),
              HasSubstr("whose message \"Dockerfile:3: bad\" does not match"));
}

TEST(StatusIsTest, Describes) {
  ::testing::Matcher<const Status&> m = StatusIs(ErrorCode::kNotFound, HasSubstr("blob"));
  EXPECT_EQ(DescribeMatcher<const Status&>(m),
            "fails with NotFound and a message that has substring \"blob\"");
  EXPECT_THAT(DescribeMatcher<const Status&>(m, /*negation=*/true),
              StartsWith("is OK, or does not fail with NotFound"));
}

TEST(IsOkTest, MatchesOnlyValues) {
  EXPECT_THAT(OkStatus(), IsOk());
  EXPECT_THAT(Seven(), IsOk());
  EXPECT_THAT(NotFound(), Not(IsOk()));
  EXPECT_THAT(BadLine(), Not(IsOk()));
  EXPECT_EQ(Explain(IsOk(), BadLine()), "which failed with InvalidArgument: Dockerfile:3: bad");
  EXPECT_EQ(DescribeMatcher<const Status&>(IsOk()), "is OK");
}

TEST(PrintToTest, PrintsCodeAndMessage) {
  EXPECT_EQ(::testing::PrintToString(BadLine()), "InvalidArgument: \"Dockerfile:3: bad\"");
  EXPECT_EQ(::testing::PrintToString(Seven()), "OK: 7");
  EXPECT_EQ(::testing::PrintToString(OkStatus()), "OK");
  EXPECT_EQ(::testing::PrintToString(ErrorCode::kDataLoss), "DataLoss");
}

}  // namespace
}  // namespace strata::testing
