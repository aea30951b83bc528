#include "builder/frontend/shell_lexer.h"

#include <cctype>
#include <utility>

namespace strata::builder {
namespace {

constexpr int kEof = -1;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool IsSpecialParam(char c) {
  switch (c) {
    case '@':
    case '*':
    case '#':
    case '?':
    case '-':
    case '$':
    case '!':
    case '0':
      return true;
    default:
      return false;
  }
}

// Accumulates the expansion split into words. Characters that come from a
// variable's value split on whitespace; quoted text and escaped characters
// never split (as in BuildKit).
class WordsBuilder {
 public:
  void AddChar(char c) {
    if (IsSpace(c)) {
      if (in_word_ && !word_.empty()) {
        words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
      }
      return;
    }
    AddRawChar(c);
  }
  void AddRawChar(char c) {
    word_.push_back(c);
    in_word_ = true;
  }
  void AddString(std::string_view s) {
    for (char c : s) AddChar(c);
  }
  void AddRawString(std::string_view s) {
    word_.append(s);
    in_word_ = true;
  }
  std::vector<std::string> Take() {
    if (!word_.empty()) words_.push_back(std::move(word_));
    word_.clear();
    in_word_ = false;
    return std::move(words_);
  }

 private:
  std::string word_;
  std::vector<std::string> words_;
  bool in_word_ = false;
};

// A glob as used by ${X#p}, ${X%p}, ${X/p/r}: '*' any string, '?' one char,
// '\' quotes '*', '?' or '\'; "\}" and "\/" stand for the literal char.
struct GlobToken {
  enum Kind { kLiteral, kAny, kStar } kind;
  char c = 0;
};

Result<std::vector<GlobToken>> CompileGlob(std::string_view pattern) {
  std::vector<GlobToken> out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      out.push_back({GlobToken::kStar});
    } else if (c == '?') {
      out.push_back({GlobToken::kAny});
    } else if (c == '\\') {
      if (i + 1 < pattern.size() && (pattern[i + 1] == '}' || pattern[i + 1] == '/')) continue;
      if (i + 1 >= pattern.size()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "invalid pattern ({}) in substitution: trailing backslash", pattern);
      }
      char n = pattern[++i];
      if (n != '*' && n != '?' && n != '\\') {
        return MakeError(ErrorCode::kInvalidArgument,
                         "invalid pattern ({}) in substitution: invalid escape '\\{}'", pattern, n);
      }
      out.push_back({GlobToken::kLiteral, n});
    } else {
      out.push_back({GlobToken::kLiteral, c});
    }
  }
  return out;
}

// True if the whole of `s` matches tokens[ti..].
bool GlobMatch(const std::vector<GlobToken>& tokens, size_t ti, std::string_view s) {
  while (ti < tokens.size()) {
    const GlobToken& t = tokens[ti];
    if (t.kind == GlobToken::kStar) {
      for (size_t k = 0; k <= s.size(); ++k) {
        if (GlobMatch(tokens, ti + 1, s.substr(k))) return true;
      }
      return false;
    }
    if (s.empty()) return false;
    if (t.kind == GlobToken::kLiteral && t.c != s[0]) return false;
    s.remove_prefix(1);
    ++ti;
  }
  return s.empty();
}

Result<std::string> TrimPrefix(std::string_view pattern, std::string_view value, bool longest) {
  STRATA_ASSIGN_OR_RETURN(auto tokens, CompileGlob(pattern));
  if (longest) {
    for (size_t end = value.size() + 1; end-- > 0;) {
      if (GlobMatch(tokens, 0, value.substr(0, end))) return std::string(value.substr(end));
    }
  } else {
    for (size_t end = 0; end <= value.size(); ++end) {
      if (GlobMatch(tokens, 0, value.substr(0, end))) return std::string(value.substr(end));
    }
  }
  return std::string(value);
}

Result<std::string> TrimSuffix(std::string_view pattern, std::string_view value, bool longest) {
  STRATA_ASSIGN_OR_RETURN(auto tokens, CompileGlob(pattern));
  if (longest) {
    for (size_t start = 0; start <= value.size(); ++start) {
      if (GlobMatch(tokens, 0, value.substr(start))) return std::string(value.substr(0, start));
    }
  } else {
    for (size_t start = value.size() + 1; start-- > 0;) {
      if (GlobMatch(tokens, 0, value.substr(start))) return std::string(value.substr(0, start));
    }
  }
  return std::string(value);
}

// Leftmost, then longest match of the pattern in value[from..]; npos if none.
std::pair<size_t, size_t> FindGlob(const std::vector<GlobToken>& tokens, std::string_view value,
                                   size_t from) {
  for (size_t start = from; start <= value.size(); ++start) {
    for (size_t end = value.size() + 1; end-- > start;) {
      if (GlobMatch(tokens, 0, value.substr(start, end - start))) return {start, end};
    }
  }
  return {std::string_view::npos, 0};
}

