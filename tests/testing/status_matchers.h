// gMock matchers for Error, Status and Result<T>.
//
//   EXPECT_THAT(store->Open(d), StatusIs(ErrorCode::kNotFound));
//   EXPECT_THAT(Parse("x"), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("line 3")));
//   EXPECT_THAT(Write(...), IsOk());
//
// StatusIs(code[, message_matcher]) matches a failed Status/Result whose error
// has `code` and whose message matches `message_matcher` (any matcher of
// std::string, or a string for equality); an OK value never matches. It also
// matches a bare Error. IsOk() matches a Status/Result that holds a value.
// Failures print the code and message (PrintTo below), never raw bytes.
// Branch on codes in tests as in code; match messages only where the message
// is the contract (it names the file, the line, the digest).
#pragma once

#include <gmock/gmock.h>

#include <expected>
#include <ostream>
#include <string>
#include <type_traits>

#include "oci/util/error.h"

namespace strata {

// Found by argument-dependent lookup: gtest prints Error/Result values with
// these instead of their bytes.
inline void PrintTo(ErrorCode code, std::ostream* os) { *os << ErrorCodeName(code); }
inline void PrintTo(const Error& e, std::ostream* os) {
  *os << ErrorCodeName(e.code()) << ": " << ::testing::PrintToString(e.message());
}
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  if (!r.has_value()) {
    PrintTo(r.error(), os);
  } else if constexpr (std::is_void_v<T>) {
    *os << "OK";
  } else {
    *os << "OK: " << ::testing::PrintToString(*r);
  }
}

namespace testing {
namespace internal_status {

// The Error held by `v`, or nullptr when `v` is OK.
inline const Error* ErrorOf(const Error& e) { return &e; }
template <typename T>
const Error* ErrorOf(const Result<T>& r) {
  return r.has_value() ? nullptr : &r.error();
}

class StatusIsMatcher {
 public:
  StatusIsMatcher(ErrorCode code, ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename V>
  bool MatchAndExplain(const V& value, ::testing::MatchResultListener* listener) const {
    const Error* e = ErrorOf(value);
    if (e == nullptr) {
      *listener << "which is OK";
      return false;
    }
    if (e->code() != code_) {
      *listener << "whose code is " << ErrorCodeName(e->code());
      return false;
    }
    ::testing::StringMatchResultListener inner;
    if (!message_.MatchAndExplain(e->message(), &inner)) {
      *listener << "whose message " << ::testing::PrintToString(e->message()) << " does not match";
      if (!inner.str().empty()) *listener << ", " << inner.str();
      return false;
    }
    return true;
  }

  void DescribeTo(std::ostream* os) const {
    *os << "fails with " << ErrorCodeName(code_) << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "is OK, or does not fail with " << ErrorCodeName(code_) << " and a message that ";
    message_.DescribeTo(os);
  }

 private:
  ErrorCode code_;
  ::testing::Matcher<const std::string&> message_;
};

class IsOkMatcher {
 public:
  template <typename V>
  bool MatchAndExplain(const V& value, ::testing::MatchResultListener* listener) const {
    const Error* e = ErrorOf(value);
    if (e != nullptr) {
      *listener << "which failed with " << ErrorCodeName(e->code()) << ": " << e->message();
      return false;
    }
    return true;
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

}  // namespace internal_status

// A failed Status/Result<T> (or an Error) with `code`, any message.
inline ::testing::PolymorphicMatcher<internal_status::StatusIsMatcher> StatusIs(ErrorCode code) {
  return ::testing::MakePolymorphicMatcher(
      internal_status::StatusIsMatcher(code, ::testing::A<const std::string&>()));
}

// A failed Status/Result<T> (or an Error) with `code` and a message matching
// `message` (a matcher such as HasSubstr("..."), or a string for equality).
template <typename M>
::testing::PolymorphicMatcher<internal_status::StatusIsMatcher> StatusIs(ErrorCode code,
                                                                         M&& message) {
  return ::testing::MakePolymorphicMatcher(internal_status::StatusIsMatcher(
      code, ::testing::SafeMatcherCast<const std::string&>(std::forward<M>(message))));
}

// A Status/Result<T> that holds a value.
inline ::testing::PolymorphicMatcher<internal_status::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(internal_status::IsOkMatcher());
}

}  // namespace testing
}  // namespace strata
