// ShellLexer: the shell-word expansion BuildKit applies to Dockerfile
// instruction arguments (not to RUN/CMD/ENTRYPOINT, which the shell expands).
//
// Supports $VAR, ${VAR}, ${VAR:-w}, ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR:?m},
// ${VAR?m}, ${VAR#p}, ${VAR##p}, ${VAR%p}, ${VAR%%p}, ${VAR/p/r}, ${VAR//p/r},
// single and double quotes and the Dockerfile escape character. Variables are
// looked up through an EnvGetter so the caller decides the scope (stage ENV,
// base-image ENV, ARGs in effect). The lexer holds only configuration; it is
// immutable after construction and safe to share between threads.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

// Returns the value of a variable, or nullopt if it is not set. An empty
// optional and an empty string differ: ${X-def} only substitutes when unset.
using EnvGetter = std::function<std::optional<std::string>(std::string_view name)>;

// An EnvGetter over nothing: every variable is unset.
EnvGetter EmptyEnv();

struct LexOptions {
  char escape = '\\';
  // Keep quote characters in the result (used to split lines into raw words).
  bool raw_quotes = false;
  // Keep escape characters in the result.
  bool raw_escapes = false;
  // Treat quotes as ordinary characters (heredoc bodies).
  bool skip_process_quotes = false;
  // Leave $VAR / ${VAR...} literally in place when VAR is unset. Used for the
  // static plan, where the base image's ENV is not known yet.
  bool skip_unset_env = false;
};

struct Expansion {
  std::string word;                 // the expanded text, inner spaces kept
  std::vector<std::string> words;   // the expanded text split into words after expansion
  std::set<std::string> matched;    // variable names that were set
  std::set<std::string> unmatched;  // variable names that were referenced but unset
};

class ShellLexer {
 public:
  explicit ShellLexer(LexOptions options = {}) : options_(options) {}
  explicit ShellLexer(char escape) { options_.escape = escape; }

  const LexOptions& options() const { return options_; }

  // Expands `word`. kInvalidArgument for syntax errors ("failed to process
  // \"${A\": syntax error: missing '}'") and for ${X:?msg} on an unset X.
  Result<Expansion> Process(std::string_view word, const EnvGetter& env) const;

  // Process(...).word
  Result<std::string> ProcessWord(std::string_view word, const EnvGetter& env) const;
  // Process(...).words
  Result<std::vector<std::string>> ProcessWords(std::string_view word, const EnvGetter& env) const;

 private:
  LexOptions options_;
};

}  // namespace strata::builder
