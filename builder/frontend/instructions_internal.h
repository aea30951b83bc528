// Helpers shared by the instruction parser's files (instructions.cc,
// instruction_values.cc, instruction_expand.cc, instruction_format.cc).
// Internal to builder/frontend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "builder/frontend/instructions.h"

namespace strata::builder::internal {

std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
bool IsWs(char c);
std::string_view Trim(std::string_view s);
std::vector<std::string> SplitWhitespace(std::string_view s);
std::vector<std::string_view> Split(std::string_view s, char sep);
// Edit distance with adjacent transpositions ("RNU" is one edit from "RUN").
size_t EditDistance(std::string_view a, std::string_view b);
CommandLine ParseCommandLine(std::string_view args);
Result<std::vector<KeyValue>> ParseNameVal(std::string_view rest, std::string_view what,
                                           char escape);
bool IsHeredocWord(std::string_view w);
Result<int64_t> ParseInt(std::string_view s);
Result<bool> ParseBoolValue(std::string_view key, std::string_view v);

}  // namespace strata::builder::internal
