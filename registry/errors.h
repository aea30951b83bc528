// Registry error responses (distribution spec "Error Codes"): a non-2xx
// response body {"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":…}]}.
//
// The protocol codes are data: ParseRegistryErrors turns them into
// ProtocolCode values, and RegistryError keeps them, with the HTTP status, on
// the error the client's puller and pusher pass around, so decisions (restart
// an upload whose session is gone, fall back from a refused mount, retry
// TOOMANYREQUESTS) are taken on codes, never on message text. The strata
// ErrorCode of such an error comes from the codes first, then the status:
//   DIGEST_INVALID, SIZE_INVALID            FailedPrecondition
//   UNAUTHORIZED (or 401)                   Unauthenticated
//   DENIED (or 403)                         PermissionDenied
//   TOOMANYREQUESTS (or 429, 5xx)           Unavailable
//   UNSUPPORTED (or 405)                    Unimplemented
//   *_UNKNOWN (or 404)                      NotFound
//   other 4xx                               InvalidArgument
//
// Thread-safety: value types and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "registry/transport.h"

namespace strata::registry {

// The error codes of the OCI distribution spec (v1.1, "Error Codes").
enum class ProtocolCode {
  kUnknown,  // a code the spec does not define (kept verbatim in RegistryErrorEntry::raw)
  kBlobUnknown,
  kBlobUploadInvalid,
  kBlobUploadUnknown,
  kDigestInvalid,
  kManifestBlobUnknown,
  kManifestInvalid,
  kManifestUnknown,
  kNameInvalid,
  kNameUnknown,
  kSizeInvalid,
  kUnauthorized,
  kDenied,
  kUnsupported,
  kTooManyRequests,
};

// "BLOB_UNKNOWN", …; "UNKNOWN" for kUnknown.
std::string_view ProtocolCodeName(ProtocolCode code);
// The code named `name` (exact, upper case as the spec spells it); kUnknown otherwise.
ProtocolCode ParseProtocolCode(std::string_view name);

struct RegistryErrorEntry {
  ProtocolCode code = ProtocolCode::kUnknown;
  std::string raw;      // the code as the registry sent it, e.g. "MANIFEST_UNKNOWN"
  std::string message;  // the registry's text
};

// Parses the errors array; empty if the body is not registry error JSON.
std::vector<RegistryErrorEntry> ParseRegistryErrors(std::string_view body);

// ErrorCode for an HTTP status plus the registry's error codes (table above).
ErrorCode ErrorCodeForStatus(int status, const std::vector<RegistryErrorEntry>& errors);

// An Error plus, when it came from a registry response, the HTTP status and
// the protocol codes of its body. Converts implicitly from an Error (a
// connection failure, a local failure: status 0, no codes).
class RegistryError {
 public:
  RegistryError(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  // "<what>: HTTP <status>: CODE: message; …". `what` names the operation,
  // registry, repository and digest; it must not contain credentials
  // (nothing from the request headers is ever used).
  RegistryError(std::string_view what, const Response& resp);

  const Error& error() const { return error_; }
  ErrorCode code() const { return error_.code(); }
  const std::string& message() const { return error_.message(); }
  int http_status() const { return http_status_; }
  const std::vector<RegistryErrorEntry>& entries() const { return entries_; }
  // True if the registry's body carried `code`.
  bool Has(ProtocolCode code) const;
  // True if the registry answered with a protocol error body at all.
  bool HasProtocolCodes() const { return !entries_.empty(); }

  // "context: message"; status and codes are kept.
  RegistryError Wrap(std::string_view context) const;

 private:
  Error error_;
  int http_status_ = 0;
  std::vector<RegistryErrorEntry> entries_;
};

template <typename T>
using RegistryResult = std::expected<T, RegistryError>;

// The Error of RegistryError(what, resp).
Error ResponseError(std::string_view what, const Response& resp);

// Drops the protocol details at an API that returns plain Result<T>.
template <typename T>
Result<T> ToResult(RegistryResult<T> r) {
  if (!r) return std::unexpected(r.error().error());
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return std::move(*r);
  }
}

}  // namespace strata::registry
