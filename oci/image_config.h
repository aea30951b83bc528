// ImageConfig: the OCI image configuration (image-spec config.md), the JSON
// blob a manifest's `config` descriptor points at. Typed fields for what
// strata reads and writes; every other key (at the top level and inside
// `config`) survives a round-trip in `extra`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/json_util.h"
#include "oci/util/error.h"

namespace strata::oci {

struct HealthConfig {
  std::vector<std::string> test;  // {"NONE"}, {"CMD", ...}, {"CMD-SHELL", "..."}
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
  bool operator==(const HealthConfig&) const = default;
};

// The `config` object: what a container started from the image runs with.
struct ContainerConfig {
  std::string user;
  std::set<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> env;         // "KEY=value", order kept
  // nullopt = not set (JSON null/absent); an empty vector is an explicit [].
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::set<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  bool args_escaped = false;
  std::optional<HealthConfig> healthcheck;
  std::vector<std::string> on_build;
  std::vector<std::string> shell;
  nlohmann::json extra = nlohmann::json::object();

  // Value of KEY in env, if set.
  std::optional<std::string> GetEnv(std::string_view key) const;
  // Sets or replaces KEY (keeps its position when replacing).
  void SetEnv(std::string_view key, std::string_view value);
  bool operator==(const ContainerConfig&) const = default;
};

struct HistoryEntry {
  std::string created;  // RFC 3339
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
  nlohmann::json extra = nlohmann::json::object();
  bool operator==(const HistoryEntry&) const = default;
};

struct ImageConfig {
  std::string created;  // RFC 3339, empty if unknown
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  ContainerConfig config;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, type "layers"
  std::vector<HistoryEntry> history;
  nlohmann::json extra = nlohmann::json::object();

  static Result<ImageConfig> Parse(std::string_view json);
  static Result<ImageConfig> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  // Canonical bytes (sorted keys, no whitespace): what strata stores.
  std::string Serialize() const { return DumpJson(ToJson()); }
  Platform platform() const;
  bool operator==(const ImageConfig&) const = default;
};

// RFC 3339 UTC timestamp with seconds ("2026-11-26T06:30:00Z").
std::string FormatRfc3339(int64_t unix_seconds);

}  // namespace strata::oci
