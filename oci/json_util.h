// Non-throwing helpers to read typed fields out of nlohmann::json objects.
// Each Get* returns InvalidArgument naming `what` and the key on a type
// mismatch; a missing key yields the default, or InvalidArgument naming the
// key when the caller passes required = true.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/util/error.h"

namespace strata::oci {

// Parses JSON text without exceptions; InvalidArgument naming `what` on error.
Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what);

Result<std::string> GetString(const nlohmann::json& obj, std::string_view key,
                              std::string_view what, bool required = false);
Result<int64_t> GetInt(const nlohmann::json& obj, std::string_view key, std::string_view what,
                       bool required = false);
Result<std::vector<std::string>> GetStringList(const nlohmann::json& obj, std::string_view key,
                                               std::string_view what);
Result<std::map<std::string, std::string>> GetStringMap(const nlohmann::json& obj,
                                                        std::string_view key,
                                                        std::string_view what);
// Object with all keys except `known` (the round-trip store of unknown fields).
nlohmann::json ExtraFields(const nlohmann::json& obj,
                           std::initializer_list<std::string_view> known);
// Serializes without ever throwing: invalid UTF-8 in strings (a Dockerfile or
// a file name in another encoding) becomes U+FFFD, as Go's encoding/json does.
// `indent` < 0 is the compact form strata hashes and stores.
std::string DumpJson(const nlohmann::json& j, int indent = -1, char indent_char = ' ');

// Copies every key of `extra` into `obj` that `obj` does not already have.
void MergeExtra(nlohmann::json& obj, const nlohmann::json& extra);

}  // namespace strata::oci
