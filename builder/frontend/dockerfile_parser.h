// Dockerfile parser: text -> a flat list of AST nodes, one per instruction.
//
// This layer knows the Dockerfile *syntax* (parser directives, comments, line
// continuations with the escape character, CRLF, a UTF-8 BOM, leading
// --flags, heredocs) but no instruction semantics; instructions.h turns nodes
// into typed commands. Every node carries its 1-based source line range.
// Pure functions, no shared state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

// One heredoc body attached to an instruction (`RUN <<EOF`, `COPY <<-"EOT" /x`).
struct Heredoc {
  std::string name;     // the delimiter, quotes removed
  std::string content;  // body lines each ending in '\n'; leading tabs removed when chomp
  bool expand = true;   // false when the delimiter was quoted: no variable expansion
  bool chomp = false;   // `<<-`: leading tabs stripped from body and terminator
  int fd = -1;          // `3<<EOF` redirects fd 3; -1 when no number was given
  bool operator==(const Heredoc&) const = default;
};

struct ParserDirectives {
  std::string syntax;  // `# syntax=` (recorded, never acted on)
  std::string check;   // `# check=`
  char escape = '\\';  // `# escape=` (\ or `)
};

struct ParseWarning {
  int line = 0;
  std::string message;
};

struct Node {
  std::string keyword;             // lowercased instruction name: "run"
  std::string keyword_original;    // as written: "Run"
  std::vector<std::string> flags;  // leading `--name[=value]` words, as written
  std::string args;                // text after the keyword and flags, continuations joined
  std::string original;            // the whole logical line, continuations joined
  std::vector<Heredoc> heredocs;
  int start_line = 0;  // 1-based, first physical line of the instruction
  int end_line = 0;    // last physical line, including heredoc terminators
};

struct AstFile {
  ParserDirectives directives;
  std::vector<Node> nodes;
  std::vector<ParseWarning> warnings;
};

// Parses Dockerfile text. Errors are kInvalidArgument with the message
// "<file_name>:<line>: <what>" (unterminated heredoc, bad directive, empty
// file). Unknown instruction names are not an error here.
Result<AstFile> ParseAst(std::string_view text, std::string_view file_name = "Dockerfile");

// Instructions whose lines may open heredocs (RUN, COPY, ADD).
bool KeywordAllowsHeredoc(std::string_view keyword);

// Splits `s` at unquoted, unescaped whitespace, keeping quotes and escape
// characters in the words (BuildKit's parseWords). Used for ENV/LABEL/ARG.
std::vector<std::string> SplitWordsRaw(std::string_view s, char escape);

// Formats the location prefix used by every frontend error.
std::string Where(std::string_view file_name, int line);

}  // namespace strata::builder
