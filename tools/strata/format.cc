#include "tools/strata/format.h"

#include "tools/strata/cli.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

namespace strata::cli {
namespace {

using nlohmann::json;

std::unexpected<Error> Invalid(std::string message) {
  return std::unexpected(Error(ErrorCode::kInvalidArgument, "template: " + message));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string PathName(const std::vector<std::string>& path) {
  if (path.empty()) return ".";
  std::string out;
  for (const auto& p : path) out += "." + p;
  return out;
}

// Splits an action's text into words: bare words and "quoted" strings (with
// Go's escapes \" \\ \n \t).
Result<std::vector<Template::Arg>> ParseArgs(std::string_view s, std::string_view action) {
  std::vector<Template::Arg> args;
  size_t i = 0;
  while (i < s.size()) {
    if (IsSpace(s[i])) {
      ++i;
      continue;
    }
    Template::Arg a;
    if (s[i] == '"' || s[i] == '`') {
      const char quote = s[i++];
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == quote) {
          closed = true;
          break;
        }
        if (c == '\\' && quote == '"' && i < s.size()) {
          char e = s[i++];
          a.text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
          continue;
        }
        a.text += c;
      }
      if (!closed) return Invalid(fmt::format("unterminated string in {{{{{}}}}}", action));
      a.kind = Template::Arg::kString;
      args.push_back(std::move(a));
      continue;
    }
    size_t j = i;
    while (j < s.size() && !IsSpace(s[j])) ++j;
    std::string_view word = s.substr(i, j - i);
    i = j;
    if (word == "|") {
      return Invalid(fmt::format("pipelines are not supported: {{{{{}}}}}", action));
    }
    if (word.front() == '.') {
      a.kind = Template::Arg::kPath;
      if (word != ".") {
        std::string_view rest = word.substr(1);
        while (true) {
          size_t dot = rest.find('.');
          std::string_view seg = rest.substr(0, dot);
          if (seg.empty()) return Invalid(fmt::format("bad field name \"{}\"", word));
          a.path.emplace_back(seg);
          if (dot == std::string_view::npos) break;
          rest = rest.substr(dot + 1);
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(word.front())) || word.front() == '-') {
      a.kind = Template::Arg::kNumber;
      try {
        size_t used = 0;
        a.number = std::stoll(std::string(word), &used);
        if (used != word.size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        return Invalid(fmt::format("bad number \"{}\" in {{{{{}}}}}", word, action));
      }
    } else if (word.front() == '$') {
      return Invalid(fmt::format("variables are not supported: \"{}\"", word));
    } else {
      // A bare identifier: a function name (checked by the caller).
      a.kind = Template::Arg::kString;
      a.text = std::string(word);
      a.path = {"\x01"};  // marks an identifier, not a quoted string
    }
    args.push_back(std::move(a));
  }
  return args;
}

bool IsIdentifier(const Template::Arg& a) {
  return a.kind == Template::Arg::kString && a.path.size() == 1 && a.path[0] == "\x01";
}

std::string FieldList(const json& v) {
  std::string out;
  for (auto it = v.begin(); it != v.end(); ++it) out += (out.empty() ? "" : ", ") + it.key();
  return out;
}

Result<json> Lookup(const json& data, const std::vector<std::string>& path) {
  const json* cur = &data;
  for (size_t i = 0; i < path.size(); ++i) {
    std::vector<std::string> prefix(path.begin(), path.begin() + static_cast<long>(i) + 1);
    if (!cur->is_object()) {
      return Invalid(
          fmt::format("can't evaluate field \"{}\": {} is not an object", PathName(prefix),
                      i == 0 ? std::string(".")
                             : PathName({path.begin(), path.begin() + static_cast<long>(i)})));
    }
    auto it = cur->find(path[i]);
    if (it == cur->end()) {
      return Invalid(
          fmt::format("unknown field \"{}\" (known here: {})", PathName(prefix), FieldList(*cur)));
    }
    cur = &*it;
  }
  return *cur;
}

Result<json> Evaluate(const json& data, const Template::Arg& a) {
  switch (a.kind) {
    case Template::Arg::kPath:
      return Lookup(data, a.path);
    case Template::Arg::kNumber:
      return json(a.number);
    case Template::Arg::kString:
      return json(a.text);
  }
  return json();
}

constexpr std::string_view kFunctions[] = {"json",  "index", "join",  "upper",
                                           "lower", "len",   "print", "println"};
constexpr std::string_view kUnsupported[] = {
    "with", "define", "block", "template", "printf",   "and",   "or",
    "not",  "eq",     "ne",    "lt",       "le",       "gt",    "ge",
    "call", "html",   "js",    "slice",    "urlquery", "break", "continue"};
constexpr std::string_view kKnown =
    "fields, range, if, else, end and the functions json, index, join, upper, lower, len, "
    "print, println";

// Go's truth of a value.
bool Truth(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return false;
    case json::value_t::boolean:
      return v.get<bool>();
    case json::value_t::string:
    case json::value_t::array:
    case json::value_t::object:
      return !v.empty();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return v.get<long long>() != 0;
    case json::value_t::number_float:
      return v.get<double>() != 0;
    default:
      return true;
  }
}

Result<std::string> Call(const Template::Node& n, const json& data) {
  std::vector<json> v;
  for (const auto& a : n.args) {
    STRATA_ASSIGN_OR_RETURN(json x, Evaluate(data, a));
    v.push_back(std::move(x));
  }
  auto want = [&](size_t count) -> Status {
    if (v.size() != count) {
      return Invalid(fmt::format("{} takes {} argument{}, got {}", n.function, count,
                                 count == 1 ? "" : "s", v.size()));
    }
    return OkStatus();
  };
  if (n.function == "json") {
    STRATA_RETURN_IF_ERROR(want(1));
    return v[0].dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (n.function == "upper" || n.function == "lower") {
    STRATA_RETURN_IF_ERROR(want(1));
    std::string s = GoString(v[0]);
    for (char& c : s) {
      c = static_cast<char>(n.function == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                                  : std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
  }
  if (n.function == "len") {
    STRATA_RETURN_IF_ERROR(want(1));
    if (v[0].is_string()) return std::to_string(v[0].get_ref<const std::string&>().size());
    if (v[0].is_array() || v[0].is_object()) return std::to_string(v[0].size());
    if (v[0].is_null()) return std::string("0");
    return Invalid(fmt::format("len of {} ({})", PathName(n.args[0].path), v[0].type_name()));
  }
  if (n.function == "join") {
    STRATA_RETURN_IF_ERROR(want(2));
    if (!v[1].is_string()) return Invalid("join: the separator must be a string");
    if (v[0].is_null()) return std::string();
    if (!v[0].is_array()) {
      return Invalid(fmt::format("join: {} is not a list", PathName(n.args[0].path)));
    }
    std::string out;
    for (size_t i = 0; i < v[0].size(); ++i) {
      if (i) out += v[1].get<std::string>();
      out += GoString(v[0][i]);
    }
    return out;
  }
  if (n.function == "print" || n.function == "println") {
    // Go: operands separated by a space when neither is a string (print),
    // always (println).
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0 && (n.function == "println" || (!v[i - 1].is_string() && !v[i].is_string()))) {
        out += ' ';
      }
      out += GoString(v[i]);
    }
    if (n.function == "println") out += '\n';
    return out;
  }
  if (n.function == "index") {
    if (v.size() < 2) return Invalid("index takes a value and at least one key");
    json cur = v[0];
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i].is_number_integer()) {
        if (!cur.is_array()) return Invalid("index: a number indexes a list only");
        long long k = v[i].get<long long>();
        if (k < 0 || static_cast<size_t>(k) >= cur.size()) {
          return Invalid(fmt::format("index out of range: {} (the list has {})", k, cur.size()));
        }
        json next = cur[static_cast<size_t>(k)];
        cur = std::move(next);
      } else if (v[i].is_string()) {
        if (cur.is_null()) return std::string();
        if (!cur.is_object()) return Invalid("index: a string indexes a map only");
        auto it = cur.find(v[i].get<std::string>());
        if (it == cur.end()) return std::string();  // Go: the zero value
        json next = *it;
        cur = std::move(next);
      } else {
        return Invalid("index: keys are numbers or strings");
      }
    }
    return GoString(cur);
  }
  return Invalid(fmt::format("unknown function \"{}\"", n.function));
}

}  // namespace

