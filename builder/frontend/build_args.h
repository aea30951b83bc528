// Build-argument scoping: the target/build platform, the predefined ARGs
// (TARGETPLATFORM, BUILDARCH, ...), proxy ARGs, and ArgScope, the ARGs in
// effect at one point of a stage in declaration order.
//
// Rules (Dockerfile reference / BuildKit): ARGs before the first FROM are
// "meta" args, usable in FROM lines; inside a stage an ARG must be declared
// to be visible, and `ARG NAME` without a default inherits a meta arg's value;
// --build-arg overrides defaults; ENV wins over an ARG of the same name;
// proxy args are usable by RUN without declaration and stay out of history.
// Value types; no shared state.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/frontend/instructions.h"
#include "builder/frontend/shell_lexer.h"
#include "oci/util/error.h"

namespace strata::builder {

// os/arch[/variant] of a build. TODO(lead): replace with oci::Platform when it lands.
// The PATH an image without one gets (BuildKit's empty image, docker's RUN).
inline constexpr std::string_view kDefaultImagePath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct BuildPlatform {
  std::string os = "linux";
  std::string arch = "amd64";
  std::string variant;

  // The platform of this machine (uname), e.g. linux/amd64 or linux/arm64.
  static BuildPlatform Host();
  // "linux/arm64/v8", "linux/amd64". kInvalidArgument if malformed.
  static Result<BuildPlatform> Parse(std::string_view s);
  std::string ToString() const;
  bool operator==(const BuildPlatform&) const = default;
};

// HTTP_PROXY, https_proxy, NO_PROXY, ... (both cases).
bool IsProxyArg(std::string_view name);

// TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS,
// BUILDARCH, BUILDVARIANT in that order.
std::vector<KeyValue> PredefinedArgs(const BuildPlatform& target, const BuildPlatform& build);
bool IsPredefinedArg(std::string_view name);

// ARGs declared so far in one scope. A declared ARG may have no value.
class ArgScope {
 public:
  // Declares (or re-declares) `key`; a later declaration replaces the value
  // but keeps the original position.
  void Declare(const std::string& key, std::optional<std::string> value);
  // The value, or nullopt if undeclared or declared without a value.
  std::optional<std::string> Get(std::string_view key) const;
  bool Declared(std::string_view key) const;
  // Declared ARGs that have a value, in declaration order.
  std::vector<KeyValue> Values() const;
  // Every declared ARG in declaration order, with its value if it has one.
  const std::vector<std::pair<std::string, std::optional<std::string>>>& All() const {
    return args_;
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> args_;
};

// The getter for expanding an instruction at dispatch time: `env` ("K=V"
// entries as in an image config, later entries win) is consulted first, then
// `args`. Both must outlive the getter.
EnvGetter DispatchEnv(const std::vector<std::string>& env, const std::vector<KeyValue>& args);

// Same with ENV as key/value pairs.
EnvGetter DispatchEnv(const std::vector<KeyValue>& env, const std::vector<KeyValue>& args);

}  // namespace strata::builder
