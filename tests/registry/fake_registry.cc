#include "tests/registry/fake_registry.h"

#include <fmt/format.h>

#include "oci/digest.h"
#include "registry/credentials.h"

namespace strata::registry::testing {
namespace {

constexpr std::string_view kRegistryHost = "reg.example";

std::string ErrorBody(std::string_view code, std::string_view message) {
  return fmt::format(R"({{"errors":[{{"code":"{}","message":"{}"}}]}})", code, message);
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      out[std::string(kv.substr(0, eq))] = UrlDecode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::string RangeHeader(size_t n) { return n == 0 ? "0-0" : fmt::format("0-{}", n - 1); }

Result<Response> Reset(const Request& req) {
  return MakeError(ErrorCode::kUnavailable, "{} {}: connection reset by peer", req.method, req.url);
}

}  // namespace

Result<std::string> ReadRequestBody(const Request& req) {
  if (!req.open_body) return req.body;
  STRATA_ASSIGN_OR_RETURN(BodyReader reader, req.open_body());
  std::string out;
  char buf[4096];
  for (int i = 0; i < 1 << 20; ++i) {
    STRATA_ASSIGN_OR_RETURN(size_t n, reader(buf, sizeof(buf)));
    if (n == 0) return out;
    out.append(buf, n);
  }
  return MakeError(ErrorCode::kInternal, "body too long");
}

FakeRegistry::Repo& FakeRegistry::repo(const std::string& name) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  return repos_[name];
}

std::shared_ptr<ScriptedTransport> FakeRegistry::Transport() {
  return std::make_shared<ScriptedTransport>([this](const Request& req) { return Handle(req); });
}

std::string FakeRegistry::PutManifest(const std::string& repo_name, const std::string& tag,
                                      const std::string& bytes, const std::string& media_type) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  const std::string digest = oci::Digest::Of(bytes).ToString();
  Repo& r = repos_[repo_name];
  for (const auto& key : {tag, digest}) {
    if (key.empty()) continue;
    r.manifests[key] = bytes;
    r.media_types[key] = media_type;
  }
  return digest;
}

Result<Response> FakeRegistry::Handle(const Request& req) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  if (hook) {
    if (auto answer = hook(req)) return *answer;
  }
  return HandleLocked(req);
}

std::string FakeRegistry::SessionUrl(const std::string& repo_name, const std::string& id,
                                     bool absolute) const {
  const std::string host = upload_host.empty() ? std::string(kRegistryHost) : upload_host;
  const std::string path = fmt::format("/v2/{}/blobs/uploads/{}?_state=s{}", repo_name, id, id);
  return absolute || host != kRegistryHost ? "https://" + host + path : path;
}

std::optional<Response> FakeRegistry::CheckAuth(const Request& req, const std::string& repo_name) {
  const std::string got = req.GetHeader("Authorization");
  Response deny;
  deny.status = 401;
  deny.body = ErrorBody("UNAUTHORIZED", "authentication required");
  switch (auth) {
    case Auth::kNone:
      return std::nullopt;
    case Auth::kBasic:
      if (got == "Basic " + Base64Encode(user + ":" + password)) return std::nullopt;
      deny.headers.push_back({"WWW-Authenticate", R"(Basic realm="reg.example")"});
      return deny;
    case Auth::kBearer: {
      if (got.starts_with("Bearer ") && tokens_.contains(got.substr(7)) && !reject_tokens)
        return std::nullopt;
      std::string scope = challenge_scope;
      if (scope.empty() && !repo_name.empty()) {
        const bool read = req.method == "GET" || req.method == "HEAD";
        scope = fmt::format("repository:{}:{}", repo_name, read ? "pull" : "pull,push");
      }
      std::string challenge = R"(Bearer realm="https://auth.example/token",service="reg.example")";
      if (!scope.empty()) challenge += fmt::format(R"(,scope="{}")", scope);
      deny.headers.push_back({"WWW-Authenticate", challenge});
      return deny;
    }
  }
  return std::nullopt;
}

Result<Response> FakeRegistry::Token(const Request& req) {
  token_requests.push_back(req.method == "POST" ? req.body : req.url);
  const std::string got = req.GetHeader("Authorization");
  if (!got.empty() && got != "Basic " + Base64Encode(user + ":" + password))
    return ScriptedTransport::Deliver(req, 401, R"({"details":"incorrect username or password"})");
  const std::string token = fmt::format("tok{}", token_requests.size());
  tokens_.insert(token);
  return ScriptedTransport::Deliver(
      req, 200, fmt::format(R"({{"token":"{}","expires_in":{}}})", token, token_expires_in));
}

