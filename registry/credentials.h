// Registry credentials: where they are looked up and how login/logout record
// them. Formats read and written:
//
//   containers-auth.json(5) and docker's config.json share one shape:
//     {"auths": {"KEY": {"auth": base64("user:password"),
//                        "identitytoken": "<OAuth2 refresh token>"}},
//      "credHelpers": {"HOST": "NAME"},   // per-registry helper
//      "credsStore": "NAME"}              // default helper
//   KEY is a registry host[:port], optionally with a repository path
//   ("quay.io/org/repo": the most specific key wins), or a URL as docker
//   writes it ("https://index.docker.io/v1/", "https://host/v2/"). docker.io,
//   index.docker.io and registry-1.docker.io are one registry.
//   A helper is the program docker-credential-NAME: `get` reads the server URL
//   on stdin and prints {"ServerURL","Username","Secret"}; Username "<token>"
//   means Secret is an identity token.
//
// Lookup order (as podman): --creds; then --authfile alone if given;
// otherwise $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
// ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, ~/.docker/config.json.
// Within a file: credHelpers[host], then auths, then credsStore. The first
// file that knows the registry wins; no credentials means anonymous.
//
// Login writes `auths` of: --authfile, else $REGISTRY_AUTH_FILE, else
// ${XDG_RUNTIME_DIR}/containers/auth.json, else ~/.docker/config.json —
// atomically, mode 0600, every other field of the file kept.
//
// Nothing here ever puts a secret into an error message.
// Thread-safety: const methods may be called from several threads.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::registry {

struct AuthConfig {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token (docker "identitytoken")
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
  bool operator==(const AuthConfig&) const = default;
};

// The registry key credentials are filed under: the reference domain with
// docker's aliases folded ("index.docker.io", "registry-1.docker.io",
// "https://index.docker.io/v1/" -> "docker.io"; "https://h:5000/v2/" -> "h:5000").
std::string NormalizeRegistryKey(std::string_view key);

// The host the registry API is served from: docker.io -> registry-1.docker.io.
std::string RegistryApiHost(std::string_view domain);

// Parses "user:password" (--creds); the password may contain ':'.
// InvalidArgument if the user part is empty.
Result<AuthConfig> ParseCredsFlag(std::string_view creds);

// Runs docker-credential-NAME helpers. A seam so tests can script helpers.
class CredentialHelperRunner {
 public:
  virtual ~CredentialHelperRunner() = default;
  // Runs `docker-credential-<name> <verb>` with `input` on stdin; returns its
  // stdout. NotFound if it reports "credentials not found"; Unavailable if it
  // cannot be run.
  virtual Result<std::string> Run(std::string_view name, std::string_view verb,
                                  std::string_view input) const = 0;
};

// The real runner: exec from `search_dirs` if given, else $PATH.
class ExecCredentialHelperRunner : public CredentialHelperRunner {
 public:
  explicit ExecCredentialHelperRunner(std::vector<std::filesystem::path> search_dirs = {})
      : search_dirs_(std::move(search_dirs)) {}
  Result<std::string> Run(std::string_view name, std::string_view verb,
                          std::string_view input) const override;

 private:
  std::vector<std::filesystem::path> search_dirs_;
};

struct CredentialSources {
  std::optional<AuthConfig> creds;           // --creds
  std::filesystem::path authfile;            // --authfile
  std::filesystem::path registry_auth_file;  // $REGISTRY_AUTH_FILE
  std::filesystem::path xdg_runtime_dir;     // $XDG_RUNTIME_DIR
  std::filesystem::path xdg_config_home;     // $XDG_CONFIG_HOME
  std::filesystem::path home;                // $HOME

  // Reads the environment variables above (not --creds/--authfile).
  static CredentialSources FromEnvironment();
  // Files consulted, in order (existing or not).
  std::vector<std::filesystem::path> LookupFiles() const;
  // The file login/logout write.
  std::filesystem::path LoginFile() const;
};

// Looks up credentials in one parsed auth file for `registry` (a normalized
// key) and `repository` (path, may be empty). nullopt if the file does not
// know the registry.
Result<std::optional<AuthConfig>> LookupInAuthFile(std::string_view json, std::string_view registry,
                                                   std::string_view repository,
                                                   const CredentialHelperRunner& helpers);

class CredentialStore {
 public:
  CredentialStore(CredentialSources sources, std::shared_ptr<const CredentialHelperRunner> helpers);

  // Credentials for `registry` (a reference domain, e.g. "docker.io",
  // "localhost:5000") and optionally a repository path. An empty AuthConfig
  // means anonymous. InvalidArgument naming the file if a file is malformed.
  Result<AuthConfig> Lookup(std::string_view registry, std::string_view repository = "") const;

  // Records `auth` (username + password) for `registry` in LoginFile().
  Status Login(std::string_view registry, const AuthConfig& auth) const;
  // Removes every entry for `registry` from LoginFile(). NotFound if none.
  Status Logout(std::string_view registry) const;

  const CredentialSources& sources() const { return sources_; }

 private:
  CredentialSources sources_;
  std::shared_ptr<const CredentialHelperRunner> helpers_;
};

// Base64 helpers (standard alphabet, padded).
std::string Base64Encode(std::string_view in);
Result<std::string> Base64Decode(std::string_view in);

}  // namespace strata::registry
