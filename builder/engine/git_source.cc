#include "builder/engine/git_source.h"

#include <fmt/format.h>

#include "oci/util/path.h"

namespace strata::builder {

namespace {

bool ScpUserChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}
bool ScpHostChar(char c) { return ScpUserChar(c) || c == '.'; }

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The fragment `REF[:SUBDIR]` into `g`; the subdir must stay in the tree.
Status ParseFragment(std::string_view source, std::string_view frag, GitRef& g) {
  size_t colon = frag.find(':');
  g.ref = std::string(frag.substr(0, colon));
  if (colon == std::string_view::npos) return OkStatus();
  std::string sub = CleanPath(frag.substr(colon + 1));
  while (sub.starts_with("/")) sub.erase(0, 1);
  if (sub == "." || sub.empty()) return OkStatus();
  if (sub == ".." || sub.starts_with("../")) {
    return MakeError(ErrorCode::kInvalidArgument, "git source {}: subdirectory {} leaves the tree",
                     source, frag.substr(colon + 1));
  }
  g.subdir = std::move(sub);
  return OkStatus();
}

}  // namespace

bool IsCommitId(std::string_view s) { return (s.size() == 40 || s.size() == 64) && IsHex(s); }

Result<std::optional<GitRef>> ParseGitRef(std::string_view s) {
  if (s.empty() || s.starts_with("./") || s.starts_with("../") || s.starts_with("/")) {
    return std::nullopt;
  }
  const size_t hash = s.find('#');
  std::string_view base = s.substr(0, hash);
  std::string_view frag = hash == std::string_view::npos ? "" : s.substr(hash + 1);
  GitRef g;
  if (size_t sep = base.find("://"); sep != std::string_view::npos) {
    std::string_view scheme = base.substr(0, sep);
    if (scheme != "http" && scheme != "https" && scheme != "ssh" && scheme != "git") {
      return std::nullopt;
    }
    std::string_view rest = base.substr(sep + 3);
    std::string_view authority = rest.substr(0, rest.find('/'));
    std::string_view path = rest.substr(authority.size());
    std::string_view query;
    if (size_t q = path.find('?'); q != std::string_view::npos) {
      query = path.substr(q);
      path = path.substr(0, q);
    }
    if ((scheme == "http" || scheme == "https") && !path.ends_with(".git")) return std::nullopt;
    if (authority.empty() || path.size() < 2) return std::nullopt;
    if (!query.empty()) {
      return MakeError(ErrorCode::kUnimplemented,
                       "git source {}: the query form (?ref=...&subdir=...) is not supported; "
                       "use #REF:SUBDIR",
                       s);
    }
    size_t at = authority.rfind('@');
    g.host = std::string(at == std::string_view::npos ? authority : authority.substr(at + 1));
    g.ssh = scheme == "ssh";
  } else {
    // scp-like user@host:path (BuildKit's gitSSHRegex).
    size_t at = base.find('@');
    if (at == std::string_view::npos || at == 0) return std::nullopt;
    size_t colon = base.find(':', at);
    if (colon == std::string_view::npos || colon == at + 1 || colon + 1 == base.size()) {
      return std::nullopt;
    }
    std::string_view user = base.substr(0, at);
    std::string_view host = base.substr(at + 1, colon - at - 1);
    for (char c : user) {
      if (!ScpUserChar(c)) return std::nullopt;
    }
    for (char c : host) {
      if (!ScpHostChar(c)) return std::nullopt;
    }
    g.host = std::string(host);
    g.ssh = true;
  }
  g.remote = std::string(base);
  STRATA_RETURN_IF_ERROR(ParseFragment(s, frag, g));
  return std::optional<GitRef>(std::move(g));
}

bool IsGitSource(std::string_view s) {
  auto r = ParseGitRef(s);
  return !r || r->has_value();  // a malformed git source is still git (and an error)
}

std::string RedactUrl(std::string_view text) {
  // Every "scheme://user:password@" in `text` (a URL, or a message quoting
  // URLs) loses its password.
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sep = text.find("://", pos);
    if (sep == std::string_view::npos) break;
    size_t start = sep + 3;
    size_t end = text.find_first_of("/?# \t\n'\"", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view authority = text.substr(start, end - start);
    size_t at = authority.rfind('@');
    size_t colon = at == std::string_view::npos ? std::string_view::npos : authority.find(':');
    if (colon != std::string_view::npos && colon < at) {
      out.append(text.substr(pos, start + colon + 1 - pos));
      out.append("xxxxx");
      pos = start + at;
    } else {
      out.append(text.substr(pos, end - pos));
      pos = end;
    }
  }
  out.append(text.substr(std::min(pos, text.size())));
  return out;
}

}  // namespace strata::builder