std::string UnescapeFormat(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      char e = text[i + 1];
      if (e == 't' || e == 'n' || e == '\\') {
        out += e == 't' ? '\t' : e == 'n' ? '\n' : '\\';
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::string GoString(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "<nil>";
    case json::value_t::string:
      return v.get<std::string>();
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ' ';
        out += GoString(v[i]);
      }
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out += (first ? "" : " ") + it.key() + ":" + GoString(it.value());
        first = false;
      }
      return out + "]";
    }
    default:
      return v.dump();
  }
}

namespace {
Template::Node TextNode(std::string text) {
  Template::Node n;
  n.text = std::move(text);
  return n;
}
}  // namespace

Result<Template> Template::Parse(std::string_view text) {
  Template t;
  std::string_view rest = text;
  {
    std::string_view lead = rest;
    while (!lead.empty() && IsSpace(lead.front())) lead.remove_prefix(1);
    if (lead.starts_with("table") &&
        (lead.size() == 5 || IsSpace(lead[5]) || lead.substr(5).starts_with("{{"))) {
      t.table_ = true;
      rest = lead.substr(5);
      while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
    }
  }
  bool trim_next = false;
  // Where nodes go: the top level, or the body / else branch of the
  // innermost open range or if.
  std::vector<std::vector<Node>*> target = {&t.nodes_};
  std::vector<Node*> open_blocks;
  while (!rest.empty()) {
    size_t open = rest.find("{{");
    std::string literal(rest.substr(0, open));
    if (trim_next) {
      size_t k = 0;
      while (k < literal.size() && IsSpace(literal[k])) ++k;
      literal.erase(0, k);
      trim_next = false;
    }
    if (open == std::string_view::npos) {
      if (!literal.empty()) target.back()->push_back(TextNode(UnescapeFormat(literal)));
      break;
    }
    size_t close = rest.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Invalid(fmt::format("unclosed action \"{}\"", rest.substr(open)));
    }
    std::string_view body = rest.substr(open + 2, close - open - 2);
    rest = rest.substr(close + 2);
    if (body.size() >= 2 && body[0] == '-' && IsSpace(body[1])) {
      while (!literal.empty() && IsSpace(literal.back())) literal.pop_back();
      body.remove_prefix(1);
    }
    if (body.size() >= 2 && body.back() == '-' && IsSpace(body[body.size() - 2])) {
      trim_next = true;
      body.remove_suffix(1);
    }
    if (!literal.empty()) target.back()->push_back(TextNode(UnescapeFormat(literal)));
    body = Trim(body);
    if (body.empty()) return Invalid("empty action {{}}");
    if (body.starts_with("/*")) continue;  // a comment
    STRATA_ASSIGN_OR_RETURN(auto args, ParseArgs(body, body));
    Node n;
    n.is_text = false;
    if (IsIdentifier(args[0]) && (args[0].text == "end" || args[0].text == "else")) {
      const std::string word = args[0].text;
      if (open_blocks.empty()) return Invalid(fmt::format("unexpected {{{{{}}}}}", word));
      if (args.size() != 1) {
        return Invalid(
            fmt::format("unexpected words in {{{{{}}}}}: else-if chains are not "
                        "supported",
                        body));
      }
      target.pop_back();
      if (word == "else") {
        target.push_back(&open_blocks.back()->else_body);
        continue;
      }
      open_blocks.pop_back();
      continue;
    }
    if (IsIdentifier(args[0]) && (args[0].text == "range" || args[0].text == "if")) {
      if (args.size() != 2 || args[1].kind != Arg::kPath) {
        return Invalid(fmt::format("{{{{{}}}}}: {} takes one field (.Name)", body, args[0].text));
      }
      n.block = args[0].text;
      n.args = {args[1]};
      target.back()->push_back(std::move(n));
      open_blocks.push_back(&target.back()->back());
      target.push_back(&open_blocks.back()->body);
      continue;
    }
    if (IsIdentifier(args[0])) {
      const std::string& name = args[0].text;
      if (std::find(std::begin(kUnsupported), std::end(kUnsupported), name) !=
          std::end(kUnsupported)) {
        return Invalid(fmt::format("\"{}\" is not supported (only {})", name, kKnown));
      }
      if (std::find(std::begin(kFunctions), std::end(kFunctions), name) == std::end(kFunctions)) {
        return Invalid(fmt::format("unknown function \"{}\" (known: {})", name, kKnown));
      }
      n.function = name;
      args.erase(args.begin());
      for (const auto& a : args) {
        if (IsIdentifier(a)) {
          return Invalid(
              fmt::format("unexpected \"{}\" in {{{{{}}}}}: arguments are fields "
                          "(.Name), strings or numbers",
                          a.text, body));
        }
      }
      if (args.empty()) return Invalid(fmt::format("{} needs an argument", name));
    } else if (args.size() != 1) {
      return Invalid(
          fmt::format("unexpected words after {} in {{{{{}}}}}", PathName(args[0].path), body));
    }
    n.args = std::move(args);
    target.back()->push_back(std::move(n));
  }
  if (!open_blocks.empty()) {
    return Invalid(fmt::format("{{{{{}}}}} without {{{{end}}}}", open_blocks.back()->block));
  }
  return t;
}

