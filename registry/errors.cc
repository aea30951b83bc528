#include "registry/errors.h"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

namespace strata::registry {
namespace {

constexpr std::array<std::pair<ProtocolCode, std::string_view>, 14> kCodeNames = {{
    {ProtocolCode::kBlobUnknown, "BLOB_UNKNOWN"},
    {ProtocolCode::kBlobUploadInvalid, "BLOB_UPLOAD_INVALID"},
    {ProtocolCode::kBlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN"},
    {ProtocolCode::kDigestInvalid, "DIGEST_INVALID"},
    {ProtocolCode::kManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN"},
    {ProtocolCode::kManifestInvalid, "MANIFEST_INVALID"},
    {ProtocolCode::kManifestUnknown, "MANIFEST_UNKNOWN"},
    {ProtocolCode::kNameInvalid, "NAME_INVALID"},
    {ProtocolCode::kNameUnknown, "NAME_UNKNOWN"},
    {ProtocolCode::kSizeInvalid, "SIZE_INVALID"},
    {ProtocolCode::kUnauthorized, "UNAUTHORIZED"},
    {ProtocolCode::kDenied, "DENIED"},
    {ProtocolCode::kUnsupported, "UNSUPPORTED"},
    {ProtocolCode::kTooManyRequests, "TOOMANYREQUESTS"},
}};

bool AnyOf(const std::vector<RegistryErrorEntry>& errors, std::initializer_list<ProtocolCode> cs) {
  for (const auto& e : errors)
    for (ProtocolCode c : cs)
      if (e.code == c) return true;
  return false;
}

}  // namespace

std::string_view ProtocolCodeName(ProtocolCode code) {
  for (const auto& [c, name] : kCodeNames)
    if (c == code) return name;
  return "UNKNOWN";
}

ProtocolCode ParseProtocolCode(std::string_view name) {
  for (const auto& [c, n] : kCodeNames)
    if (n == name) return c;
  return ProtocolCode::kUnknown;
}

std::vector<RegistryErrorEntry> ParseRegistryErrors(std::string_view body) {
  std::vector<RegistryErrorEntry> out;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return out;
  for (const auto& e : j["errors"]) {
    if (!e.is_object()) continue;
    RegistryErrorEntry entry;
    if (e.contains("code") && e["code"].is_string()) entry.raw = e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string())
      entry.message = e["message"].get<std::string>();
    entry.code = ParseProtocolCode(entry.raw);
    out.push_back(std::move(entry));
  }
  return out;
}

ErrorCode ErrorCodeForStatus(int status, const std::vector<RegistryErrorEntry>& errors) {
  using P = ProtocolCode;
  if (AnyOf(errors, {P::kDigestInvalid, P::kSizeInvalid})) return ErrorCode::kFailedPrecondition;
  if (AnyOf(errors, {P::kTooManyRequests})) return ErrorCode::kUnavailable;
  if (AnyOf(errors, {P::kUnauthorized}) || status == 401) return ErrorCode::kUnauthenticated;
  if (AnyOf(errors, {P::kDenied}) || status == 403) return ErrorCode::kPermissionDenied;
  if (AnyOf(errors, {P::kUnsupported}) || status == 405) return ErrorCode::kUnimplemented;
  if (status == 429 || status >= 500) return ErrorCode::kUnavailable;
  if (AnyOf(errors,
            {P::kBlobUnknown, P::kBlobUploadUnknown, P::kManifestUnknown, P::kNameUnknown}) ||
      status == 404)
    return ErrorCode::kNotFound;
  if (status == 416) return ErrorCode::kFailedPrecondition;
  return ErrorCode::kInvalidArgument;
}

RegistryError::RegistryError(std::string_view what, const Response& resp)
    : error_(ErrorCode::kInternal, ""),
      http_status_(resp.status),
      entries_(ParseRegistryErrors(resp.body)) {
  std::string msg = fmt::format("{}: HTTP {}", what, resp.status);
  for (size_t i = 0; i < entries_.size() && i < 5; ++i) {
    msg += i == 0 ? ": " : "; ";
    msg += entries_[i].raw;
    if (!entries_[i].message.empty()) msg += ": " + entries_[i].message;
  }
  error_ = Error(ErrorCodeForStatus(resp.status, entries_), std::move(msg));
}

bool RegistryError::Has(ProtocolCode code) const { return AnyOf(entries_, {code}); }

RegistryError RegistryError::Wrap(std::string_view context) const {
  RegistryError out = *this;
  out.error_ = error_.Wrap(context);
  return out;
}

Error ResponseError(std::string_view what, const Response& resp) {
  return RegistryError(what, resp).error();
}

}  // namespace strata::registry
