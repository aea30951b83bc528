// How an instruction is shown: history created_by (as BuildKit) and the
// JSON of --print-plan.
#include "builder/frontend/instructions.h"
#include "builder/frontend/instructions_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <set>
#include <span>
#include <utility>

namespace strata::builder {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

std::string GoDurationString(int64_t ns) {
  if (ns == 0) return "0s";
  if (ns < 1'000'000'000) {
    if (ns % 1'000'000 == 0) return fmt::format("{}ms", ns / 1'000'000);
    if (ns % 1'000 == 0) return fmt::format("{}\u00b5s", ns / 1'000);
    return fmt::format("{}ns", ns);
  }
  int64_t h = ns / 3'600'000'000'000;
  int64_t m = ns / 60'000'000'000 % 60;
  int64_t s = ns / 1'000'000'000 % 60;
  int64_t frac = ns % 1'000'000'000;
  std::string sec = std::to_string(s);
  if (frac) {
    std::string f = fmt::format("{:09d}", frac);
    while (f.back() == '0') f.pop_back();
    sec += "." + f;
  }
  if (h) return fmt::format("{}h{}m{}s", h, m, sec);
  if (m) return fmt::format("{}m{}s", m, sec);
  return sec + "s";
}

// Go's %q for a string (ASCII subset that Dockerfiles use).
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string GoQuoteList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out.push_back(' ');
    out += GoQuote(v[i]);
  }
  return out + "]";
}

std::string Join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

nlohmann::json CommandLineJson(const CommandLine& c) {
  nlohmann::json j;
  j["form"] = c.exec_form ? "exec" : "shell";
  if (c.exec_form) {
    j["exec"] = c.exec;
  } else {
    j["shell"] = c.shell;
  }
  return j;
}

nlohmann::json HeredocJson(const Heredoc& h) {
  nlohmann::json j = {
      {"name", h.name}, {"content", h.content}, {"expand", h.expand}, {"chomp", h.chomp}};
  if (h.fd >= 0) j["fd"] = h.fd;
  return j;
}

nlohmann::json MountJson(const MountSpec& m) {
  nlohmann::json j = {{"type", m.type}, {"target", m.target}, {"readonly", m.readonly}};
  if (!m.source.empty()) j["source"] = m.source;
  if (!m.from.empty()) j["from"] = m.from;
  if (!m.id.empty()) j["id"] = m.id;
  if (!m.sharing.empty()) j["sharing"] = m.sharing;
  if (!m.mode.empty()) j["mode"] = m.mode;
  if (!m.env.empty()) j["env"] = m.env;
  if (m.uid) j["uid"] = *m.uid;
  if (m.gid) j["gid"] = *m.gid;
  if (m.size) j["size"] = *m.size;
  if (m.required) j["required"] = true;
  return j;
}

}  // namespace

std::string CreatedBy(const Instruction& ins, const std::vector<std::string>& shell,
                      const std::vector<KeyValue>& run_args) {
  return std::visit(
      [&](const auto& c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, RunCommand>) {
          std::vector<std::string> parts;
          if (!run_args.empty()) {
            parts.push_back(fmt::format("|{}", run_args.size()));
            for (const KeyValue& kv : run_args) parts.push_back(kv.key + "=" + kv.value);
          }
          if (c.cmd.exec_form) {
            parts.insert(parts.end(), c.cmd.exec.begin(), c.cmd.exec.end());
          } else {
            parts.insert(parts.end(), shell.begin(), shell.end());
            std::string line = c.cmd.shell;
            for (const Heredoc& h : c.heredocs) line += "\n" + h.content + h.name;
            parts.push_back(line);
          }
          return "RUN " + Join(parts, " ") + " # buildkit";
        } else if constexpr (std::is_same_v<T, CopyCommand>) {
          std::string s = c.add ? "ADD" : "COPY";
          for (const std::string& src : c.sources) s += " " + src;
          for (const Heredoc& h : c.source_contents) s += " <<" + h.name;
          return s + " " + c.dest + " # buildkit";
        } else if constexpr (std::is_same_v<T, CmdCommand> ||
                             std::is_same_v<T, EntrypointCommand>) {
          std::vector<std::string> argv = c.cmd.exec;
          if (!c.cmd.exec_form) {
            argv = shell;
            argv.push_back(c.cmd.shell);
          }
          return std::string(ins.Name()) + " " + GoQuoteList(argv);
        } else if constexpr (std::is_same_v<T, EnvCommand> || std::is_same_v<T, LabelCommand>) {
          std::string s(ins.Name());
          const auto& kvs = [&]() -> const std::vector<KeyValue>& {
            if constexpr (std::is_same_v<T, EnvCommand>) {
              return c.env;
            } else {
              return c.labels;
            }
          }();
          for (const KeyValue& kv : kvs) s += " " + kv.key + "=" + kv.value;
          return s;
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          std::string s = "ARG";
          for (const ArgDecl& a : c.args) s += " " + a.key + (a.value ? "=" + *a.value : "");
          return s;
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          auto ports = NormalizeExposedPorts(c.ports);
          std::set<std::string> sorted;
          if (ports) sorted.insert(ports->begin(), ports->end());
          std::string s = "EXPOSE map[";
          bool first = true;
          for (const std::string& p : sorted) {
            s += (first ? "" : " ") + p + ":{}";
            first = false;
          }
          return s + "]";
        } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
          return "WORKDIR " + c.path;
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          return "USER " + c.user;
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          return "VOLUME [" + Join(c.volumes, " ") + "]";
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          return "STOPSIGNAL " + c.signal;
        } else if constexpr (std::is_same_v<T, ShellCommand>) {
          return "SHELL [" + Join(c.shell, " ") + "]";
        } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
          return "MAINTAINER " + c.maintainer;
        } else if constexpr (std::is_same_v<T, OnbuildCommand>) {
          return "ONBUILD " + c.expression;
        } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
          auto d = [](int64_t ns) { return GoQuote(GoDurationString(ns)); };
          return fmt::format("HEALTHCHECK &{{{} {} {} {} {} '\\x{:02x}'}}", GoQuoteList(c.test),
                             d(c.interval_ns), d(c.timeout_ns), d(c.start_period_ns),
                             d(c.start_interval_ns), c.retries);
        } else {
          return "";  // FROM leaves no history entry of its own
        }
      },
      ins.command);
}

