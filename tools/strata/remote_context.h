// `strata build URL`: a remote build context, fetched into a scratch
// directory under the store's ingest/ dir before the build starts.
//   a git source (builder/engine/git_source.h: https://h/r.git#REF:SUBDIR,
//   ssh://..., git@h:r#REF): the commit's tree through the GitClient, .git
//   left out unless `keep_git_dir` (BuildKit's BUILDKIT_CONTEXT_KEEP_GIT_DIR
//   build argument); SUBDIR is the context
//   any other http(s) URL: downloaded; a tar (plain or compressed) is the
//   context, extracted as `build -` extracts stdin (stdin_context.h), and a
//   text file is the Dockerfile with an empty context (docker's
//   `docker build URL`)
// The scratch directory (and the context hasher's memo) goes with the
// object. Not thread-safe; one per build.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "builder/engine/executor.h"
#include "builder/engine/git_source.h"
#include "oci/store.h"
#include "oci/util/error.h"
#include "oci/util/file_util.h"
#include "tools/strata/git_cli.h"
#include "tools/strata/stdin_context.h"

namespace strata::cli {

// Whether CONTEXT names a remote context (a git source or an http(s) URL).
bool IsRemoteContext(std::string_view context);

class RemoteContext {
 public:
  // InvalidArgument for a bad URL; the GitClient's and fetcher's errors
  // (NotFound for an unknown ref, Unauthenticated naming the host, ...).
  static Result<RemoteContext> Fetch(const oci::Store& store, const std::string& url,
                                     builder::GitClient& git, const builder::UrlFetcher& fetch,
                                     uint64_t max_bytes, bool keep_git_dir = false);

  RemoteContext(RemoteContext&& o) noexcept
      : scratch_(std::move(o.scratch_)),
        dir_(std::move(o.dir_)),
        memo_(std::exchange(o.memo_, {})),
        tar_(std::move(o.tar_)),
        what_(std::move(o.what_)) {}
  RemoteContext& operator=(RemoteContext&&) = delete;
  ~RemoteContext();

  const std::filesystem::path& dir() const { return tar_ ? tar_->dir() : dir_; }
  const std::optional<std::string>& dockerfile_text() const;
  // What was fetched, for the progress line ("commit <id>" or a digest).
  const std::string& what() const { return what_; }

 private:
  RemoteContext() = default;
  ScopedTempDir scratch_;
  std::filesystem::path dir_;
  std::filesystem::path memo_;
  std::optional<StdinContext> tar_;
  std::string what_;
};

// The GitCli options of a build: the store's git cache, the "default" ssh
// agent, and the GIT_AUTH_* secrets' values (read now).
Result<GitCliOptions> MakeGitCliOptions(
    const std::filesystem::path& store_root,
    const std::map<std::string, std::filesystem::path>& ssh_sockets,
    const std::map<std::string, builder::BuildOptions::Secret>& secrets);

// GET through curl (redirects followed; `tls_verify` as for registries).
builder::UrlFetcher MakeHttpFetcher(bool tls_verify);

}  // namespace strata::cli
