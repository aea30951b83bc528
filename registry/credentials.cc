#include "registry/credentials.h"
#include "oci/json_util.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"

extern char** environ;

namespace strata::registry {
namespace {

using nlohmann::json;

constexpr std::string_view kDockerHubLegacyKey = "https://index.docker.io/v1/";

std::string EnvPath(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// The key docker uses for a registry in config.json and helpers.
std::string DockerServerUrl(std::string_view registry) {
  if (registry == "docker.io") return std::string(kDockerHubLegacyKey);
  return std::string(registry);
}

Result<AuthConfig> AuthFromEntry(const json& entry) {
  AuthConfig a;
  if (!entry.is_object()) return a;
  if (entry.contains("auth") && entry["auth"].is_string() &&
      !entry["auth"].get<std::string>().empty()) {
    auto decoded = Base64Decode(entry["auth"].get<std::string>());
    if (!decoded) return MakeError(ErrorCode::kInvalidArgument, "malformed \"auth\" field");
    size_t colon = decoded->find(':');
    if (colon == std::string::npos)
      return MakeError(ErrorCode::kInvalidArgument, "\"auth\" field is not user:password");
    a.username = decoded->substr(0, colon);
    a.password = decoded->substr(colon + 1);
  } else {
    if (entry.contains("username") && entry["username"].is_string())
      a.username = entry["username"].get<std::string>();
    if (entry.contains("password") && entry["password"].is_string())
      a.password = entry["password"].get<std::string>();
  }
  if (entry.contains("identitytoken") && entry["identitytoken"].is_string())
    a.identity_token = entry["identitytoken"].get<std::string>();
  return a;
}

Result<std::optional<AuthConfig>> FromHelper(const CredentialHelperRunner& helpers,
                                             std::string_view name, std::string_view registry) {
  auto out = helpers.Run(name, "get", DockerServerUrl(registry));
  if (!out) {
    if (out.error().code() == ErrorCode::kNotFound) return std::optional<AuthConfig>();
    return std::unexpected(out.error());
  }
  auto j = json::parse(*out, nullptr, false);
  if (!j.is_object())
    return MakeError(ErrorCode::kInvalidArgument,
                     "credential helper docker-credential-{} printed malformed output", name);
  AuthConfig a;
  std::string user = j.value("Username", "");
  std::string secret = j.value("Secret", "");
  if (user == "<token>") {
    a.identity_token = secret;
  } else {
    a.username = user;
    a.password = secret;
  }
  return std::optional<AuthConfig>(a);
}

}  // namespace

std::string NormalizeRegistryKey(std::string_view key) {
  std::string_view k = key;
  if (k.starts_with("https://"))
    k.remove_prefix(8);
  else if (k.starts_with("http://"))
    k.remove_prefix(7);
  // URL-form keys: keep only the host (docker writes "https://host/v1/").
  bool was_url = k.size() != key.size();
  if (was_url) k = k.substr(0, k.find('/'));
  while (k.ends_with("/")) k.remove_suffix(1);
  std::string out(k);
  std::string host = out.substr(0, out.find('/'));
  std::string rest = out.substr(host.size());
  if (host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com")
    host = "docker.io";
  return host + rest;
}

std::string RegistryApiHost(std::string_view domain) {
  if (NormalizeRegistryKey(domain) == "docker.io") return "registry-1.docker.io";
  return std::string(domain);
}

Result<AuthConfig> ParseCredsFlag(std::string_view creds) {
  size_t colon = creds.find(':');
  AuthConfig a;
  a.username = std::string(creds.substr(0, colon));
  if (colon != std::string_view::npos) a.password = std::string(creds.substr(colon + 1));
  if (a.username.empty())
    return MakeError(ErrorCode::kInvalidArgument,
                     "--creds: expected USER[:PASSWORD], user is empty");
  return a;
}

std::string Base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  std::string s;
  for (char c : in)
    if (c != '\n' && c != '\r' && c != ' ') s += c;
  if (s.size() % 4 != 0) return MakeError(ErrorCode::kInvalidArgument, "malformed base64");
  std::string out(3 * s.size() / 4, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return MakeError(ErrorCode::kInvalidArgument, "malformed base64");
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<std::string> ExecCredentialHelperRunner::Run(std::string_view name, std::string_view verb,
                                                    std::string_view input) const {
  std::string prog = "docker-credential-" + std::string(name);
  for (const auto& dir : search_dirs_) {
    std::error_code ec;
    if (std::filesystem::exists(dir / prog, ec)) {
      prog = (dir / prog).string();
      break;
    }
  }
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  std::string verb_s(verb);
  char* argv[] = {prog.data(), verb_s.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return MakeError(ErrorCode::kUnavailable, "cannot run credential helper {}: {}", prog,
                     strerror(rc));
  in_r.Reset();
  out_w.Reset();
  // The input is a server URL: far below the pipe buffer, so no deadlock.
  (void)WriteAll(in_w.get(), input.data(), input.size());
  in_w.Reset();
  std::string out;
  char buf[4096];
  while (out.size() < (1 << 20)) {
    ssize_t n = read(out_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  out_r.Reset();
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    if (out.find("credentials not found") != std::string::npos)
      return MakeError(ErrorCode::kNotFound, "credential helper {}: no credentials", prog);
    // The helper's output is not quoted: it could contain a secret.
    return MakeError(ErrorCode::kUnavailable, "credential helper {} {} failed", prog, verb);
  }
  return out;
}

CredentialSources CredentialSources::FromEnvironment() {
  CredentialSources s;
  s.registry_auth_file = EnvPath("REGISTRY_AUTH_FILE");
  s.xdg_runtime_dir = EnvPath("XDG_RUNTIME_DIR");
  s.xdg_config_home = EnvPath("XDG_CONFIG_HOME");
  s.home = EnvPath("HOME");
  return s;
}

std::vector<std::filesystem::path> CredentialSources::LookupFiles() const {
  if (!authfile.empty()) return {authfile};
  std::vector<std::filesystem::path> files;
  if (!registry_auth_file.empty()) files.push_back(registry_auth_file);
  if (!xdg_runtime_dir.empty()) files.push_back(xdg_runtime_dir / "containers/auth.json");
  if (!xdg_config_home.empty()) {
    files.push_back(xdg_config_home / "containers/auth.json");
  } else if (!home.empty()) {
    files.push_back(home / ".config/containers/auth.json");
  }
  if (!home.empty()) files.push_back(home / ".docker/config.json");
  return files;
}

std::filesystem::path CredentialSources::LoginFile() const {
  if (!authfile.empty()) return authfile;
  if (!registry_auth_file.empty()) return registry_auth_file;
  if (!xdg_runtime_dir.empty()) return xdg_runtime_dir / "containers/auth.json";
  return home / ".docker/config.json";
}

Result<std::optional<AuthConfig>> LookupInAuthFile(std::string_view text, std::string_view registry,
                                                   std::string_view repository,
                                                   const CredentialHelperRunner& helpers) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "not a JSON object");
  const std::string reg = NormalizeRegistryKey(registry);

  if (j.contains("credHelpers") && j["credHelpers"].is_object()) {
    for (const auto& [key, name] : j["credHelpers"].items()) {
      if (NormalizeRegistryKey(key) == reg && name.is_string())
        return FromHelper(helpers, name.get<std::string>(), reg);
    }
  }
  if (j.contains("auths") && j["auths"].is_object()) {
    // Most specific first: reg/a/b/c, reg/a/b, reg/a, reg.
    std::vector<std::string> candidates;
    std::string repo(repository);
    while (!repo.empty()) {
      candidates.push_back(reg + "/" + repo);
      size_t slash = repo.rfind('/');
      repo = slash == std::string::npos ? "" : repo.substr(0, slash);
    }
    candidates.push_back(reg);
    for (const auto& want : candidates) {
      for (const auto& [key, entry] : j["auths"].items()) {
        if (NormalizeRegistryKey(key) != want) continue;
        auto a = AuthFromEntry(entry);
        if (!a) return std::unexpected(a.error().Wrap(fmt::format("auths[\"{}\"]", key)));
        if (!a->empty()) return std::optional<AuthConfig>(*a);
      }
    }
  }
  if (j.contains("credsStore") && j["credsStore"].is_string() &&
      !j["credsStore"].get<std::string>().empty())
    return FromHelper(helpers, j["credsStore"].get<std::string>(), reg);
  return std::optional<AuthConfig>();
}

CredentialStore::CredentialStore(CredentialSources sources,
                                 std::shared_ptr<const CredentialHelperRunner> helpers)
    : sources_(std::move(sources)), helpers_(std::move(helpers)) {
  if (!helpers_) helpers_ = std::make_shared<ExecCredentialHelperRunner>();
}

Result<AuthConfig> CredentialStore::Lookup(std::string_view registry,
                                           std::string_view repository) const {
  if (sources_.creds) return *sources_.creds;
  for (const auto& file : sources_.LookupFiles()) {
    auto text = ReadFile(file);
    if (!text) {
      if (text.error().code() == ErrorCode::kNotFound) continue;
      return std::unexpected(text.error());
    }
    auto found = LookupInAuthFile(*text, registry, repository, *helpers_);
    if (!found) return std::unexpected(found.error().Wrap(file.string()));
    if (*found) return **found;
  }
  return AuthConfig{};
}

namespace {

Result<json> ReadAuthJson(const std::filesystem::path& file) {
  auto text = ReadFile(file);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return json::object();
    return std::unexpected(text.error());
  }
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object())
    return MakeError(ErrorCode::kInvalidArgument, "{}: not a JSON object", file.string());
  return j;
}

}  // namespace

Status CredentialStore::Login(std::string_view registry, const AuthConfig& auth) const {
  const auto file = sources_.LoginFile();
  if (file.empty())
    return MakeError(ErrorCode::kFailedPrecondition, "no auth file: $HOME is not set");
  STRATA_ASSIGN_OR_RETURN(json j, ReadAuthJson(file));
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
  const std::string reg = NormalizeRegistryKey(registry);
  // Drop aliases of the same registry so one entry remains.
  std::vector<std::string> stale;
  for (const auto& [key, v] : j["auths"].items())
    if (NormalizeRegistryKey(key) == reg) stale.push_back(key);
  for (const auto& k : stale) j["auths"].erase(k);
  // docker's own file uses its legacy key for Docker Hub.
  const bool docker_file =
      file.filename() == "config.json" && file.parent_path().filename() == ".docker";
  std::string key = docker_file ? DockerServerUrl(reg) : reg;
  json entry = json::object();
  entry["auth"] = Base64Encode(auth.username + ":" + auth.password);
  if (!auth.identity_token.empty()) entry["identitytoken"] = auth.identity_token;
  j["auths"][key] = entry;
  STRATA_RETURN_IF_ERROR(MakeDirs(file.parent_path(), 0700));
  return WriteFileAtomic(file, oci::DumpJson(j, 1, '\t') + "\n", 0600);
}

Status CredentialStore::Logout(std::string_view registry) const {
  const auto file = sources_.LoginFile();
  STRATA_ASSIGN_OR_RETURN(json j, ReadAuthJson(file));
  const std::string reg = NormalizeRegistryKey(registry);
  std::vector<std::string> stale;
  if (j.contains("auths") && j["auths"].is_object()) {
    for (const auto& [key, v] : j["auths"].items())
      if (NormalizeRegistryKey(key) == reg) stale.push_back(key);
  }
  if (stale.empty())
    return MakeError(ErrorCode::kNotFound, "not logged in to {} (in {})", reg, file.string());
  for (const auto& k : stale) j["auths"].erase(k);
  return WriteFileAtomic(file, oci::DumpJson(j, 1, '\t') + "\n", 0600);
}

}  // namespace strata::registry