namespace {

Status RenderNodes(const std::vector<Template::Node>& nodes, const json& dot, std::string& out) {
  for (const auto& n : nodes) {
    if (n.is_text) {
      out += n.text;
      continue;
    }
    if (!n.block.empty()) {
      STRATA_ASSIGN_OR_RETURN(json v, Evaluate(dot, n.args[0]));
      if (n.block == "if") {
        STRATA_RETURN_IF_ERROR(RenderNodes(Truth(v) ? n.body : n.else_body, dot, out));
        continue;
      }
      if (!v.is_null() && !v.is_array() && !v.is_object()) {
        return Invalid(fmt::format("range can't iterate over {} ({})", PathName(n.args[0].path),
                                   v.type_name()));
      }
      if (v.empty()) {
        STRATA_RETURN_IF_ERROR(RenderNodes(n.else_body, dot, out));
        continue;
      }
      for (const auto& el : v) STRATA_RETURN_IF_ERROR(RenderNodes(n.body, el, out));
      continue;
    }
    if (n.function.empty()) {
      STRATA_ASSIGN_OR_RETURN(json v, Evaluate(dot, n.args[0]));
      out += GoString(v);
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(std::string s, Call(n, dot));
    out += s;
  }
  return OkStatus();
}

}  // namespace

Result<std::string> Template::Render(const json& data) const {
  std::string out;
  STRATA_RETURN_IF_ERROR(RenderNodes(nodes_, data, out));
  return out;
}

std::string Template::Header(const std::map<std::string, std::string>& headers) const {
  std::string out;
  for (const auto& n : nodes_) {
    if (n.is_text) {
      out += n.text;
      continue;
    }
    std::string name;
    for (const auto& a : n.args) {
      if (a.kind == Arg::kPath) {
        name = a.path.empty() ? "" : a.path.back();
        break;
      }
    }
    auto it = headers.find(name);
    if (it != headers.end()) {
      out += it->second;
      continue;
    }
    for (char c : name) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string DockerTime(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 || ::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return "";
  }
  // Offsets other than Z are folded into UTC.
  time_t t = ::timegm(&tm);
  std::string_view rest = std::string_view(rfc3339).substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t k = 1;
    while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k]))) ++k;
    rest.remove_prefix(k);
  }
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-')) {
    int off = ((rest[1] - '0') * 10 + (rest[2] - '0')) * 3600 +
              ((rest[4] - '0') * 10 + (rest[5] - '0')) * 60;
    t += rest[0] == '+' ? -off : off;
  }
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S +0000 UTC", &utc);
  return buf;
}

