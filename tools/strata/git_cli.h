// GitCli: the builder's GitClient (builder/engine/git_source.h) over Debian's
// `git` CLI, which is what BuildKit itself runs: ssh, dumb and smart HTTP,
// shallow fetches and submodules all work as git users expect (Debian's
// libgit2 has no ssh agent support for the dumb protocol and no shallow
// clone in the version Debian 12 ships).
//
// Per store, one bare cache repository per remote: ROOT/git/<sha256(remote)>
// (a lock file next to it serializes fetches and checkouts of that remote
// across threads and processes). Resolve asks the remote (`git ls-remote`)
// what the ref names now; Checkout fetches only when the cache does not
// already hold that commit (shallow, --depth=1, where the server allows it),
// so an unchanged ref costs one ls-remote and no download.
//
// Every git runs with a scrubbed environment: HOME a private temp dir,
// GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null, GIT_TERMINAL_PROMPT=0,
// no credential helper, ext:: and file:// remotes refused for submodules,
// `ssh -F /dev/null -o BatchMode=yes` through the forwarded agent (host keys
// accepted on first use into a per-run known_hosts, as BuildKit does without
// a known-hosts setting; STRATA_GIT_KNOWN_HOSTS=FILE makes them strict), a
// timeout on each call. HTTPS credentials are BuildKit's secrets
// GIT_AUTH_TOKEN / GIT_AUTH_HEADER (and their `.<host>` forms), passed as
// GIT_CONFIG_KEY_n/VALUE_n environment (never argv) and removed from every
// message. Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "builder/engine/git_source.h"

namespace strata::cli {

struct GitCliOptions {
  std::filesystem::path cache_dir;      // ROOT/git
  std::filesystem::path ssh_auth_sock;  // the "default" agent; empty = none
  // BuildKit's secret ids: GIT_AUTH_TOKEN, GIT_AUTH_HEADER, and
  // GIT_AUTH_TOKEN.<host> / GIT_AUTH_HEADER.<host> (which win for that host).
  std::map<std::string, std::string> auth;  // id -> value
  std::filesystem::path known_hosts;        // empty = accept new host keys
  std::chrono::seconds timeout{600};        // each git call
};

class GitCli : public builder::GitClient {
 public:
  explicit GitCli(GitCliOptions opts) : opts_(std::move(opts)) {}

  // Asks the remote once per (remote, ref); later calls get that answer.
  Result<std::string> Resolve(const builder::GitRef& ref) override;
  Status Checkout(const builder::GitRef& ref, const std::string& commit,
                  const std::filesystem::path& dest, bool keep_git_dir) override;

  // Fetches made (tests and progress: a cache hit makes none).
  int fetches() const;

 private:
  struct Run;
  GitCliOptions opts_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::string> ref_names_;  // (remote, commit)
  // (remote, ref) -> commit: one answer per ref for the client's lifetime (a
  // build), so two ADDs of a branch that moves meanwhile see one commit.
  std::map<std::pair<std::string, std::string>, std::string> resolved_;
  int fetches_ = 0;
};

// The ref of `ls-remote` output that `want` names (empty = HEAD), as git
// resolves a name: an exact refs/... name, else refs/tags/NAME (peeled for
// an annotated tag), else refs/heads/NAME. Returns {refname, commit} or
// nullopt. Pure (tested directly).
std::optional<std::pair<std::string, std::string>> PickRef(std::string_view ls_remote,
                                                           std::string_view want);

}  // namespace strata::cli
