#include "registry/transport.h"

#include <strings.h>

#include <fmt/format.h>

namespace strata::registry {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string FirstHeader(const std::vector<Header>& hs, std::string_view name) {
  for (const auto& h : hs)
    if (IEquals(h.name, name)) return h.value;
  return "";
}

}  // namespace

void Request::SetHeader(std::string_view name, std::string value) {
  RemoveHeader(name);
  headers.push_back({std::string(name), std::move(value)});
}

void Request::RemoveHeader(std::string_view name) {
  std::erase_if(headers, [&](const Header& h) { return IEquals(h.name, name); });
}

std::string Request::GetHeader(std::string_view name) const { return FirstHeader(headers, name); }

std::string Response::GetHeader(std::string_view name) const { return FirstHeader(headers, name); }

std::vector<std::string> Response::GetHeaders(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : headers)
    if (IEquals(h.name, name)) out.push_back(h.value);
  return out;
}

Result<Url> Url::Parse(std::string_view s) {
  size_t p = s.find("://");
  if (p == std::string_view::npos || p == 0)
    return MakeError(ErrorCode::kInvalidArgument, "not an absolute URL: {}", s);
  Url u;
  u.scheme = std::string(s.substr(0, p));
  for (auto& c : u.scheme) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  std::string_view rest = s.substr(p + 3);
  size_t slash = rest.find_first_of("/?#");
  u.authority = std::string(rest.substr(0, slash));
  if (u.authority.empty()) return MakeError(ErrorCode::kInvalidArgument, "URL without host: {}", s);
  u.path_and_query = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.path_and_query.empty() && u.path_and_query[0] != '/')
    u.path_and_query = "/" + u.path_and_query;
  return u;
}

Result<std::string> ResolveLocation(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) {
    STRATA_ASSIGN_OR_RETURN(Url u, Url::Parse(location));
    return u.ToString();
  }
  STRATA_ASSIGN_OR_RETURN(Url b, Url::Parse(base));
  if (location.starts_with("//")) return b.scheme + ":" + std::string(location);
  if (location.starts_with("/")) {
    b.path_and_query = std::string(location);
    return b.ToString();
  }
  // Relative path: replace the last segment of the base path.
  std::string path = b.path_and_query.substr(0, b.path_and_query.find('?'));
  path = path.substr(0, path.rfind('/') + 1);
  b.path_and_query = path + std::string(location);
  return b.ToString();
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string AppendQuery(std::string_view url, std::string_view key, std::string_view value) {
  std::string out(url);
  out += url.find('?') == std::string_view::npos ? '?' : '&';
  out += key;
  out += '=';
  out += UrlEncode(value);
  return out;
}

Result<Response> RedirectTransport::RoundTrip(const Request& req) {
  if (req.method != "GET" && req.method != "HEAD") return inner_->RoundTrip(req);
  STRATA_ASSIGN_OR_RETURN(Url origin, Url::Parse(req.url));
  Request cur = req;
  for (int hop = 0;; ++hop) {
    STRATA_ASSIGN_OR_RETURN(Response resp, inner_->RoundTrip(cur));
    bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                    resp.status == 307 || resp.status == 308;
    std::string location = resp.GetHeader("Location");
    if (!redirect || location.empty()) return resp;
    if (hop >= max_hops_)
      return MakeError(ErrorCode::kUnavailable, "too many redirects (>{}) starting at {}",
                       max_hops_, origin.authority);
    STRATA_ASSIGN_OR_RETURN(cur.url, ResolveLocation(cur.url, location));
    STRATA_ASSIGN_OR_RETURN(Url next, Url::Parse(cur.url));
    if (next.authority != origin.authority || next.scheme != origin.scheme)
      cur.RemoveHeader("Authorization");
  }
}

}  // namespace strata::registry
