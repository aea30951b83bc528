// DockerIgnore: the .dockerignore matcher with moby/patternmatcher semantics.
//
// Lines are read as ignorefile.ReadAll does (BOM, '#' comments, trimmed,
// `!` exceptions, paths cleaned, a leading '/' dropped) and matched as
// patternmatcher.MatchesOrParentMatches does: '*' and '?' never cross '/',
// '**' crosses directories, `[...]` classes, '\' escapes; a path is excluded
// when it or one of its parent directories matches, and later patterns win,
// so `!dir/keep.txt` re-includes a file under an excluded `dir`.
//
// The Dockerfile and the ignore file are always read by the frontend itself;
// exclusion only affects what COPY/ADD can see (Dockerfile reference).
// Immutable after Load; safe to share between threads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"
#include "oci/util/path.h"

namespace strata::builder {

class DockerIgnore {
 public:
  struct Pattern {
    std::string text;  // cleaned, without '!'
    bool exclusion = false;
    struct Token {
      enum Kind { kLiteral, kAnyChar, kStar, kDoubleStarDir, kDoubleStarAll, kClass } kind;
      char c = 0;
      bool negate = false;
      std::vector<std::pair<char, char>> ranges = {};
    };
    enum class Type { kExact, kPrefix, kSuffix, kGlob } type = Type::kExact;
    std::vector<Token> tokens;
    std::vector<std::string> dirs;  // text split at '/'
    bool Match(std::string_view path) const;
  };

  DockerIgnore() = default;

  // Looks for <dockerfile>.dockerignore next to the Dockerfile (`dockerfile`
  // relative to `context_dir` unless absolute), then <context_dir>/.dockerignore.
  // No file = nothing excluded. kInvalidArgument for a bad pattern, naming
  // "<file>:<line>".
  static Result<DockerIgnore> Load(const std::filesystem::path& context_dir,
                                   const std::filesystem::path& dockerfile = "Dockerfile");

  // Parses ignore-file content. `file_name` is used in errors.
  static Result<DockerIgnore> Parse(std::string_view content,
                                    std::string_view file_name = ".dockerignore");

  // The patterns as ReadAll would return them ("!a/b" for exceptions).
  const std::vector<std::string>& lines() const { return lines_; }
  // Which file the patterns came from; empty when none was found.
  const std::filesystem::path& source() const { return source_; }

  // True if `relpath` (slash-separated, relative to the context) is excluded.
  bool Matches(std::string_view relpath) const;

  // True if some exception pattern could re-include a path below `dir`, so a
  // walker must descend into an excluded directory instead of skipping it.
  bool MayReincludeUnder(std::string_view dir) const;

  bool HasExceptions() const { return has_exceptions_; }

 private:
  std::vector<std::string> lines_;
  std::vector<Pattern> patterns_;
  std::filesystem::path source_;
  bool has_exceptions_ = false;
};

}  // namespace strata::builder
