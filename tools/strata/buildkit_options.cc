#include "tools/strata/buildkit_options.h"

#include <algorithm>
#include <cctype>

namespace strata::cli {

Result<std::vector<std::string>> SplitCsvFields(std::string_view value, std::string_view flag) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  for (;;) {
    cur.clear();
    if (i < value.size() && value[i] == '"') {
      // A quoted field: up to the closing quote, "" is a literal quote.
      ++i;
      bool closed = false;
      while (i < value.size()) {
        if (value[i] == '"') {
          if (i + 1 < value.size() && value[i + 1] == '"') {
            cur += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        cur += value[i++];
      }
      if (!closed) {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: unterminated quote", flag, value);
      }
      if (i < value.size() && value[i] != ',') {
        return MakeError(ErrorCode::kInvalidArgument, "{} {}: unexpected text after a quoted field",
                         flag, value);
      }
    } else {
      while (i < value.size() && value[i] != ',') {
        if (value[i] == '"') {
          return MakeError(ErrorCode::kInvalidArgument,
                           "{} {}: a quote inside an unquoted field (quote the whole field)", flag,
                           value);
        }
        cur += value[i++];
      }
    }
    out.push_back(cur);
    if (i >= value.size()) break;
    ++i;  // the comma
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValueFields(
    std::string_view value, std::string_view flag) {
  STRATA_ASSIGN_OR_RETURN(auto fields, SplitCsvFields(value, flag));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : fields) {
    auto eq = f.find('=');
    if (eq == std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: field \"{}\" is not KEY=VALUE", flag,
                       value, f);
    }
    std::string key = f.substr(0, eq);
    // Trimmed and lower-cased as BuildKit does; annotation keys keep their
    // case after the prefix, so only the prefix part is folded there.
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) key.erase(0, 1);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (key.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{} {}: field \"{}\" has an empty key", flag,
                       value, f);
    }
    auto dot = key.find('.');
    std::transform(key.begin(), dot == std::string::npos ? key.end() : key.begin() + dot,
                   key.begin(), [](unsigned char c) { return std::tolower(c); });
    out.emplace_back(std::move(key), f.substr(eq + 1));
  }
  return out;
}

Result<bool> ParseBoolOption(std::string_view flag, std::string_view key, std::string_view value) {
  if (value == "true" || value == "1" || value == "TRUE" || value == "True" || value == "t" ||
      value == "T") {
    return true;
  }
  if (value == "false" || value == "0" || value == "FALSE" || value == "False" || value == "f" ||
      value == "F") {
    return false;
  }
  return MakeError(ErrorCode::kInvalidArgument, "{} {}={}: want true or false", flag, key, value);
}

}  // namespace strata::cli
