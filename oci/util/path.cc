#include "oci/util/path.h"

namespace strata {

std::string CleanPath(std::string_view path) {
  const bool rooted = !path.empty() && path[0] == '/';
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.push_back(part);
      }
    } else {
      out.push_back(part);
    }
    i = j + 1;
  }
  std::string res = rooted ? "/" : "";
  for (size_t k = 0; k < out.size(); ++k) {
    if (k) res += "/";
    res += out[k];
  }
  if (res.empty()) return ".";
  return res;
}

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    if (end > start) out.emplace_back(p.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::optional<std::string> NormalizeInside(std::string_view p, std::string_view base) {
  if (p.starts_with('/')) return std::nullopt;
  std::vector<std::string> parts = SplitPath(base);
  for (auto& c : SplitPath(p)) {
    if (c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(c));
  }
  return JoinPath(parts);
}

Result<std::string> CleanEntryPath(std::string_view raw) {
  if (raw.starts_with('/')) {
    return MakeError(ErrorCode::kInvalidArgument, "absolute path is not allowed");
  }
  std::string out;
  for (const auto& comp : SplitPath(raw)) {
    if (comp == ".") continue;
    if (comp == "..") {
      return MakeError(ErrorCode::kInvalidArgument, "\"..\" in a path is not allowed");
    }
    if (!out.empty()) out += '/';
    out += comp;
  }
  return out;
}

}  // namespace strata
