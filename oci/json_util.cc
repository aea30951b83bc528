#include "oci/json_util.h"

#include <algorithm>

namespace strata::oci {

Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return MakeError(ErrorCode::kInvalidArgument, "{}: invalid JSON", what);
  return j;
}

Result<std::string> GetString(const nlohmann::json& obj, std::string_view key,
                              std::string_view what, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return MakeError(ErrorCode::kInvalidArgument, "{}: missing \"{}\"", what, key);
    return std::string();
  }
  if (!it->is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be a string", what, key);
  }
  return it->get<std::string>();
}

Result<int64_t> GetInt(const nlohmann::json& obj, std::string_view key, std::string_view what,
                       bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return MakeError(ErrorCode::kInvalidArgument, "{}: missing \"{}\"", what, key);
    return 0;
  }
  if (!it->is_number_integer()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be an integer", what, key);
  }
  return it->get<int64_t>();
}

Result<std::vector<std::string>> GetStringList(const nlohmann::json& obj, std::string_view key,
                                               std::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be an array", what, key);
  }
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must hold strings", what, key);
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> GetStringMap(const nlohmann::json& obj,
                                                        std::string_view key,
                                                        std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be an object", what, key);
  }
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}.{}\" must be a string", what, key, k);
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

nlohmann::json ExtraFields(const nlohmann::json& obj,
                           std::initializer_list<std::string_view> known) {
  nlohmann::json extra = nlohmann::json::object();
  if (!obj.is_object()) return extra;
  for (const auto& [k, v] : obj.items()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) extra[k] = v;
  }
  return extra;
}

std::string DumpJson(const nlohmann::json& j, int indent, char indent_char) {
  return j.dump(indent, indent_char, false, nlohmann::json::error_handler_t::replace);
}

void MergeExtra(nlohmann::json& obj, const nlohmann::json& extra) {
  if (!extra.is_object()) return;
  for (const auto& [k, v] : extra.items()) {
    if (!obj.contains(k)) obj[k] = v;
  }
}

}  // namespace strata::oci
