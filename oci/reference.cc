#include "oci/reference.h"

#include <cctype>

namespace strata::oci {

namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsAlnumLower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*
// separator := [_.] | __ | [-]+
bool ValidPathComponent(std::string_view c) {
  if (c.empty() || !IsAlnumLower(c.front()) || !IsAlnumLower(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsAlnumLower(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsAlnumLower(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

// domain-component := [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool ValidDomainComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (char ch : c) {
    if (!IsAlnum(ch) && ch != '-') return false;
  }
  return true;
}

bool ValidIpv6(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  }
  return s.find(':') != std::string_view::npos;
}

bool ValidDomain(std::string_view d) {
  std::string_view host = d;
  if (!d.empty() && d.front() == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos || !ValidIpv6(d.substr(1, close - 1))) return false;
    std::string_view rest = d.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':' || rest.size() == 1) return false;
    for (char c : rest.substr(1)) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
  }
  auto colon = d.rfind(':');
  if (colon != std::string_view::npos) {
    host = d.substr(0, colon);
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view comp = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!ValidDomainComponent(comp)) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength) return false;
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  if (!word(t.front())) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

}  // namespace

Result<Reference> Reference::Parse(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid reference \"{}\": {}", s, why);
  };
  if (s.empty()) return bad("empty reference");
  Reference r;
  std::string_view rest = s;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto d = Digest::Parse(rest.substr(at + 1));
    if (!d) return bad(d.error().message());
    r.digest_ = *d;
    rest = rest.substr(0, at);
  }
  // The tag is after the last ':' that follows the last '/'.
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (tag.size() > kMaxTagLength) return bad("tag longer than 128 characters");
    if (!ValidTag(tag)) return bad(fmt::format("invalid tag \"{}\"", tag));
    r.tag_ = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("missing repository name");
  // Split the domain as docker does: the first component is a domain if it
  // contains '.' or ':', is "localhost", or has uppercase letters.
  std::string_view domain;
  std::string_view remainder;
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    remainder = rest;
  } else {
    std::string_view first = rest.substr(0, slash);
    bool has_upper = false;
    for (char c : first) has_upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
        first.front() == '[' || has_upper) {
      domain = first;
      remainder = rest.substr(slash + 1);
    } else {
      remainder = rest;
    }
  }
  if (!domain.empty() && !ValidDomain(domain))
    return bad(fmt::format("invalid domain \"{}\"", domain));
  if (domain.empty() && slash == 0) return bad("empty path component");
  if (remainder.empty()) return bad("missing repository name");
  if (domain.empty() && IsHex64(remainder)) {
    return bad("cannot specify 64-byte hexadecimal strings as a repository name");
  }
  size_t start = 0;
  while (true) {
    size_t next = remainder.find('/', start);
    std::string_view comp =
        remainder.substr(start, next == std::string_view::npos ? next : next - start);
    if (comp.empty()) return bad("empty path component");
    for (char c : comp) {
      if (std::isupper(static_cast<unsigned char>(c))) {
        return bad("repository name must be lowercase");
      }
    }
    if (!ValidPathComponent(comp)) return bad(fmt::format("invalid path component \"{}\"", comp));
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
  r.domain_ = domain.empty() || domain == "index.docker.io" ? std::string(kDefaultDomain)
                                                            : std::string(domain);
  r.path_ = std::string(remainder);
  if (r.domain_ == kDefaultDomain && r.path_.find('/') == std::string::npos) {
    r.path_ = "library/" + r.path_;
  }
  if (r.name().size() > kMaxNameLength) return bad("repository name longer than 255 characters");
  if (r.tag_.empty() && !r.digest_) r.tag_ = "latest";
  return r;
}

std::string Reference::ToString() const {
  std::string s = name();
  if (!tag_.empty()) s.append(":").append(tag_);
  if (digest_) s.append("@").append(digest_->ToString());
  return s;
}

std::string Reference::Familiar() const {
  std::string s;
  if (domain_ == kDefaultDomain) {
    std::string_view p = path_;
    if (p.starts_with("library/") && p.find('/', 8) == std::string_view::npos) p.remove_prefix(8);
    s = std::string(p);
    // The short form only where it reads back as this name: "docker.io/foo.io/x"
    // would read as registry foo.io, "docker.io/<64 hex>" as an image ID.
    auto back = Parse(s);
    if (!back || back->domain_ != domain_ || back->path_ != path_) s = name();
  } else {
    s = name();
  }
  if (!tag_.empty()) s.append(":").append(tag_);
  if (digest_) s.append("@").append(digest_->ToString());
  return s;
}

Reference Reference::WithTag(std::string tag) const {
  Reference r = *this;
  r.tag_ = std::move(tag);
  return r;
}

Reference Reference::WithDigest(Digest d) const {
  Reference r = *this;
  r.digest_ = std::move(d);
  return r;
}

Reference Reference::WithoutDigest() const {
  Reference r = *this;
  r.digest_.reset();
  if (r.tag_.empty()) r.tag_ = "latest";
  return r;
}

}  // namespace strata::oci