Result<Response> FakeRegistry::Cdn(const Request& req) {
  cdn_authorization.push_back(req.GetHeader("Authorization"));
  const std::string path = req.url.substr(0, req.url.find('?'));
  const std::string digest = path.substr(path.rfind('/') + 1);
  for (const auto& [name, r] : repos_) {
    if (auto it = r.blobs.find(digest); it != r.blobs.end())
      return ScriptedTransport::Deliver(req, 200, it->second);
  }
  return ScriptedTransport::Deliver(req, 404, "");
}

Result<Response> FakeRegistry::HandleLocked(const Request& req) {
  STRATA_ASSIGN_OR_RETURN(Url url, Url::Parse(req.url));
  if (url.authority == "auth.example") return Token(req);
  if (url.authority == "cdn.example") return Cdn(req);
  const bool on_registry = url.authority == kRegistryHost || other_hosts.count(url.authority) > 0;
  if (!on_registry && (upload_host.empty() || url.authority != upload_host))
    return MakeError(ErrorCode::kUnavailable, "could not resolve host {}", url.authority);
  std::string path = url.path_and_query;
  std::string query;
  if (size_t q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  if (path == "/v2/" || path == "/v2") {
    if (auto denied = CheckAuth(req, "")) return *denied;
    return ScriptedTransport::Deliver(req, 200, "{}");
  }
  if (!path.starts_with("/v2/")) return ScriptedTransport::Deliver(req, 404, "");
  const std::string rest = path.substr(4);
  size_t at = rest.find("/blobs/uploads");
  if (at != std::string::npos) {
    const std::string repo_name = rest.substr(0, at);
    if (on_registry) {
      if (auto denied = CheckAuth(req, repo_name)) return *denied;
    }
    std::string id = rest.substr(at + 14);
    if (id.starts_with("/")) id = id.substr(1);
    return Upload(req, repo_name, id, query);
  }
  if (!on_registry) return ScriptedTransport::Deliver(req, 404, "");
  if ((at = rest.find("/blobs/")) != std::string::npos) {
    const std::string repo_name = rest.substr(0, at);
    if (auto denied = CheckAuth(req, repo_name)) return *denied;
    return Blob(req, repos_[repo_name], rest.substr(at + 7));
  }
  if ((at = rest.find("/manifests/")) != std::string::npos) {
    const std::string repo_name = rest.substr(0, at);
    if (auto denied = CheckAuth(req, repo_name)) return *denied;
    return Manifest(req, repos_[repo_name], rest.substr(at + 11));
  }
  return ScriptedTransport::Deliver(req, 404, "");
}

Result<Response> FakeRegistry::Blob(const Request& req, Repo& r, const std::string& digest) {
  auto it = r.blobs.find(digest);
  if (it == r.blobs.end())
    return ScriptedTransport::Deliver(req, 404, ErrorBody("BLOB_UNKNOWN", "blob unknown"));
  if (req.method == "HEAD")
    return ScriptedTransport::Deliver(req, 200, "",
                                      {{"Content-Length", std::to_string(it->second.size())}});
  if (redirect_blobs)
    return ScriptedTransport::Deliver(req, 307, "",
                                      {{"Location", "https://cdn.example/blobs/" + digest}});
  std::string bytes = it->second;
  if (auto c = corrupt_blobs.find(digest); c != corrupt_blobs.end()) bytes = c->second;
  size_t start = 0;
  int status = 200;
  if (std::string range = req.GetHeader("Range"); !range.empty() && !ignore_range) {
    start = std::stoul(range.substr(6));
    if (start >= bytes.size()) return ScriptedTransport::Deliver(req, 416, "");
    status = 206;
  }
  if (auto cut = cut_blob_once.find(digest);
      cut != cut_blob_once.end() && static_cast<size_t>(cut->second) > start) {
    const std::string part = bytes.substr(start, static_cast<size_t>(cut->second) - start);
    cut_blob_once.erase(cut);
    STRATA_RETURN_IF_ERROR(ScriptedTransport::Deliver(req, status, part));
    return Reset(req);
  }
  if (auto s = short_blob_once.find(digest); s != short_blob_once.end()) {
    const std::string part = bytes.substr(start, static_cast<size_t>(s->second));
    short_blob_once.erase(s);
    return ScriptedTransport::Deliver(req, status, part);
  }
  return ScriptedTransport::Deliver(req, status, bytes.substr(start));
}

Result<Response> FakeRegistry::Upload(const Request& req, const std::string& repo_name,
                                      const std::string& id, const std::string& query) {
  auto q = ParseQuery(query);
  if (req.method == "POST") {
    ++posts;
    if (q.contains("mount") && q.contains("from")) {
      switch (mount) {
        case Mount::kAllow: {
          auto& from = repos_[q["from"]].blobs;
          if (auto b = from.find(q["mount"]); b != from.end()) {
            repos_[repo_name].blobs[b->first] = b->second;
            return ScriptedTransport::Deliver(
                req, 201, "",
                {{"Location", fmt::format("/v2/{}/blobs/{}", repo_name, b->first)},
                 {"Docker-Content-Digest", b->first}});
          }
          break;
        }
        case Mount::kDecline:
          break;
        case Mount::kDeny:
          return ScriptedTransport::Deliver(
              req, 403, ErrorBody("DENIED", "requested access to the resource is denied"));
        case Mount::kServerError:
          return ScriptedTransport::Deliver(req, 500, "");
      }
    }
    const std::string new_id = fmt::format("u{}", next_id_++);
    sessions_[new_id] = {repo_name, ""};
    return ScriptedTransport::Deliver(
        req, 202, "",
        {{"Location", SessionUrl(repo_name, new_id, absolute_locations)}, {"Range", "0-0"}});
  }
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.repo != repo_name)
    return ScriptedTransport::Deliver(req, 404,
                                      ErrorBody("BLOB_UPLOAD_UNKNOWN", "blob upload unknown"));
  Session& s = it->second;
  if (req.method == "DELETE") {
    sessions_.erase(it);
    return ScriptedTransport::Deliver(req, 204, "");
  }
  if (req.method == "GET") {
    return ScriptedTransport::Deliver(req, 204, "",
                                      {{"Location", SessionUrl(repo_name, id, absolute_locations)},
                                       {"Range", RangeHeader(s.bytes.size())}});
  }
  // A body that fails to arrive (the sender aborted) leaves the session as it was.
  STRATA_ASSIGN_OR_RETURN(std::string body, ReadRequestBody(req));
  if (req.method == "PATCH") {
    ++patches;
    const std::string range = req.GetHeader("Content-Range");
    if (!range.empty() && std::stoul(range) != s.bytes.size())
      return ScriptedTransport::Deliver(
          req, 416, ErrorBody("BLOB_UPLOAD_INVALID", "range does not follow the upload"));
    s.bytes += body;
    const std::string loc = relative_patch_locations
                                ? fmt::format("{}?_state=p{}", id, s.bytes.size())
                                : SessionUrl(repo_name, id, absolute_locations);
    return ScriptedTransport::Deliver(req, 202, "",
                                      {{"Location", loc}, {"Range", RangeHeader(s.bytes.size())}});
  }
  if (req.method != "PUT" || !q.contains("digest"))
    return ScriptedTransport::Deliver(req, 400, ErrorBody("BLOB_UPLOAD_INVALID", "bad request"));
  if (fail_blob_puts > 0) {
    --fail_blob_puts;
    return Reset(req);
  }
  const std::string content = s.bytes + body;
  const std::string digest = oci::Digest::Of(content).ToString();
  if (q["digest"] != digest)
    return ScriptedTransport::Deliver(
        req, 400, ErrorBody("DIGEST_INVALID", "provided digest did not match uploaded content"));
  sessions_.erase(it);
  repos_[repo_name].blobs[digest] = content;
  ++blob_puts;
  if (lose_blob_puts > 0) {
    --lose_blob_puts;
    return Reset(req);
  }
  return ScriptedTransport::Deliver(req, 201, "", {{"Docker-Content-Digest", digest}});
}

Result<Response> FakeRegistry::Manifest(const Request& req, Repo& r, const std::string& ref) {
  if (req.method == "PUT") {
    const std::string digest = oci::Digest::Of(req.body).ToString();
    for (const auto& key : {ref, digest}) {
      r.manifests[key] = req.body;
      r.media_types[key] = req.GetHeader("Content-Type");
    }
    ++manifest_puts;
    if (lose_manifest_puts > 0) {
      --lose_manifest_puts;
      return Reset(req);
    }
    return ScriptedTransport::Deliver(req, 201, "", {{"Docker-Content-Digest", digest}});
  }
  auto it = r.manifests.find(ref);
  if (it == r.manifests.end())
    return ScriptedTransport::Deliver(req, 404, ErrorBody("MANIFEST_UNKNOWN", "manifest unknown"));
  std::vector<Header> h = {{"Docker-Content-Digest", oci::Digest::Of(it->second).ToString()},
                           {"Content-Type", r.media_types[ref]}};
  return ScriptedTransport::Deliver(req, 200, req.method == "HEAD" ? "" : it->second, h);
}

}  // namespace strata::registry::testing
