// Helpers shared by the instruction parser's files (instructions.cc,
// instruction_values.cc, instruction_expand.cc, instruction_format.cc).
// Internal to builder/frontend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "builder/frontend/instructions.h"
#include "oci/util/strings.h"

namespace strata::builder::internal {

std::string Upper(std::string_view s);
// The shared string helpers (oci/util/strings.h) under the names this
// parser's files use.
using strata::Lower;
using strata::Split;
using strata::SplitWhitespace;
using strata::Trim;
inline bool IsWs(char c) { return IsAsciiSpace(c); }
// Edit distance with adjacent transpositions ("RNU" is one edit from "RUN").
size_t EditDistance(std::string_view a, std::string_view b);
CommandLine ParseCommandLine(std::string_view args);
Result<std::vector<KeyValue>> ParseNameVal(std::string_view rest, std::string_view what,
                                           char escape);
bool IsHeredocWord(std::string_view w);
Result<int64_t> ParseInt(std::string_view s);
Result<bool> ParseBoolValue(std::string_view key, std::string_view v);

}  // namespace strata::builder::internal
