// Git sources: BuildKit's git URL forms (a build context, ADD <git url>) and
// the GitClient seam that fetches them.
//
// A string is a git source as BuildKit's gitutil.ParseGitRef decides:
//   https://host/path.git[#frag]  http://host/path.git[#frag]  (path ends in .git)
//   ssh://[user@]host[:port]/path[#frag]   git://host/path[#frag]
//   user@host:path[#frag]                   (scp-like; cannot carry a port)
// where frag is `REF[:SUBDIR]`: REF a branch, tag, full ref or commit
// (empty = the remote's HEAD), SUBDIR the directory used from the tree.
// Anything else (a local path, an http URL not ending in .git, an unknown
// scheme) is not git, so `ADD http://host/repo.git#main` is never fetched
// as a file: it is a git source.
//
// GitClient is the I/O seam (the CLI injects one running Debian's git, see
// tools/strata/git_cli.h; tests inject fakes): builder/ never speaks to a
// remote itself. Implementations are used from several stage threads.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "oci/util/error.h"

namespace strata::builder {

struct GitRef {
  std::string remote;  // what git fetches from: the URL without its fragment
  std::string ref;     // branch, tag, refs/..., commit; empty = HEAD
  std::string subdir;  // "" = the whole tree
  std::string host;    // for messages: "host" or "host:port"
  bool ssh = false;    // ssh:// or scp-like: authenticates through the agent
  bool operator==(const GitRef&) const = default;
};

// The parsed git source, or nullopt when `s` is not one (see above).
// InvalidArgument for a git source with a bad fragment (a subdir leaving the
// tree) or BuildKit's query form (?ref=..., not supported: refused by name).
Result<std::optional<GitRef>> ParseGitRef(std::string_view s);

// Whether `s` is a git source (ParseGitRef would not return nullopt).
bool IsGitSource(std::string_view s);

// Whether `s` is a full commit id (40 or 64 lowercase hex digits).
bool IsCommitId(std::string_view s);

// `text` (a URL, or a message quoting URLs) with the password of every
// URL's user info replaced by "xxxxx" (for messages and cache keys).
std::string RedactUrl(std::string_view text);

class GitClient {
 public:
  virtual ~GitClient() = default;
  // The commit `ref.ref` names at `ref.remote` now (a full commit id is its
  // own answer). NotFound naming the ref and remote for an unknown ref;
  // Unauthenticated naming the host (never a secret) when the remote refuses
  // the credentials; Unavailable when it cannot be reached.
  virtual Result<std::string> Resolve(const GitRef& ref) = 0;
  // Writes the tree of `commit` (from Resolve) into `dest`, an existing
  // empty directory: submodules included, every mtime the commit's time,
  // and `.git` only when `keep_git_dir` (with `origin` the remote).
  virtual Status Checkout(const GitRef& ref, const std::string& commit,
                          const std::filesystem::path& dest, bool keep_git_dir) = 0;
};

}  // namespace strata::builder
