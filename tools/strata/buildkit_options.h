// BuildKit's option strings: `-o type=oci,dest=out.tar`, `--cache-to
// type=registry,ref=R,mode=max`. A value is a CSV record (buildx reads it
// with Go's encoding/csv): fields split on commas, a field may be quoted
// with double quotes (`"name=a:1,b:2"`, `""` inside quotes is a quote);
// each field is KEY=VALUE. Pure functions; no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "oci/util/error.h"

namespace strata::cli {

// The fields of one CSV record. InvalidArgument (naming `flag` and the
// value) for an unterminated quote or a quote inside an unquoted field.
Result<std::vector<std::string>> SplitCsvFields(std::string_view value, std::string_view flag);

// The fields as (key, value) pairs, keys lower-cased as BuildKit does, in
// order. InvalidArgument for a field without `=` or with an empty key.
Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValueFields(std::string_view value,
                                                                             std::string_view flag);

// BuildKit's boolean option values ("true", "1", "false", "0", as Go's
// strconv.ParseBool). InvalidArgument naming flag, key and value otherwise.
Result<bool> ParseBoolOption(std::string_view flag, std::string_view key, std::string_view value);

}  // namespace strata::cli
