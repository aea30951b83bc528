#include "tools/strata/prune_options.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace strata::cli {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view value) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid duration \"{}\": {}", value, why);
  };
  std::string_view s = value;
  if (s.empty()) return bad("empty");
  if (s[0] == '+') s.remove_prefix(1);
  if (!s.empty() && s[0] == '-') return bad("negative");
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return bad("no number");
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && IsDigit(s[i])) ++i;
    size_t int_end = i;
    size_t frac_begin = i, frac_end = i;
    if (i < s.size() && s[i] == '.') {
      frac_begin = ++i;
      while (i < s.size() && IsDigit(s[i])) ++i;
      frac_end = i;
    }
    if (int_end == 0 && frac_end == frac_begin) return bad("expected a number");
    long double number = 0;
    for (size_t k = 0; k < int_end; ++k) number = number * 10 + (s[k] - '0');
    long double scale = 0.1L;
    for (size_t k = frac_begin; k < frac_end; ++k, scale /= 10) number += (s[k] - '0') * scale;
    size_t unit_begin = i;
    while (i < s.size() && !IsDigit(s[i]) && s[i] != '.') ++i;
    std::string_view unit = s.substr(unit_begin, i - unit_begin);
    long double ns;
    if (unit == "ns") {
      ns = 1;
    } else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") {
      ns = 1e3L;
    } else if (unit == "ms") {
      ns = 1e6L;
    } else if (unit == "s") {
      ns = 1e9L;
    } else if (unit == "m") {
      ns = 60e9L;
    } else if (unit == "h") {
      ns = 3600e9L;
    } else if (unit.empty()) {
      return bad("missing unit (ns, us, ms, s, m, h)");
    } else {
      return bad(fmt::format("unknown unit \"{}\" (ns, us, ms, s, m, h)", unit));
    }
    total += number * ns;
    if (total > 9.2e18L) return bad("overflow");
    s.remove_prefix(i);
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

Result<int64_t> ParseBuildxSize(std::string_view value) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid size \"{}\" (a number of bytes, or with a unit: 512MB, 1GB, 10g)",
                     value);
  };
  size_t i = 0;
  while (i < value.size() && IsDigit(value[i])) ++i;
  if (i == 0) return bad();
  size_t num_end = i;
  if (i < value.size() && value[i] == '.') {
    ++i;
    size_t f = i;
    while (i < value.size() && IsDigit(value[i])) ++i;
    if (i == f) return bad();
    num_end = i;
  }
  long double number = std::strtold(std::string(value.substr(0, num_end)).c_str(), nullptr);
  std::string unit = Lower(value.substr(i));
  if (!unit.empty() && unit[0] == ' ') unit.erase(0, 1);
  static const std::string kPrefixes = "kmgtp";
  long double mult = 1;
  if (!unit.empty() && kPrefixes.find(unit[0]) != std::string::npos) {
    mult = std::pow(1024.0L, static_cast<int>(kPrefixes.find(unit[0])) + 1);
    unit.erase(0, 1);
    if (!unit.empty() && unit[0] == 'i') unit.erase(0, 1);
  }
  if (!unit.empty() && unit[0] == 'b') unit.erase(0, 1);
  if (!unit.empty()) return bad();
  long double bytes = number * mult;
  if (bytes > 9.2e18L) return bad();
  return static_cast<int64_t>(bytes);
}

Result<PruneFilters> ParsePruneFilters(const std::vector<std::string>& values) {
  PruneFilters out;
  std::set<std::string> seen;
  for (const auto& v : values) {
    auto eq = v.find('=');
    if (eq == std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "bad prune filter \"{}\": expected KEY=VALUE",
                       v);
    }
    std::string key = Lower(v.substr(0, eq));
    std::string val = v.substr(eq + 1);
    if (key != "until") {
      return MakeError(ErrorCode::kInvalidArgument,
                       "unsupported prune filter \"{}\" (strata supports until=DURATION)", key);
    }
    if (!seen.insert(key).second) {
      return MakeError(ErrorCode::kInvalidArgument, "prune filter \"{}\" given twice", key);
    }
    auto d = ParseGoDuration(val);
    if (!d) return std::unexpected(d.error().Wrap("prune filter until"));
    out.until = *d;
  }
  return out;
}

int64_t CacheUsage(const std::vector<CacheEntry>& entries,
                   const std::unordered_map<std::string, int64_t>& blob_size) {
  int64_t total = 0;
  std::set<std::string> blobs;
  for (const auto& e : entries) {
    total += e.size;
    blobs.insert(e.blobs.begin(), e.blobs.end());
  }
  for (const auto& b : blobs) {
    if (auto it = blob_size.find(b); it != blob_size.end()) total += it->second;
  }
  return total;
}

int64_t SelectCacheForRemoval(std::vector<CacheEntry> entries,
                              const std::unordered_map<std::string, int64_t>& blob_size,
                              const CacheSelection& selection,
                              const std::function<bool(const CacheEntry&)>& remove) {
  std::stable_sort(entries.begin(), entries.end(), [](const CacheEntry& a, const CacheEntry& b) {
    return a.last_used < b.last_used;
  });
  // How many remaining records keep each blob: a blob is freed with the
  // last record that names it.
  std::unordered_map<std::string, int> refs;
  for (const auto& e : entries) {
    for (const auto& b : std::set<std::string>(e.blobs.begin(), e.blobs.end())) ++refs[b];
  }
  int64_t usage = CacheUsage(entries, blob_size);
  for (const auto& e : entries) {
    if (selection.keep_storage && usage <= *selection.keep_storage) break;
    if (selection.older_than && e.last_used >= *selection.older_than) continue;
    if (!remove(e)) continue;
    usage -= e.size;
    for (const auto& b : std::set<std::string>(e.blobs.begin(), e.blobs.end())) {
      if (--refs[b] == 0) {
        if (auto it = blob_size.find(b); it != blob_size.end()) usage -= it->second;
      }
    }
  }
  return usage;
}

}  // namespace strata::cli
