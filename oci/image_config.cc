#include "oci/image_config.h"

#include <ctime>

#include "oci/json_util.h"

namespace strata::oci {

namespace {

constexpr std::string_view kWhat = "image config";

Result<std::optional<std::vector<std::string>>> GetOptionalList(const nlohmann::json& j,
                                                                std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  STRATA_ASSIGN_OR_RETURN(auto list, GetStringList(j, key, kWhat));
  return std::optional<std::vector<std::string>>(std::move(list));
}

Result<std::set<std::string>> GetKeySet(const nlohmann::json& j, std::string_view key) {
  std::set<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"{}\" must be an object", kWhat, key);
  }
  for (const auto& [k, v] : it->items()) out.insert(k);
  return out;
}

nlohmann::json KeySetJson(const std::set<std::string>& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : s) j[k] = nlohmann::json::object();
  return j;
}

Result<ContainerConfig> ParseContainerConfig(const nlohmann::json& j) {
  ContainerConfig c;
  if (j.is_null()) return c;
  if (!j.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: \"config\" must be an object", kWhat);
  }
  STRATA_ASSIGN_OR_RETURN(c.user, GetString(j, "User", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.exposed_ports, GetKeySet(j, "ExposedPorts"));
  STRATA_ASSIGN_OR_RETURN(c.env, GetStringList(j, "Env", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.entrypoint, GetOptionalList(j, "Entrypoint"));
  STRATA_ASSIGN_OR_RETURN(c.cmd, GetOptionalList(j, "Cmd"));
  STRATA_ASSIGN_OR_RETURN(c.volumes, GetKeySet(j, "Volumes"));
  STRATA_ASSIGN_OR_RETURN(c.working_dir, GetString(j, "WorkingDir", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.labels, GetStringMap(j, "Labels", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.stop_signal, GetString(j, "StopSignal", kWhat));
  if (auto it = j.find("ArgsEscaped"); it != j.end() && it->is_boolean()) {
    c.args_escaped = it->get<bool>();
  }
  STRATA_ASSIGN_OR_RETURN(c.on_build, GetStringList(j, "OnBuild", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.shell, GetStringList(j, "Shell", kWhat));
  if (auto it = j.find("Healthcheck"); it != j.end() && it->is_object()) {
    HealthConfig h;
    STRATA_ASSIGN_OR_RETURN(h.test, GetStringList(*it, "Test", kWhat));
    STRATA_ASSIGN_OR_RETURN(h.interval_ns, GetInt(*it, "Interval", kWhat));
    STRATA_ASSIGN_OR_RETURN(h.timeout_ns, GetInt(*it, "Timeout", kWhat));
    STRATA_ASSIGN_OR_RETURN(h.start_period_ns, GetInt(*it, "StartPeriod", kWhat));
    STRATA_ASSIGN_OR_RETURN(h.start_interval_ns, GetInt(*it, "StartInterval", kWhat));
    STRATA_ASSIGN_OR_RETURN(int64_t retries, GetInt(*it, "Retries", kWhat));
    h.retries = static_cast<int>(retries);
    c.healthcheck = std::move(h);
  }
  c.extra =
      ExtraFields(j, {"User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                      "Labels", "StopSignal", "ArgsEscaped", "OnBuild", "Shell", "Healthcheck"});
  return c;
}

nlohmann::json ContainerConfigJson(const ContainerConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  if (!c.user.empty()) j["User"] = c.user;
  if (!c.exposed_ports.empty()) j["ExposedPorts"] = KeySetJson(c.exposed_ports);
  if (!c.env.empty()) j["Env"] = c.env;
  if (c.entrypoint) j["Entrypoint"] = *c.entrypoint;
  if (c.cmd) j["Cmd"] = *c.cmd;
  if (!c.volumes.empty()) j["Volumes"] = KeySetJson(c.volumes);
  if (!c.working_dir.empty()) j["WorkingDir"] = c.working_dir;
  if (!c.labels.empty()) j["Labels"] = c.labels;
  if (!c.stop_signal.empty()) j["StopSignal"] = c.stop_signal;
  if (c.args_escaped) j["ArgsEscaped"] = true;
  if (!c.on_build.empty()) j["OnBuild"] = c.on_build;
  if (!c.shell.empty()) j["Shell"] = c.shell;
  if (c.healthcheck) {
    const auto& h = *c.healthcheck;
    nlohmann::json hj = {{"Test", h.test}};
    if (h.interval_ns) hj["Interval"] = h.interval_ns;
    if (h.timeout_ns) hj["Timeout"] = h.timeout_ns;
    if (h.start_period_ns) hj["StartPeriod"] = h.start_period_ns;
    if (h.start_interval_ns) hj["StartInterval"] = h.start_interval_ns;
    if (h.retries) hj["Retries"] = h.retries;
    j["Healthcheck"] = hj;
  }
  MergeExtra(j, c.extra);
  return j;
}

}  // namespace

std::optional<std::string> ContainerConfig::GetEnv(std::string_view key) const {
  for (const auto& e : env) {
    auto eq = e.find('=');
    std::string_view k = std::string_view(e).substr(0, eq);
    if (k == key) return eq == std::string::npos ? std::string() : e.substr(eq + 1);
  }
  return std::nullopt;
}

void ContainerConfig::SetEnv(std::string_view key, std::string_view value) {
  std::string entry = fmt::format("{}={}", key, value);
  for (auto& e : env) {
    auto eq = e.find('=');
    if (std::string_view(e).substr(0, eq) == key) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

Result<ImageConfig> ImageConfig::Parse(std::string_view json) {
  STRATA_ASSIGN_OR_RETURN(auto j, ParseJson(json, kWhat));
  return FromJson(j);
}

Result<ImageConfig> ImageConfig::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "{}: not an object", kWhat);
  ImageConfig c;
  STRATA_ASSIGN_OR_RETURN(c.created, GetString(j, "created", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.author, GetString(j, "author", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.architecture, GetString(j, "architecture", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.os, GetString(j, "os", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.variant, GetString(j, "variant", kWhat));
  STRATA_ASSIGN_OR_RETURN(c.os_version, GetString(j, "os.version", kWhat));
  if (auto it = j.find("config"); it != j.end()) {
    STRATA_ASSIGN_OR_RETURN(c.config, ParseContainerConfig(*it));
  }
  nlohmann::json rootfs_extra = nlohmann::json::object();
  if (auto it = j.find("rootfs"); it != j.end() && it->is_object()) {
    STRATA_ASSIGN_OR_RETURN(auto ids, GetStringList(*it, "diff_ids", kWhat));
    for (const auto& s : ids) {
      auto d = Digest::Parse(s);
      if (!d) return Unexpected(d.error().Wrap("image config rootfs.diff_ids"));
      c.diff_ids.push_back(*d);
    }
  }
  if (auto it = j.find("history"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: \"history\" must be an array", kWhat);
    }
    for (const auto& h : *it) {
      if (!h.is_object()) {
        return MakeError(ErrorCode::kInvalidArgument, "{}: history entry not an object", kWhat);
      }
      HistoryEntry e;
      STRATA_ASSIGN_OR_RETURN(e.created, GetString(h, "created", kWhat));
      STRATA_ASSIGN_OR_RETURN(e.created_by, GetString(h, "created_by", kWhat));
      STRATA_ASSIGN_OR_RETURN(e.author, GetString(h, "author", kWhat));
      STRATA_ASSIGN_OR_RETURN(e.comment, GetString(h, "comment", kWhat));
      if (auto el = h.find("empty_layer"); el != h.end() && el->is_boolean()) {
        e.empty_layer = el->get<bool>();
      }
      e.extra = ExtraFields(h, {"created", "created_by", "author", "comment", "empty_layer"});
      c.history.push_back(std::move(e));
    }
  }
  c.extra = ExtraFields(j, {"created", "author", "architecture", "os", "variant", "os.version",
                            "config", "rootfs", "history"});
  return c;
}

nlohmann::json ImageConfig::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (!created.empty()) j["created"] = created;
  if (!author.empty()) j["author"] = author;
  j["architecture"] = architecture;
  j["os"] = os;
  if (!variant.empty()) j["variant"] = variant;
  if (!os_version.empty()) j["os.version"] = os_version;
  j["config"] = ContainerConfigJson(config);
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& d : diff_ids) ids.push_back(d.ToString());
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", ids}};
  if (!history.empty()) {
    nlohmann::json hs = nlohmann::json::array();
    for (const auto& h : history) {
      nlohmann::json hj = nlohmann::json::object();
      if (!h.created.empty()) hj["created"] = h.created;
      if (!h.created_by.empty()) hj["created_by"] = h.created_by;
      if (!h.author.empty()) hj["author"] = h.author;
      if (!h.comment.empty()) hj["comment"] = h.comment;
      if (h.empty_layer) hj["empty_layer"] = true;
      MergeExtra(hj, h.extra);
      hs.push_back(std::move(hj));
    }
    j["history"] = std::move(hs);
  }
  MergeExtra(j, extra);
  return j;
}

Platform ImageConfig::platform() const {
  Platform p;
  p.os = os;
  p.architecture = architecture;
  p.variant = variant;
  p.os_version = os_version;
  return p;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace strata::oci
