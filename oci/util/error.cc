#include "oci/util/error.h"

#include <cerrno>
#include <cstring>

namespace strata {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kAlreadyExists:
      return "AlreadyExists";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kFailedPrecondition:
      return "FailedPrecondition";
    case ErrorCode::kUnauthenticated:
      return "Unauthenticated";
    case ErrorCode::kPermissionDenied:
      return "PermissionDenied";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kUnimplemented:
      return "Unimplemented";
    case ErrorCode::kDataLoss:
      return "DataLoss";
    case ErrorCode::kCancelled:
      return "Cancelled";
    case ErrorCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::unexpected<Error> ErrnoError(int err, std::string_view what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      code = ErrorCode::kNotFound;
      break;
    case EEXIST:
    case ENOTEMPTY:
      code = ErrorCode::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      code = ErrorCode::kPermissionDenied;
      break;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
      code = ErrorCode::kInvalidArgument;
      break;
    case EAGAIN:
    case EINTR:
    case ENOSPC:
    case EMFILE:
      code = ErrorCode::kUnavailable;
      break;
    default:
      break;
  }
  return std::unexpected(Error(code, fmt::format("{}: {}", what, std::strerror(err))));
}

}  // namespace strata
