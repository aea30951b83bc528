#include "tools/strata/remote_context.h"

#include <fcntl.h>

#include <memory>

#include <fmt/format.h>

#include "builder/engine/context_hasher.h"
#include "builder/engine/image_path.h"
#include "oci/digest.h"
#include "registry/transport.h"
#include "tools/curl/curl_transport.h"
#include "tools/strata/secret_flags.h"

namespace strata::cli {
namespace fs = std::filesystem;

bool IsRemoteContext(std::string_view context) {
  return builder::IsGitSource(context) || context.starts_with("http://") ||
         context.starts_with("https://");
}

Result<RemoteContext> RemoteContext::Fetch(const oci::Store& store, const std::string& url,
                                           builder::GitClient& git,
                                           const builder::UrlFetcher& fetch, uint64_t max_bytes,
                                           bool keep_git_dir) {
  RemoteContext c;
  STRATA_ASSIGN_OR_RETURN(auto parsed, builder::ParseGitRef(url));
  STRATA_ASSIGN_OR_RETURN(c.scratch_, ScopedTempDir::Create(store.IngestDir(), "context-"));
  if (parsed) {
    const builder::GitRef& g = *parsed;
    const std::string shown = builder::RedactUrl(g.remote);
    auto commit = git.Resolve(g);
    if (!commit) return Unexpected(commit.error().Wrap(fmt::format("build context {}", shown)));
    fs::path tree = c.scratch_.path() / "tree";
    STRATA_RETURN_IF_ERROR(MakeDirs(tree));
    if (auto s = git.Checkout(g, *commit, tree, keep_git_dir); !s) {
      return Unexpected(s.error().Wrap(fmt::format("build context {}", shown)));
    }
    auto sub = builder::ResolveInRoot(tree, g.subdir.empty() ? "." : g.subdir, true);
    if (!sub) return Unexpected(sub.error().Wrap(fmt::format("build context {}", shown)));
    if (std::error_code ec; !fs::is_directory(*sub, ec)) {
      return MakeError(ErrorCode::kNotFound, "build context {}: {} is no directory of commit {}",
                       shown, g.subdir, *commit);
    }
    c.dir_ = *sub;
    c.memo_ = builder::ContextHasher::MemoPath(store.CacheDir(), c.dir_);
    c.what_ = fmt::format("{}#{} (commit {})", shown, g.ref.empty() ? "HEAD" : g.ref, *commit);
    return c;
  }
  if (!fetch) return MakeError(ErrorCode::kUnimplemented, "build context {}: no fetcher", url);
  const fs::path raw = c.scratch_.path() / "download";
  std::string last_modified;
  if (auto s = fetch(url, raw, &last_modified); !s) {
    return Unexpected(s.error().Wrap(fmt::format("build context {}", url)));
  }
  STRATA_ASSIGN_OR_RETURN(auto digest, oci::DigestFile(raw.string()));
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(raw, O_RDONLY));
  STRATA_ASSIGN_OR_RETURN(auto tar, StdinContext::Read(store, fd.get(), max_bytes, url));
  (void)RemoveAll(raw);
  c.tar_.emplace(std::move(tar));
  c.what_ = fmt::format("{} ({})", url, digest.ToString());
  return c;
}

const std::optional<std::string>& RemoteContext::dockerfile_text() const {
  static const std::optional<std::string> kNone;
  return tar_ ? tar_->dockerfile_text() : kNone;
}

RemoteContext::~RemoteContext() {
  if (!memo_.empty()) (void)RemoveAll(memo_);
}

Result<GitCliOptions> MakeGitCliOptions(
    const fs::path& store_root, const std::map<std::string, fs::path>& ssh_sockets,
    const std::map<std::string, builder::BuildOptions::Secret>& secrets) {
  GitCliOptions o;
  o.cache_dir = store_root / "git";
  if (auto it = ssh_sockets.find("default"); it != ssh_sockets.end()) o.ssh_auth_sock = it->second;
  for (const auto& [id, s] : secrets) {
    if (!id.starts_with("GIT_AUTH_TOKEN") && !id.starts_with("GIT_AUTH_HEADER")) continue;
    STRATA_ASSIGN_OR_RETURN(auto v, SecretValue(s));
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    o.auth[id] = std::move(v);
  }
  if (const char* kh = std::getenv("STRATA_GIT_KNOWN_HOSTS"); kh && *kh) o.known_hosts = kh;
  return o;
}

builder::UrlFetcher MakeHttpFetcher(bool tls_verify) {
  auto http = std::make_shared<std::shared_ptr<registry::Transport>>();
  return [http, tls_verify](const std::string& url, const fs::path& dest,
                            std::string* last_modified) -> Status {
    if (!*http) {
      registry::CurlTransportOptions co;
      co.tls_verify = tls_verify;
      *http = std::make_shared<registry::RedirectTransport>(
          std::make_shared<registry::CurlTransport>(co));
    }
    STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(dest, O_WRONLY | O_CREAT | O_EXCL, 0600));
    registry::Request req;
    req.url = url;
    req.on_body = [&](std::string_view chunk) {
      return WriteAll(fd.get(), chunk.data(), chunk.size());
    };
    STRATA_ASSIGN_OR_RETURN(auto resp, (*http)->RoundTrip(req));
    if (resp.status != 200) {
      return MakeError(resp.status == 404 ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                       "GET {}: HTTP {}", url, resp.status);
    }
    *last_modified = resp.GetHeader("Last-Modified");
    return OkStatus();
  };
}

}  // namespace strata::cli
