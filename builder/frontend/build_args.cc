#include "builder/frontend/build_args.h"

#include "oci/descriptor.h"

#include <algorithm>
#include <array>

namespace strata::builder {

BuildPlatform BuildPlatform::Host() {
  // One machine-name table for strata: oci::Platform::FromMachine.
  oci::Platform h = oci::Platform::Host();
  BuildPlatform p;
  p.os = h.os;
  p.arch = h.architecture;
  p.variant = h.variant;
  return p;
}

Result<BuildPlatform> BuildPlatform::Parse(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 ||
      std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid platform \"{}\": want os/arch[/variant]",
                     s);
  }
  BuildPlatform p;
  p.os = parts[0];
  p.arch = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

std::string BuildPlatform::ToString() const {
  return variant.empty() ? os + "/" + arch : os + "/" + arch + "/" + variant;
}

bool IsProxyArg(std::string_view name) {
  static constexpr std::array<std::string_view, 10> kProxy = {
      "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
      "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy"};
  return std::find(kProxy.begin(), kProxy.end(), name) != kProxy.end();
}

std::vector<KeyValue> PredefinedArgs(const BuildPlatform& target, const BuildPlatform& build) {
  return {{"TARGETPLATFORM", target.ToString()},
          {"TARGETOS", target.os},
          {"TARGETARCH", target.arch},
          {"TARGETVARIANT", target.variant},
          {"BUILDPLATFORM", build.ToString()},
          {"BUILDOS", build.os},
          {"BUILDARCH", build.arch},
          {"BUILDVARIANT", build.variant}};
}

bool IsPredefinedArg(std::string_view name) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
      "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

void ArgScope::Declare(const std::string& key, std::optional<std::string> value) {
  for (auto& [k, v] : args_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  args_.emplace_back(key, std::move(value));
}

std::optional<std::string> ArgScope::Get(std::string_view key) const {
  for (const auto& [k, v] : args_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool ArgScope::Declared(std::string_view key) const {
  return std::any_of(args_.begin(), args_.end(), [&](const auto& a) { return a.first == key; });
}

std::vector<KeyValue> ArgScope::Values() const {
  std::vector<KeyValue> out;
  for (const auto& [k, v] : args_) {
    if (v) out.push_back({k, *v});
  }
  return out;
}

EnvGetter DispatchEnv(const std::vector<std::string>& env, const std::vector<KeyValue>& args) {
  return [&env, &args](std::string_view name) -> std::optional<std::string> {
    for (auto it = env.rbegin(); it != env.rend(); ++it) {
      std::string_view e = *it;
      size_t eq = e.find('=');
      if (e.substr(0, eq) == name) {
        return eq == std::string_view::npos ? std::string() : std::string(e.substr(eq + 1));
      }
    }
    for (auto it = args.rbegin(); it != args.rend(); ++it) {
      if (it->key == name) return it->value;
    }
    return std::nullopt;
  };
}

EnvGetter DispatchEnv(const std::vector<KeyValue>& env, const std::vector<KeyValue>& args) {
  return [&env, &args](std::string_view name) -> std::optional<std::string> {
    for (auto it = env.rbegin(); it != env.rend(); ++it) {
      if (it->key == name) return it->value;
    }
    for (auto it = args.rbegin(); it != args.rend(); ++it) {
      if (it->key == name) return it->value;
    }
    return std::nullopt;
  };
}

}  // namespace strata::builder
