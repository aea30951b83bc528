// Platform and Descriptor value types (OCI image-spec descriptor.md,
// image-index.md). Unknown JSON fields survive a round-trip in `extra`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "oci/util/error.h"

namespace strata::oci {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;

  // The platform this process runs on (linux/amd64, linux/arm64, ...):
  // FromMachine(uname -m).
  static Platform Host();
  // The one table from a kernel machine name to OCI (GOARCH) names:
  // x86_64 -> amd64, aarch64 -> arm64, armv7l -> arm/v7, armv6l -> arm/v6,
  // i386..i686 -> 386; others (ppc64le, s390x, riscv64) are the same. os is
  // "linux".
  static Platform FromMachine(std::string_view machine);
  // "linux/amd64", "linux/arm/v7", "linux/arm64" (variant normalized).
  static Result<Platform> Parse(std::string_view s);
  std::string ToString() const;
  // Matching as containerd does: os and architecture equal; variant equal after
  // normalization (arm64 "" == "v8"; an empty wanted variant accepts any).
  bool Matches(const Platform& wanted) const;

  static Result<Platform> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  bool operator==(const Platform&) const = default;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::string artifact_type;
  nlohmann::json extra = nlohmann::json::object();

  static Descriptor Of(std::string media_type, Digest digest, int64_t size) {
    Descriptor d;
    d.media_type = std::move(media_type);
    d.digest = std::move(digest);
    d.size = size;
    return d;
  }
  static Result<Descriptor> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  bool operator==(const Descriptor&) const = default;
};

inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";

}  // namespace strata::oci
