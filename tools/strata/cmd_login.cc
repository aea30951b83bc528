// strata login [-u USER --password-stdin] REGISTRY and strata logout REGISTRY:
// record / remove registry credentials in the auth file (see
// registry/credentials.h for which file and format). Login checks the
// credentials against the registry first. Passwords are read from stdin only.
#include <unistd.h>

#include <fmt/format.h>

#include <iostream>

#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

std::string RegistryArg(const std::string& arg) {
  // Accept "https://host/v2/" as docker does; keep host[:port].
  std::string key = registry::NormalizeRegistryKey(arg);
  return key.substr(0, key.find('/'));
}

}  // namespace

Verb LoginVerb() {
  return {"login", "Log in to a registry", [](CLI::App& app) -> Action {
            auto reg = std::make_shared<std::string>();
            auto user = std::make_shared<std::string>();
            auto password_stdin = std::make_shared<bool>(false);
            app.add_option("REGISTRY", *reg, "Registry host[:port]")->required();
            app.add_option("-u,--username", *user, "User name");
            app.add_flag("--password-stdin", *password_stdin, "Read the password from stdin");
            return [reg, user, password_stdin](Context& ctx) -> int {
              if (user->empty() || !*password_stdin) {
                fmt::print(stderr, "strata: login needs -u USER and --password-stdin\n");
                return kExitUsage;
              }
              std::string password;
              std::getline(std::cin, password);
              while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
                password.pop_back();
              if (password.empty()) {
                fmt::print(stderr, "strata: login: empty password on stdin\n");
                return kExitUsage;
              }
              const std::string host = RegistryArg(*reg);
              auto creds = MakeCredentialStore(ctx);
              if (!creds) return Fail(creds.error());
              registry::AuthConfig auth{*user, password, ""};
              auto client = MakeClient(ctx, *creds);
              if (auto s = client->CheckLogin(host, auth); !s) return Fail(s.error());
              if (auto s = (*creds)->Login(host, auth); !s) return Fail(s.error());
              if (!ctx.global.quiet) fmt::print("Login Succeeded!\n");
              return kExitOk;
            };
          }};
}

Verb LogoutVerb() {
  return {"logout", "Log out of a registry", [](CLI::App& app) -> Action {
            auto reg = std::make_shared<std::string>();
            app.add_option("REGISTRY", *reg, "Registry host[:port]")->required();
            return [reg](Context& ctx) -> int {
              const std::string host = RegistryArg(*reg);
              auto creds = MakeCredentialStore(ctx);
              if (!creds) return Fail(creds.error());
              if (auto s = (*creds)->Logout(host); !s) return Fail(s.error());
              if (!ctx.global.quiet) fmt::print("Removed login credentials for {}\n", host);
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
