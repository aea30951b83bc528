#include "registry/errors.h"

#include <nlohmann/json.hpp>

namespace strata::registry {

std::vector<RegistryErrorEntry> ParseRegistryErrors(std::string_view body) {
  std::vector<RegistryErrorEntry> out;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return out;
  for (const auto& e : j["errors"]) {
    if (!e.is_object()) continue;
    RegistryErrorEntry entry;
    if (e.contains("code") && e["code"].is_string()) entry.code = e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string())
      entry.message = e["message"].get<std::string>();
    out.push_back(std::move(entry));
  }
  return out;
}

ErrorCode ErrorCodeForStatus(int status, const std::vector<RegistryErrorEntry>& errors) {
  for (const auto& e : errors) {
    if (e.code == "DIGEST_INVALID" || e.code == "SIZE_INVALID")
      return ErrorCode::kFailedPrecondition;
  }
  if (status == 401) return ErrorCode::kUnauthenticated;
  if (status == 403) return ErrorCode::kPermissionDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status == 405) return ErrorCode::kUnimplemented;
  if (status == 429 || status >= 500) return ErrorCode::kUnavailable;
  if (status == 416) return ErrorCode::kFailedPrecondition;
  return ErrorCode::kInvalidArgument;
}

Error ResponseError(std::string_view what, const Response& resp) {
  auto errors = ParseRegistryErrors(resp.body);
  std::string msg = fmt::format("{}: HTTP {}", what, resp.status);
  for (size_t i = 0; i < errors.size() && i < 5; ++i) {
    msg += i == 0 ? ": " : "; ";
    msg += errors[i].code;
    if (!errors[i].message.empty()) msg += ": " + errors[i].message;
  }
  return Error(ErrorCodeForStatus(resp.status, errors), std::move(msg));
}

}  // namespace strata::registry
