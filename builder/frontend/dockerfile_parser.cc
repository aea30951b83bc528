#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/lint.h"
#include "oci/util/strings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace strata::builder {
namespace {

bool IsComment(std::string_view line) {
  line = TrimLeft(line);
  return !line.empty() && line.front() == '#';
}

// Removes a trailing escape character (optionally followed by blanks).
// Returns true when the line continues on the next one. As BuildKit's
// continuation rule: the escape must stand alone or follow a character that
// is not itself the escape, so `ENV A=x\\` ends its instruction.
bool TrimContinuation(std::string& line, char escape) {
  size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  if (end > 0 && line[end - 1] == escape && (end == 1 || line[end - 2] != escape)) {
    line.resize(end - 1);
    return true;
  }
  return false;
}

// Parser directives: "# key=value" lines before anything else.
class DirectiveParser {
 public:
  // Returns an error message for a bad or repeated directive.
  std::optional<std::string> ParseLine(std::string_view line, ParserDirectives& d) {
    if (done_) return std::nullopt;
    std::string_view s = TrimLeft(line);
    if (s.empty() || s.front() != '#') {
      done_ = true;
      return std::nullopt;
    }
    s.remove_prefix(1);
    s = TrimLeft(s);
    size_t k = 0;
    while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])))) ++k;
    if (k == 0 || !std::isalpha(static_cast<unsigned char>(s[0]))) {
      done_ = true;
      return std::nullopt;
    }
    std::string key = Lower(s.substr(0, k));
    std::string_view rest = TrimLeft(s.substr(k));
    if (rest.empty() || rest.front() != '=') {
      done_ = true;
      return std::nullopt;
    }
    std::string_view value = Trim(rest.substr(1));
    if (value.empty() || (key != "syntax" && key != "escape" && key != "check")) {
      // Not a directive we know: from here on it is all comments.
      done_ = true;
      return std::nullopt;
    }
    if (std::find(seen_.begin(), seen_.end(), key) != seen_.end()) {
      return fmt::format("only one {} parser directive can be used", key);
    }
    seen_.push_back(key);
    if (key == "escape") {
      if (value != "\\" && value != "`") {
        return fmt::format("invalid escape token '{}' does not match ` or \\", value);
      }
      d.escape = value[0];
    } else if (key == "syntax") {
      // strata is the Dockerfile frontend itself: docker/dockerfile (1.x and
      // its -upstream/labs tags) builds as written; another frontend image
      // cannot be honoured, so it is refused rather than ignored.
      std::string_view image = value.substr(0, value.find_first_of(":@"));
      if (image.starts_with("docker.io/")) image.remove_prefix(10);
      if (image != "docker/dockerfile" && image != "docker/dockerfile-upstream") {
        return fmt::format(
            "syntax={}: custom Dockerfile frontends are not supported (strata "
            "implements docker/dockerfile:1)",
            value);
      }
      d.syntax = std::string(value);
    } else {
      // check=skip=...;error=...;experimental=...: build checks (lint.h).
      if (auto o = ParseCheckOptions(value); !o) return o.error().message();
      d.check = std::string(value);
    }
    return std::nullopt;
  }
  void Stop() { done_ = true; }

 private:
  bool done_ = false;
  std::vector<std::string> seen_;
};

// Extracts leading `--flag` words from `args` (BuildKit extractBuilderFlags):
// quotes inside a flag word group characters and are removed.
std::vector<std::string> ExtractFlags(std::string_view& args) {
  std::vector<std::string> flags;
  for (;;) {
    std::string_view s = TrimLeft(args);
    if (s.size() < 2 || s[0] != '-' || s[1] != '-') {
      args = s;
      return flags;
    }
    std::string word;
    char quote = 0;
    size_t i = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (quote) {
        if (c == quote) {
          quote = 0;
        } else {
          word.push_back(c);
        }
        continue;
      }
      if (IsAsciiSpace(c)) break;
      if (c == '"' || c == '\'') {
        quote = c;
        continue;
      }
      word.push_back(c);
    }
    if (word == "--") {
      args = TrimLeft(s.substr(i));
      return flags;
    }
    flags.push_back(std::move(word));
    args = s.substr(i);
  }
}

