// Registry error responses (distribution spec "Error Codes"): a non-2xx
// response body {"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":…}]}.
// The protocol codes are kept in the message, and the HTTP status picks the
// strata ErrorCode so callers can branch: 401 Unauthenticated, 403
// PermissionDenied, 404 NotFound, 429/5xx Unavailable, DIGEST_INVALID /
// SIZE_INVALID FailedPrecondition, other 4xx InvalidArgument.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "registry/transport.h"

namespace strata::registry {

struct RegistryErrorEntry {
  std::string code;     // e.g. "MANIFEST_UNKNOWN"
  std::string message;  // the registry's text
};

// Parses the errors array; empty if the body is not registry error JSON.
std::vector<RegistryErrorEntry> ParseRegistryErrors(std::string_view body);

// ErrorCode for an HTTP status plus the registry's error codes.
ErrorCode ErrorCodeForStatus(int status, const std::vector<RegistryErrorEntry>& errors);

// An Error for a failed response: "<what>: HTTP <status>: CODE: message; …".
// `what` names the operation, registry, repository and digest; it must not
// contain credentials (nothing from the request headers is ever used).
Error ResponseError(std::string_view what, const Response& resp);

}  // namespace strata::registry