std::string AlignColumns(std::string_view text) {
  std::vector<std::vector<std::string>> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    std::vector<std::string> cells;
    size_t cs = 0;
    while (true) {
      size_t tab = line.find('\t', cs);
      cells.emplace_back(line.substr(cs, tab == std::string_view::npos ? tab : tab - cs));
      if (tab == std::string_view::npos) break;
      cs = tab + 1;
    }
    lines.push_back(std::move(cells));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::vector<size_t> width;
  for (const auto& cells : lines) {
    for (size_t i = 0; i + 1 < cells.size(); ++i) {
      if (width.size() <= i) width.resize(i + 1, 0);
      width[i] = std::max(width[i], cells[i].size());
    }
  }
  std::string out;
  for (size_t l = 0; l < lines.size(); ++l) {
    const auto& cells = lines[l];
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) {
        size_t w = std::max<size_t>(width[i] + 3, 10);
        out.append(w - cells[i].size(), ' ');
      }
    }
    if (l + 1 < lines.size()) out += '\n';
  }
  return out;
}

Result<std::string> FormatRows(std::string_view format, const std::vector<json>& rows,
                               const json& sample,
                               const std::map<std::string, std::string>& headers) {
  std::string out;
  if (Trim(format) == "json") {
    for (const auto& r : rows) out += r.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    return out;
  }
  STRATA_ASSIGN_OR_RETURN(Template t, Template::Parse(format));
  STRATA_RETURN_IF_ERROR(t.Render(sample));
  if (t.table()) out += t.Header(headers) + "\n";
  for (const auto& r : rows) {
    STRATA_ASSIGN_OR_RETURN(std::string line, t.Render(r));
    out += line + "\n";
  }
  if (t.table()) {
    // Align each block of tab-separated lines; keep the final newline.
    std::string body = out.substr(0, out.size() - 1);
    return AlignColumns(body) + "\n";
  }
  return out;
}

int PrintRows(std::string_view format, const std::vector<json>& rows, const json& sample,
              const std::map<std::string, std::string>& headers) {
  auto out = FormatRows(format, rows, sample, headers);
  if (!out) {
    fmt::print(stderr, "strata: --format: {}\n", out.error().message());
    return kExitUsage;
  }
  fmt::print("{}", *out);
  return kExitOk;
}

}  // namespace strata::cli