// Finds heredoc openers among the words of `line`.
// `<< EOF` and `<<- EOF` (a blank after the operator) are written back into
// `line` as `<<EOF` / `<<-EOF`, so every later stage sees one heredoc word.
std::optional<std::string> HeredocsFromLine(std::string& line, std::vector<Heredoc>& out) {
  std::vector<std::string> words = SplitWordsRaw(line, '\\');
  for (size_t w = 0; w < words.size(); ++w) {
    std::string word = words[w];
    size_t i = 0;
    while (i < word.size() && std::isdigit(static_cast<unsigned char>(word[i]))) ++i;
    if (word.compare(i, 2, "<<") != 0) continue;
    Heredoc h;
    if (i > 0) {
      int fd = -1;
      auto [p, ec] = std::from_chars(word.data(), word.data() + i, fd);
      if (ec != std::errc() || p != word.data() + i) {
        return "invalid heredoc file descriptor in \"" + word + "\"";
      }
      h.fd = fd;
    }
    std::string_view rest = std::string_view(word).substr(i + 2);
    if (!rest.empty() && rest.front() == '-') {
      h.chomp = true;
      rest.remove_prefix(1);
    }
    // `<< EOF`, `<<- EOF`: the delimiter may follow as the next word.
    if (rest.empty() && w + 1 < words.size() && words[w + 1].find('<') == std::string::npos) {
      size_t at = line.find(word);
      size_t next = at == std::string::npos ? at : line.find(words[w + 1], at + word.size());
      if (next != std::string::npos) line.erase(at + word.size(), next - at - word.size());
      word += words[++w];
      rest = std::string_view(word).substr(i + 2 + (h.chomp ? 1 : 0));
    }
    if (rest.find('<') != std::string_view::npos) continue;  // "<<<" is not a heredoc
    if (rest.empty()) continue;
    std::string name;
    char quote = 0;
    int quotes = 0;
    for (size_t k = 0; k < rest.size(); ++k) {
      char c = rest[k];
      if (!quote && c == '\\' && k + 1 < rest.size()) {
        // An escaped character is literal (`<<eo\'f` is the delimiter eo'f)
        // and, as any quoting, disables expansion of the body.
        name.push_back(rest[++k]);
        ++quotes;
        continue;
      }
      if (quote) {
        if (c == quote) {
          quote = 0;
        } else {
          name.push_back(c);
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
        ++quotes;
      } else if (c == '\\') {
        ++quotes;  // an escaped delimiter also disables expansion
      } else {
        name.push_back(c);
      }
    }
    if (quote) return fmt::format("unterminated quote in heredoc delimiter {}", rest);
    if (name.empty()) continue;
    h.name = std::move(name);
    h.expand = quotes == 0;
    out.push_back(std::move(h));
  }
  return std::nullopt;
}

}  // namespace

std::string Where(std::string_view file_name, int line) {
  return fmt::format("{}:{}", file_name, line);
}

bool KeywordAllowsHeredoc(std::string_view keyword) {
  return keyword == "run" || keyword == "copy" || keyword == "add";
}

std::vector<std::string> SplitWordsRaw(std::string_view s, char escape) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!in_word && IsAsciiSpace(c)) continue;
    in_word = true;
    if (c == escape && i + 1 < s.size()) {
      word.push_back(c);
      word.push_back(s[++i]);
      continue;
    }
    if (quote) {
      if (c == quote) quote = 0;
      word.push_back(c);
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
      word.push_back(c);
      continue;
    }
    if (IsAsciiSpace(c)) {
      words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    word.push_back(c);
  }
  if (in_word && !word.empty()) words.push_back(std::move(word));
  return words;
}

