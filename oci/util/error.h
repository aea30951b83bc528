// Error values used across every strata API.
//
// An Error is a code (containerd's categories) plus a human message. Functions
// that can fail return Result<T> (std::expected<T, Error>) or Status
// (Result<void>). Callers branch on code(), never on message text. Context is
// added on the way up with Error::Wrap ("push sha256:...: " + inner message).
// Only tools/strata/main.cc turns an Error into stderr text and an exit code.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace strata {

enum class ErrorCode {
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kFailedPrecondition,  // digest/size mismatch, wrong state
  kUnauthenticated,
  kPermissionDenied,
  kUnavailable,  // retryable (network, 5xx, 429)
  kUnimplemented,
  kDataLoss,  // stored bytes do not match their name, truncated data
  kCancelled,
  kInternal,
};

std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message"; the code is kept.
  Error Wrap(std::string_view context) const {
    return Error(code_, fmt::format("{}: {}", context, message_));
  }

  bool operator==(const Error&) const = default;

 private:
  ErrorCode code_;
  std::string message_;
};

// std::expected that must not be dropped: ignoring a Result or a Status is a
// compile error under -Werror (cast to void where dropping one is meant).
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using Base = std::expected<T, Error>;
  using Base::Base;
  Result(const Base& b) : Base(b) {}        // NOLINT(google-explicit-constructor)
  Result(Base&& b) : Base(std::move(b)) {}  // NOLINT(google-explicit-constructor)
};
using Status = Result<void>;

inline Status OkStatus() { return {}; }

// MakeError(ErrorCode::kNotFound, "blob {} not found", d) -> std::unexpected<Error>.
template <typename... Args>
std::unexpected<Error> MakeError(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error(code, fmt::format(f, std::forward<Args>(args)...)));
}

inline std::unexpected<Error> Unexpected(Error e) { return std::unexpected(std::move(e)); }

// Errno-based error: "<what>: <strerror(err)>", code from the errno class.
std::unexpected<Error> ErrnoError(int err, std::string_view what);

}  // namespace strata

#define STRATA_CONCAT_INNER_(a, b) a##b
#define STRATA_CONCAT_(a, b) STRATA_CONCAT_INNER_(a, b)

// Evaluates a Status/Result expression and returns its error from the calling
// function if it failed.
#define STRATA_RETURN_IF_ERROR(expr)                                     \
  do {                                                                   \
    auto&& strata_status_ = (expr);                                      \
    if (!strata_status_) return std::unexpected(strata_status_.error()); \
  } while (0)

// STRATA_ASSIGN_OR_RETURN(auto x, Foo()); declares x from a Result or returns
// the error.
#define STRATA_ASSIGN_OR_RETURN(lhs, expr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_CONCAT_(strata_result_, __LINE__), lhs, expr)
#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)       \
  auto tmp = (expr);                                        \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)
