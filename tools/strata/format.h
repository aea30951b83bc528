// Template: the small subset of Go's text/template that docker's --format
// flag is scripted with, rendered over JSON values.
//
//   literal text             copied; "\t" and "\n" (backslash sequences, as
//                            typed on a shell command line) become tab/newline
//   {{.}}                    the whole value
//   {{.A.B}}                 field B of object field A
//   {{json .X}}              X as compact JSON (docker's json function)
//   {{index .X 0}}           element 0 of array X; {{index .X "k"}} the value
//                            of key k of object X ("" when the key is absent,
//                            as Go's index on a map gives the zero value)
//   {{join .X ","}}          an array of strings joined with ","
//   {{upper .X}} {{lower .X}} {{len .X}}
//   {{print .X .Y}} {{println .X}}
//   {{range .X}}...{{.}}...{{else}}...{{end}}
//                            the body once per element of list X (or value
//                            of map X), with "." the element; else if empty
//   {{if .X}}...{{else}}...{{end}}
//                            Go's truth: false, 0, "", null, empty list/map
//                            are false
//   {{- ... -}}              trims the white space on that side
//   a leading "table"        docker's table mode: the rest is the row template
//                            and a header row (the fields' names in capitals,
//                            or the caller's names for them) is printed first
//
// Values print as Go prints them: strings raw, numbers and booleans as
// literals, arrays as "[a b]", objects as "map[k:v]", null as "<nil>".
// A field the value does not have, a function or action this subset does not
// know (with, define, variables, pipelines, ...) is an InvalidArgument naming it: a template never
// prints an empty string for a typo.
//
// Pure; a parsed Template is immutable and may be rendered from any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/util/error.h"

namespace strata::cli {

class Template {
 public:
  // Parses `text`. InvalidArgument naming the problem ("template: unclosed
  // action", "template: unknown function \"foo\"").
  static Result<Template> Parse(std::string_view text);

  // Renders the template over `data`. InvalidArgument naming a field that
  // `data` does not have, with the fields it does have.
  Result<std::string> Render(const nlohmann::json& data) const;

  // True if the template began with "table".
  bool table() const { return table_; }
  // The header row of table mode: each action's field name in capitals
  // (`headers` maps a field name such as "ID" to docker's column title such
  // as "IMAGE ID"), literal text kept.
  std::string Header(const std::map<std::string, std::string>& headers) const;

  struct Arg {
    enum Kind { kPath, kString, kNumber } kind = kPath;
    std::vector<std::string> path;  // kPath: {} is "."
    std::string text;               // kString
    long long number = 0;           // kNumber
  };
  struct Node {
    bool is_text = true;
    std::string text;      // literal text
    std::string function;  // empty: print args[0]
    std::vector<Arg> args;
    std::string block;            // "range" or "if": args[0] is what it tests
    std::vector<Node> body;       // of a block
    std::vector<Node> else_body;  // of a block, after {{else}}
  };

 private:
  bool table_ = false;
  std::vector<Node> nodes_;
};

// What a verb's --format FORMAT prints for `rows` (each a JSON object):
//   "json"      one compact JSON object per line (docker's --format json);
//   a template  each row rendered and followed by a newline; in table mode a
//               header row first and the cells (split on tabs) aligned as
//               docker's tabwriter does (min width 10, padding 3).
// `sample` is a row with every field (any values): the template is checked
// against it so a typo fails even when there are no rows.
Result<std::string> FormatRows(std::string_view format, const std::vector<nlohmann::json>& rows,
                               const nlohmann::json& sample,
                               const std::map<std::string, std::string>& headers = {});

// FormatRows printed on stdout: kExitOk, or the error on stderr and the usage
// exit code (a bad template is a usage error). Returns the exit code.
int PrintRows(std::string_view format, const std::vector<nlohmann::json>& rows,
              const nlohmann::json& sample, const std::map<std::string, std::string>& headers);

// Aligns tab-separated cells into columns (docker's tabwriter settings).
std::string AlignColumns(std::string_view text);

// "2026-12-01 15:59:06 +0000 UTC" (how docker prints CreatedAt) from an
// RFC 3339 timestamp; "" if it does not parse.
std::string DockerTime(const std::string& rfc3339);

// Go's default formatting of a value ("[a b]", "map[k:v]", "<nil>").
std::string GoString(const nlohmann::json& v);

// Replaces the two-character sequences \t, \n and \\ by tab, newline and
// backslash.
std::string UnescapeFormat(std::string_view text);

}  // namespace strata::cli
