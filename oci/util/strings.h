// String helpers shared by every layer (ASCII only; no locale): case,
// whitespace trimming, splitting and joining, and the byte sizes users type
// (--max-layer-size). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata {

// ASCII lower case ("FROM" -> "from").
std::string Lower(std::string_view s);
// Case-insensitive ASCII equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// ' ', \t, \r, \n, \v, \f.
inline bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
std::string_view TrimLeft(std::string_view s);
std::string_view TrimRight(std::string_view s);
std::string_view Trim(std::string_view s);

// Fields between `sep`, empty ones kept: Split("a,,b", ',') = {"a", "", "b"};
// Split("", ',') = {""}. The views point into `s`.
std::vector<std::string_view> Split(std::string_view s, char sep);
// Fields between runs of whitespace, empty ones dropped.
std::vector<std::string> SplitWhitespace(std::string_view s);
// parts[0] + sep + parts[1] + ...
std::string Join(const std::vector<std::string>& parts, std::string_view sep);

// "64G", "512MiB", "1048576": a positive number of bytes with an optional
// suffix k, m, g or t (powers of 1024; "b", "i", "ib" may follow; any case).
// InvalidArgument for anything else, zero, or an overflow.
Result<uint64_t> ParseByteSize(std::string_view text);
// The exact size in the largest unit that divides it ("64 GiB", "1536 bytes").
std::string FormatByteSize(uint64_t bytes);

}  // namespace strata