Result<std::string> Replace(std::string_view pattern, std::string_view repl, std::string_view value,
                            bool all) {
  STRATA_ASSIGN_OR_RETURN(auto tokens, CompileGlob(pattern));
  std::string out;
  size_t pos = 0;
  while (pos <= value.size()) {
    auto [start, end] = FindGlob(tokens, value, pos);
    if (start == std::string_view::npos) break;
    out.append(value.substr(pos, start - pos));
    out.append(repl);
    if (end == start) {
      // An empty match: keep one character and move on so we never loop.
      if (start < value.size()) out.push_back(value[start]);
      pos = start + 1;
    } else {
      pos = end;
    }
    if (!all) break;
  }
  if (pos < value.size()) out.append(value.substr(pos));
  return out;
}

class Worker {
 public:
  Worker(std::string_view input, const EnvGetter& env, const LexOptions& options, Expansion& result)
      : in_(input), env_(env), opt_(options), result_(result), raw_escapes_(options.raw_escapes) {}

  Result<std::pair<std::string, std::vector<std::string>>> ProcessStopOn(int stop,
                                                                         bool raw_escapes) {
    std::string result;
    WordsBuilder words;
    bool saved = raw_escapes_;
    raw_escapes_ = raw_escapes;
    while (Peek() != kEof) {
      int ch = Peek();
      if (stop != kEof && ch == stop) {
        Next();
        raw_escapes_ = saved;
        return std::pair{std::move(result), words.Take()};
      }
      if (ch == '$') {
        STRATA_ASSIGN_OR_RETURN(std::string tmp, ProcessDollar());
        result += tmp;
        words.AddString(tmp);
      } else if (!opt_.skip_process_quotes && ch == '\'') {
        STRATA_ASSIGN_OR_RETURN(std::string tmp, ProcessSingleQuote());
        result += tmp;
        words.AddRawString(tmp);
      } else if (!opt_.skip_process_quotes && ch == '"') {
        STRATA_ASSIGN_OR_RETURN(std::string tmp, ProcessDoubleQuote());
        result += tmp;
        words.AddRawString(tmp);
      } else {
        char c = static_cast<char>(Next());
        if (c == opt_.escape) {
          if (raw_escapes_) {
            words.AddRawChar(c);
            result.push_back(c);
          }
          if (Peek() == kEof) break;  // a trailing escape is dropped
          c = static_cast<char>(Next());
          words.AddRawChar(c);
        } else {
          words.AddChar(c);
        }
        result.push_back(c);
      }
    }
    raw_escapes_ = saved;
    if (stop != kEof) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "unexpected end of statement while looking for matching {}",
                       static_cast<char>(stop));
    }
    return std::pair{std::move(result), words.Take()};
  }

 private:
  int Peek() const { return pos_ < in_.size() ? static_cast<unsigned char>(in_[pos_]) : kEof; }
  int Next() { return pos_ < in_.size() ? static_cast<unsigned char>(in_[pos_++]) : kEof; }

  Result<std::string> ProcessSingleQuote() {
    std::string out;
    char open = static_cast<char>(Next());
    if (opt_.raw_quotes) out.push_back(open);
    for (;;) {
      int ch = Next();
      if (ch == kEof) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "unexpected end of statement while looking for matching single-quote");
      }
      if (ch == '\'') {
        if (opt_.raw_quotes) out.push_back('\'');
        return out;
      }
      out.push_back(static_cast<char>(ch));
    }
  }

  Result<std::string> ProcessDoubleQuote() {
    std::string out;
    char open = static_cast<char>(Next());
    if (opt_.raw_quotes) out.push_back(open);
    for (;;) {
      int ch = Peek();
      if (ch == kEof) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "unexpected end of statement while looking for matching double-quote");
      }
      if (ch == '"') {
        Next();
        if (opt_.raw_quotes) out.push_back('"');
        return out;
      }
      if (ch == '$') {
        STRATA_ASSIGN_OR_RETURN(std::string v, ProcessDollar());
        out += v;
        continue;
      }
      char c = static_cast<char>(Next());
      if (c == opt_.escape) {
        if (raw_escapes_) out.push_back(c);
        int n = Peek();
        if (n == kEof) continue;  // a trailing escape is ignored
        // Inside double quotes the escape only quotes ", $ and itself.
        if (n == '"' || n == '$' || n == opt_.escape) c = static_cast<char>(Next());
      }
      out.push_back(c);
    }
  }

  std::string ProcessName() {
    std::string name;
    while (Peek() != kEof) {
      int ch = Peek();
      if (name.empty() && std::isdigit(ch)) {
        while (Peek() != kEof && std::isdigit(Peek())) name.push_back(static_cast<char>(Next()));
        return name;
      }
      if (name.empty() && IsSpecialParam(static_cast<char>(ch))) {
        name.push_back(static_cast<char>(Next()));
        return name;
      }
      // Non-ASCII bytes count as letters so UTF-8 names pass through whole.
      if (!(std::isalnum(ch) || ch == '_' || ch >= 0x80)) break;
      name.push_back(static_cast<char>(Next()));
    }
    return name;
  }

  std::optional<std::string> GetEnv(const std::string& name) {
    std::optional<std::string> v = env_ ? env_(name) : std::nullopt;
    if (v) {
      result_.matched.insert(name);
    } else {
      result_.unmatched.insert(name);
    }
    return v;
  }

  Result<std::string> ProcessDollar() {
    Next();  // '$'
    if (Peek() != '{') {
      std::string name = ProcessName();
      if (name.empty()) return std::string("$");
      auto v = GetEnv(name);
      if (!v && opt_.skip_unset_env) return "$" + name;
      return v.value_or("");
    }
    Next();  // '{'
    int first = Peek();
    if (first == kEof) return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '}}'");
    if (first == '{' || first == '}' || first == ':') {
      return MakeError(ErrorCode::kInvalidArgument, "syntax error: bad substitution");
    }
    std::string name = ProcessName();
    int ch = Next();
    if (ch == kEof) return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '}}'");
    std::string mod(1, static_cast<char>(ch));
    bool null_is_unset = false;
    switch (ch) {
      case '}': {
        auto v = GetEnv(name);
        if (!v && opt_.skip_unset_env) return "${" + name + "}";
        return v.value_or("");
      }
      case ':':
        null_is_unset = true;
        ch = Next();
        if (ch == kEof) return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '}}'");
        mod.push_back(static_cast<char>(ch));
        if (ch != '+' && ch != '-' && ch != '?' && ch != '#' && ch != '%') {
          return MakeError(ErrorCode::kInvalidArgument, "unsupported modifier ({}) in substitution",
                           mod);
        }
        [[fallthrough]];
      case '+':
      case '-':
      case '?':
      case '#':
      case '%': {
        bool raw = ch == '#' || ch == '%';
        auto r = ProcessStopOn('}', raw);
        if (!r) {
          if (Peek() == kEof) {
            return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '}}'");
          }
          return std::unexpected(r.error());
        }
        std::string word = std::move(r->first);
        auto v = GetEnv(name);
        if (!v && opt_.skip_unset_env) return "${" + name + mod + word + "}";
        std::string value = v.value_or("");
        bool unset = !v || (null_is_unset && value.empty());
        switch (ch) {
          case '-':
            return unset ? word : value;
          case '+':
            return unset ? std::string() : word;
          case '?':
            if (!v) {
              return MakeError(ErrorCode::kInvalidArgument, "{}: {}", name,
                               word.empty() ? "is not allowed to be unset" : word);
            }
            if (null_is_unset && value.empty()) {
              return MakeError(ErrorCode::kInvalidArgument, "{}: {}", name,
                               word.empty() ? "is not allowed to be empty" : word);
            }
            return value;
          default: {  // '#' or '%': doubled means longest match
            bool longest = !word.empty() && word[0] == static_cast<char>(ch);
            if (longest) word.erase(0, 1);
            return ch == '%' ? TrimSuffix(word, value, longest) : TrimPrefix(word, value, longest);
          }
        }
      }
      case '/': {
        bool all = Peek() == '/';
        if (all) Next();
        auto pat = ProcessStopOn('/', true);
        if (!pat) {
          if (Peek() == kEof) {
            return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '/' in ${{}}");
          }
          return std::unexpected(pat.error());
        }
        auto repl = ProcessStopOn('}', true);
        if (!repl) {
          if (Peek() == kEof) {
            return MakeError(ErrorCode::kInvalidArgument, "syntax error: missing '}}'");
          }
          return std::unexpected(repl.error());
        }
        auto v = GetEnv(name);
        if (!v && opt_.skip_unset_env) {
          return "${" + name + "/" + pat->first + "/" + repl->first + "}";
        }
        return Replace(pat->first, repl->first, v.value_or(""), all);
      }
      default:
        return MakeError(ErrorCode::kInvalidArgument, "unsupported modifier ({}) in substitution",
                         mod);
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  const EnvGetter& env_;
  const LexOptions& opt_;
  Expansion& result_;
  bool raw_escapes_;
};

}  // namespace

EnvGetter EmptyEnv() {
  return [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

Result<Expansion> ShellLexer::Process(std::string_view word, const EnvGetter& env) const {
  Expansion result;
  Worker w(word, env, options_, result);
  auto r = w.ProcessStopOn(kEof, options_.raw_escapes);
  if (!r) {
    return MakeError(r.error().code(), "failed to process \"{}\": {}", word, r.error().message());
  }
  result.word = std::move(r->first);
  result.words = std::move(r->second);
  return result;
}

Result<std::string> ShellLexer::ProcessWord(std::string_view word, const EnvGetter& env) const {
  STRATA_ASSIGN_OR_RETURN(Expansion e, Process(word, env));
  return std::move(e.word);
}

Result<std::vector<std::string>> ShellLexer::ProcessWords(std::string_view word,
                                                          const EnvGetter& env) const {
  STRATA_ASSIGN_OR_RETURN(Expansion e, Process(word, env));
  return std::move(e.words);
}

}  // namespace strata::builder
