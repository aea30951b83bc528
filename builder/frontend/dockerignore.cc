#include "builder/frontend/dockerignore.h"

#include <fmt/format.h>

#include <system_error>

#include "oci/util/file_util.h"
#include "oci/util/strings.h"

namespace strata::builder {
namespace {

using Token = DockerIgnore::Pattern::Token;

std::vector<std::string> SplitSlash(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find('/', start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

// Compiles a cleaned pattern as patternmatcher's compile() does.
Result<DockerIgnore::Pattern> Compile(std::string text, bool exclusion) {
  DockerIgnore::Pattern p;
  p.exclusion = exclusion;
  using Type = DockerIgnore::Pattern::Type;
  Type type = Type::kExact;
  const std::string& s = text;
  auto bad = [&]() {
    return MakeError(ErrorCode::kInvalidArgument, "syntax error in pattern {}", s);
  };
  for (size_t i = 0; i < s.size();) {
    size_t at = i;
    char ch = s[i++];
    if (ch == '*') {
      if (i < s.size() && s[i] == '*') {
        ++i;
        if (i < s.size() && s[i] == '/') ++i;  // "**/" acts as "**"
        if (i >= s.size()) {
          if (type == Type::kExact) {
            type = Type::kPrefix;
          } else {
            type = Type::kGlob;
          }
          p.tokens.push_back({Token::kDoubleStarAll});
        } else {
          p.tokens.push_back({Token::kDoubleStarDir});
          type = Type::kGlob;
        }
        if (at == 0) type = Type::kSuffix;
      } else {
        p.tokens.push_back({Token::kStar});
        type = Type::kGlob;
      }
    } else if (ch == '?') {
      p.tokens.push_back({Token::kAnyChar});
      type = Type::kGlob;
    } else if (ch == '\\') {
      if (i >= s.size()) return bad();
      p.tokens.push_back({Token::kLiteral, s[i++]});
      type = Type::kGlob;
    } else if (ch == '[') {
      Token t{Token::kClass};
      if (i < s.size() && s[i] == '^') {
        t.negate = true;
        ++i;
      }
      bool closed = false;
      bool first = true;
      while (i < s.size()) {
        char c = s[i++];
        if (c == ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        if (c == '\\') {
          if (i >= s.size()) return bad();
          c = s[i++];
        }
        char hi = c;
        if (i + 1 < s.size() && s[i] == '-' && s[i + 1] != ']') {
          hi = s[i + 1];
          i += 2;
          if (hi == '\\') {
            if (i >= s.size()) return bad();
            hi = s[i++];
          }
          if (hi < c) return bad();
        }
        t.ranges.emplace_back(c, hi);
      }
      if (!closed || t.ranges.empty()) return bad();
      p.tokens.push_back(std::move(t));
      type = Type::kGlob;
    } else if (ch == ']') {
      return bad();  // filepath.Match rejects a stray ']'
    } else {
      p.tokens.push_back({Token::kLiteral, ch});
    }
  }
  p.type = type;
  p.dirs = SplitSlash(text);
  p.text = std::move(text);
  return p;
}

bool ClassMatch(const Token& t, char c) {
  bool in = false;
  for (auto [lo, hi] : t.ranges) in = in || (c >= lo && c <= hi);
  return in != t.negate;
}

// Matches toks[ti..] against path[pos..]. Failed (ti, pos) pairs are
// remembered, so a pattern of many `*` (a hostile .dockerignore) costs at
// most tokens x length^2 steps instead of exponential backtracking.
class TokenMatcher {
 public:
  TokenMatcher(const std::vector<Token>& toks, std::string_view path)
      : toks_(toks), path_(path), failed_((toks.size() + 1) * (path.size() + 1), 0) {}

  bool Match(size_t ti, size_t pos) {
    uint8_t& memo = failed_[ti * (path_.size() + 1) + pos];
    if (memo) return false;
    bool ok = Step(ti, pos);
    if (!ok) memo = 1;
    return ok;
  }

 private:
  bool Step(size_t ti, size_t pos) {
    std::string_view s = path_.substr(pos);
    while (ti < toks_.size()) {
      const Token& t = toks_[ti];
      switch (t.kind) {
        case Token::kLiteral:
          if (s.empty() || s[0] != t.c) return false;
          break;
        case Token::kAnyChar:
          if (s.empty() || s[0] == '/') return false;
          break;
        case Token::kClass:
          if (s.empty() || s[0] == '/' || !ClassMatch(t, s[0])) return false;
          break;
        case Token::kStar:
          for (size_t k = 0;; ++k) {
            if (Match(ti + 1, Pos(s) + k)) return true;
            if (k >= s.size() || s[k] == '/') return false;
          }
        case Token::kDoubleStarAll:
          return true;  // ".*" at the end
        case Token::kDoubleStarDir:
          // "(.*/)?": nothing, or anything ending in '/'.
          if (Match(ti + 1, Pos(s))) return true;
          for (size_t k = 0; k < s.size(); ++k) {
            if (s[k] == '/' && Match(ti + 1, Pos(s) + k + 1)) return true;
          }
          return false;
      }
      // One character consumed by a literal, ? or class.
      s.remove_prefix(1);
      ++ti;
    }
    return s.empty();
  }
  size_t Pos(std::string_view s) const { return path_.size() - s.size(); }

  const std::vector<Token>& toks_;
  std::string_view path_;
  std::vector<uint8_t> failed_;
};

bool MatchTokens(const std::vector<Token>& toks, size_t ti, std::string_view s) {
  return TokenMatcher(toks, s).Match(ti, 0);
}

}  // namespace

bool DockerIgnore::Pattern::Match(std::string_view path) const {
  switch (type) {
    case Type::kExact:
      return path == text;
    case Type::kPrefix:
      return path.starts_with(std::string_view(text).substr(0, text.size() - 2));
    case Type::kSuffix: {
      std::string_view suffix = std::string_view(text).substr(2);
      if (path.ends_with(suffix)) return true;
      return !suffix.empty() && suffix[0] == '/' && path == suffix.substr(1);
    }
    case Type::kGlob:
      return MatchTokens(tokens, 0, path);
  }
  return false;
}

Result<DockerIgnore> DockerIgnore::Parse(std::string_view content, std::string_view file_name) {
  DockerIgnore di;
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  int line_no = 0;
  size_t pos = 0;
  while (pos <= content.size()) {
    size_t nl = content.find('\n', pos);
    std::string_view line =
        content.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? content.size() + 1 : nl + 1;
    ++line_no;
    if (line.starts_with("#")) continue;
    std::string_view pattern = Trim(line);
    if (pattern.empty()) continue;
    bool invert = pattern[0] == '!';
    if (invert) pattern = Trim(pattern.substr(1));
    std::string cleaned;
    if (!pattern.empty()) {
      cleaned = CleanPath(pattern);
      if (cleaned.size() > 1 && cleaned[0] == '/') cleaned.erase(0, 1);
    }
    if (invert && cleaned.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{}:{}: illegal exclusion pattern: \"!\"",
                       file_name, line_no);
    }
    di.lines_.push_back(invert ? "!" + cleaned : cleaned);
    auto p = Compile(cleaned, invert);
    if (!p) {
      return MakeError(ErrorCode::kInvalidArgument, "{}:{}: {}", file_name, line_no,
                       p.error().message());
    }
    di.has_exceptions_ = di.has_exceptions_ || invert;
    di.patterns_.push_back(std::move(*p));
  }
  return di;
}

Result<DockerIgnore> DockerIgnore::Load(const std::filesystem::path& context_dir,
                                        const std::filesystem::path& dockerfile) {
  std::filesystem::path df = dockerfile.is_absolute() ? dockerfile : context_dir / dockerfile;
  std::filesystem::path candidates[] = {
      df.parent_path() / (df.filename().string() + ".dockerignore"), context_dir / ".dockerignore"};
  for (const auto& c : candidates) {
    auto text = ReadFile(c);
    if (!text) {
      if (text.error().code() == ErrorCode::kNotFound) continue;
      return std::unexpected(text.error());
    }
    STRATA_ASSIGN_OR_RETURN(DockerIgnore di, Parse(*text, c.string()));
    di.source_ = c;
    return di;
  }
  return DockerIgnore();
}

bool DockerIgnore::Matches(std::string_view relpath) const {
  std::string file = CleanPath(relpath);
  if (file.size() > 1 && file[0] == '/') file.erase(0, 1);
  if (file == ".") return false;  // never exclude the context itself
  std::vector<std::string> parents;
  if (size_t slash = file.rfind('/'); slash != std::string::npos) {
    parents = SplitSlash(std::string_view(file).substr(0, slash));
  }
  bool matched = false;
  for (const Pattern& p : patterns_) {
    if (p.exclusion != matched) continue;
    bool m = p.Match(file);
    std::string prefix;
    for (size_t i = 0; !m && i < parents.size(); ++i) {
      if (i) prefix += "/";
      prefix += parents[i];
      m = p.Match(prefix);
    }
    if (m) matched = !p.exclusion;
  }
  return matched;
}

bool DockerIgnore::MayReincludeUnder(std::string_view dir) const {
  std::string d = CleanPath(dir);
  if (d.size() > 1 && d[0] == '/') d.erase(0, 1);  // as Matches: relative to the context
  std::vector<std::string> comps = d == "." ? std::vector<std::string>{} : SplitSlash(d);
  for (const Pattern& p : patterns_) {
    if (!p.exclusion) continue;
    bool possible = true;
    for (size_t i = 0; i < comps.size() && i < p.dirs.size() && possible; ++i) {
      const std::string& pc = p.dirs[i];
      if (pc.find("**") != std::string::npos) break;  // crosses dirs: assume yes
      auto seg = Compile(pc, false);
      possible = seg && seg->Match(comps[i]);
    }
    if (possible) return true;
  }
  return false;
}

}  // namespace strata::builder