nlohmann::json InstructionToJson(const Instruction& ins) {
  nlohmann::json j;
  j["instruction"] = ins.Name();
  j["line"] = ins.start_line;
  j["end_line"] = ins.end_line;
  j["original"] = ins.original;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FromCommand>) {
          j["image"] = c.image;
          if (!c.stage_name.empty()) j["stage_name"] = c.stage_name;
          if (!c.platform.empty()) j["platform"] = c.platform;
        } else if constexpr (std::is_same_v<T, RunCommand>) {
          j["command"] = CommandLineJson(c.cmd);
          if (!c.heredocs.empty()) {
            for (const Heredoc& h : c.heredocs) j["heredocs"].push_back(HeredocJson(h));
          }
          if (!c.mounts.empty()) {
            for (const MountSpec& m : c.mounts) j["mounts"].push_back(MountJson(m));
          }
          if (!c.network.empty()) j["network"] = c.network;
          if (!c.security.empty()) j["security"] = c.security;
        } else if constexpr (std::is_same_v<T, CmdCommand> ||
                             std::is_same_v<T, EntrypointCommand>) {
          j["command"] = CommandLineJson(c.cmd);
        } else if constexpr (std::is_same_v<T, ShellCommand>) {
          j["shell"] = c.shell;
        } else if constexpr (std::is_same_v<T, LabelCommand> || std::is_same_v<T, EnvCommand>) {
          nlohmann::json arr = nlohmann::json::array();
          const auto& kvs = [&]() -> const std::vector<KeyValue>& {
            if constexpr (std::is_same_v<T, EnvCommand>) {
              return c.env;
            } else {
              return c.labels;
            }
          }();
          for (const KeyValue& kv : kvs) arr.push_back({{"key", kv.key}, {"value", kv.value}});
          j[std::is_same_v<T, EnvCommand> ? "env" : "labels"] = std::move(arr);
        } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
          j["maintainer"] = c.maintainer;
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          j["ports"] = c.ports;
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          nlohmann::json arr = nlohmann::json::array();
          for (const ArgDecl& a : c.args) {
            nlohmann::json e = {{"key", a.key}};
            e["default"] = a.value ? nlohmann::json(*a.value) : nlohmann::json(nullptr);
            arr.push_back(std::move(e));
          }
          j["args"] = std::move(arr);
        } else if constexpr (std::is_same_v<T, CopyCommand>) {
          j["sources"] = c.sources;
          j["dest"] = c.dest;
          if (c.json_form) j["json_form"] = true;
          for (const Heredoc& h : c.source_contents) j["source_contents"].push_back(HeredocJson(h));
          if (!c.from.empty()) j["from"] = c.from;
          if (!c.chown.empty()) j["chown"] = c.chown;
          if (!c.chmod.empty()) j["chmod"] = c.chmod;
          if (c.link) j["link"] = true;
          if (c.parents) j["parents"] = true;
          if (!c.excludes.empty()) j["excludes"] = c.excludes;
          if (!c.checksum.empty()) j["checksum"] = c.checksum;
          if (c.keep_git_dir) j["keep_git_dir"] = true;
          if (c.unpack) j["unpack"] = *c.unpack;
        } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
          j["path"] = c.path;
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          j["user"] = c.user;
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          j["volumes"] = c.volumes;
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          j["signal"] = c.signal;
        } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
          j["test"] = c.test;
          if (!c.interval.empty()) j["interval"] = c.interval;
          if (!c.timeout.empty()) j["timeout"] = c.timeout;
          if (!c.start_period.empty()) j["start_period"] = c.start_period;
          if (!c.start_interval.empty()) j["start_interval"] = c.start_interval;
          if (c.retries) j["retries"] = c.retries;
        } else if constexpr (std::is_same_v<T, OnbuildCommand>) {
          j["expression"] = c.expression;
        }
      },
      ins.command);
  return j;
}

}  // namespace strata::builder
