#include "builder/engine/config_edit.h"

#include <type_traits>
#include <variant>

namespace strata::builder {

std::vector<std::string> ShellOf(const oci::ImageConfig& config) {
  const auto& shell = config.config.shell;
  return shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : shell;
}

std::vector<std::string> CommandArgv(const CommandLine& c, const std::vector<std::string>& shell) {
  if (c.exec_form) return c.exec;
  auto v = shell;
  v.push_back(c.shell);
  return v;
}

ConfigEdit ApplyToConfig(const Instruction& ins, oci::ImageConfig& config, bool& cmd_set) {
  auto& cc = config.config;
  const std::vector<std::string> shell = ShellOf(config);
  ConfigEdit edit;
  edit.handled = true;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, EnvCommand>) {
          for (const auto& kv : c.env) cc.SetEnv(kv.key, kv.value);
        } else if constexpr (std::is_same_v<T, LabelCommand>) {
          for (const auto& kv : c.labels) cc.labels[kv.key] = kv.value;
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          if (auto ports = NormalizeExposedPorts(c.ports)) {
            for (const auto& p : *ports) cc.exposed_ports.insert(p);
          }
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          cc.user = c.user;
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          for (const auto& v : c.volumes) cc.volumes.insert(v);
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          cc.stop_signal = c.signal;
        } else if constexpr (std::is_same_v<T, CmdCommand>) {
          cc.cmd = CommandArgv(c.cmd, shell);
          cmd_set = true;
        } else if constexpr (std::is_same_v<T, EntrypointCommand>) {
          cc.entrypoint = CommandArgv(c.cmd, shell);
          if (!cmd_set) cc.cmd.reset();
        } else if constexpr (std::is_same_v<T, ShellCommand>) {
          cc.shell = c.shell;
        } else if constexpr (std::is_same_v<T, OnbuildCommand>) {
          cc.on_build.push_back(c.expression);
        } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
          config.author = c.maintainer;
        } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
          oci::HealthConfig h;
          if (c.none) {
            h.test = {"NONE"};
          } else {
            h.test = c.test;
            h.interval_ns = c.interval_ns;
            h.timeout_ns = c.timeout_ns;
            h.start_period_ns = c.start_period_ns;
            h.start_interval_ns = c.start_interval_ns;
            h.retries = c.retries;
          }
          cc.healthcheck = h;
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          edit.history = false;
        } else {
          edit.handled = false;
        }
      },
      ins.command);
  return edit;
}

}  // namespace strata::builder