Result<AstFile> ParseAst(std::string_view text, std::string_view file_name) {
  AstFile file;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (text.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: the Dockerfile cannot be empty",
                     Where(file_name, 1));
  }

  // Physical lines without their terminators ("\n" or "\r\n").
  // `crlf[i]`: line i ended in "\r\n" (heredoc bodies keep it, as BuildKit).
  std::vector<std::string_view> lines;
  std::vector<bool> crlf;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    bool cr = !l.empty() && l.back() == '\r';
    if (cr) l.remove_suffix(1);
    lines.push_back(l);
    crlf.push_back(cr && nl != std::string_view::npos);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }

  DirectiveParser directives;
  auto error = [&](int line, std::string_view msg) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: {}", Where(file_name, line), msg);
  };

  size_t i = 0;
  while (i < lines.size()) {
    int start_line = static_cast<int>(i) + 1;
    std::string_view raw = lines[i++];
    if (auto e = directives.ParseLine(raw, file.directives)) return error(start_line, *e);
    if (IsComment(raw)) continue;
    const char escape = file.directives.escape;
    std::string line(TrimLeft(raw));
    bool continues = TrimContinuation(line, escape);
    if (!continues && Trim(line).empty()) continue;
    bool empty_continuation = false;
    while (continues && i < lines.size()) {
      std::string_view next = lines[i++];
      if (IsComment(next)) continue;
      if (Trim(next).empty()) {
        empty_continuation = true;
        continue;
      }
      std::string part(next);
      continues = TrimContinuation(part, escape);
      line += part;
    }
    directives.Stop();
    int end_line = static_cast<int>(i);
    std::string_view logical = Trim(line);
    if (logical.empty()) continue;  // only continuation characters
    if (empty_continuation) {
      file.warnings.push_back(
          {start_line, fmt::format("Empty continuation line found in: {}", logical)});
    }

    Node node;
    size_t kw_end = 0;
    while (kw_end < logical.size() && !IsAsciiSpace(logical[kw_end])) ++kw_end;
    node.keyword_original = std::string(logical.substr(0, kw_end));
    node.keyword = Lower(node.keyword_original);
    std::string_view args = logical.substr(kw_end);
    node.flags = ExtractFlags(args);
    node.args = std::string(TrimRight(args));
    node.original = std::string(logical);
    node.start_line = start_line;

    if (KeywordAllowsHeredoc(node.keyword) && logical.find("<<") != std::string_view::npos) {
      std::vector<Heredoc> heredocs;
      std::string args_before = node.args;
      if (auto e = HeredocsFromLine(node.args, heredocs)) return error(start_line, *e);
      if (node.args != args_before) {
        // Keep `original` (history, messages) consistent with the args.
        size_t at = node.original.rfind(args_before);
        if (at != std::string::npos) node.original.replace(at, args_before.size(), node.args);
      }
      for (Heredoc& h : heredocs) {
        bool terminated = false;
        while (i < lines.size()) {
          const bool body_crlf = crlf[i];
          std::string_view body = lines[i++];
          std::string_view candidate = body;
          if (h.chomp) {
            while (!candidate.empty() && candidate.front() == '\t') candidate.remove_prefix(1);
          }
          if (candidate == h.name) {
            terminated = true;
            break;
          }
          h.content.append(h.chomp ? candidate : body);
          if (body_crlf) h.content.push_back('\r');
          h.content.push_back('\n');
        }
        if (!terminated) {
          return error(start_line, fmt::format("unterminated heredoc {}", h.name));
        }
        node.heredocs.push_back(std::move(h));
      }
      end_line = static_cast<int>(i);
    }
    node.end_line = end_line;
    file.nodes.push_back(std::move(node));
  }
  if (file.nodes.empty()) {
    return error(std::max<int>(1, static_cast<int>(lines.size())), "file with no instructions");
  }
  return file;
}

}  // namespace strata::builder
