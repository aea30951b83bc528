// Lexical paths: slash-separated, never touching the file system. The one
// CleanPath (Go's path.Clean) and the checks built on it for names that come
// from archives and layers. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata {

// Go's path.Clean: "./a//b/../c/" -> "a/c", "/../a" -> "/a", "" -> ".",
// "a/../.." -> "..".
std::string CleanPath(std::string_view path);

// The non-empty components of `path` ("/a//b/" -> {"a", "b"}).
std::vector<std::string> SplitPath(std::string_view path);
// {"a", "b"} -> "a/b".
std::string JoinPath(const std::vector<std::string>& parts);

// `p` resolved lexically against `base` (both relative, e.g. inside an
// archive): "" for the root itself; nullopt if `p` is absolute or climbs above
// the root.
std::optional<std::string> NormalizeInside(std::string_view p, std::string_view base = "");

// A tar entry name as a relative path without "." or empty components ("" for
// the root). InvalidArgument if it is absolute or has a ".." component: a
// layer names paths inside its root and is refused rather than reinterpreted.
Result<std::string> CleanEntryPath(std::string_view raw);

}  // namespace strata
