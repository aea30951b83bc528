// Values inside instructions: RUN --mount specs, sizes, ports, signals,
// durations.
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

Result<int64_t> ParseRamBytes(std::string_view v) {
  // go-units RAMInBytes: a number with an optional binary unit, any case:
  // "65536", "64k", "64m", "1g", "64MiB", "512kb".
  size_t i = 0;
  while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) || v[i] == '.')) ++i;
  if (i == 0) return MakeError(ErrorCode::kInvalidArgument, "invalid size: '{}'", v);
  double n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + i, n);
  if (ec != std::errc() || p != v.data() + i || n < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid size: '{}'", v);
  }
  std::string unit = Lower(v.substr(i));
  if (unit.ends_with("ib")) {
    unit.resize(unit.size() - 2);
  } else if (unit.size() > 1 && unit.ends_with("b")) {
    unit.pop_back();
  }
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1024.0},
      {"m", 1024.0 * 1024},
      {"g", 1024.0 * 1024 * 1024},
      {"t", 1024.0 * 1024 * 1024 * 1024},
      {"p", 1024.0 * 1024 * 1024 * 1024 * 1024}};
  for (const auto& [u, mult] : kUnits) {
    if (unit == u) {
      double bytes = n * mult;
      if (bytes > 9.2e18) return MakeError(ErrorCode::kInvalidArgument, "size too large: '{}'", v);
      return static_cast<int64_t>(bytes);
    }
  }
  return MakeError(ErrorCode::kInvalidArgument, "invalid size: '{}'", v);
}

Result<MountSpec> ParseMount(std::string_view value) {
  MountSpec m;
  bool have_type = false;
  // The type decides the defaults, so find it first.
  for (std::string_view field : Split(value, ',')) {
    field = Trim(field);
    size_t eq = field.find('=');
    if (eq != std::string_view::npos && Lower(field.substr(0, eq)) == "type") {
      m.type = Lower(field.substr(eq + 1));
      have_type = true;
    }
  }
  (void)have_type;
  if (m.type != "bind" && m.type != "cache" && m.type != "tmpfs" && m.type != "secret" &&
      m.type != "ssh") {
    return MakeError(ErrorCode::kInvalidArgument, "unsupported mount type \"{}\"", m.type);
  }
  // Binds, secrets and ssh sockets are read-only unless rw is asked for.
  m.readonly = m.type == "bind" || m.type == "secret" || m.type == "ssh";
  if (m.type == "cache") m.sharing = "shared";
  bool readonly_set = false;
  bool sharing_set = false;
  for (std::string_view field : Split(value, ',')) {
    field = Trim(field);
    if (field.empty()) continue;
    size_t eq = field.find('=');
    std::string key = Lower(field.substr(0, eq));
    std::string_view v = eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
    if (eq == std::string_view::npos) {
      if (key == "readonly" || key == "ro") {
        m.readonly = true;
        readonly_set = true;
        continue;
      }
      if (key == "readwrite" || key == "rw") {
        m.readonly = false;
        readonly_set = true;
        continue;
      }
      if (key == "required") {
        m.required = true;
        continue;
      }
      return MakeError(ErrorCode::kInvalidArgument, "invalid field '{}' must be a key=value pair",
                       field);
    }
    if (key == "type") continue;
    if (key == "target" || key == "dst" || key == "destination") {
      m.target = std::string(v);
    } else if (key == "source" || key == "src") {
      m.source = std::string(v);
    } else if (key == "from") {
      m.from = std::string(v);
    } else if (key == "id") {
      m.id = std::string(v);
    } else if (key == "env") {
      m.env = std::string(v);
    } else if (key == "readonly" || key == "ro") {
      STRATA_ASSIGN_OR_RETURN(m.readonly, ParseBoolValue(key, v));
      readonly_set = true;
    } else if (key == "readwrite" || key == "rw") {
      STRATA_ASSIGN_OR_RETURN(bool rw, ParseBoolValue(key, v));
      m.readonly = !rw;
      readonly_set = true;
    } else if (key == "required") {
      STRATA_ASSIGN_OR_RETURN(m.required, ParseBoolValue(key, v));
    } else if (key == "sharing") {
      std::string s = Lower(v);
      if (s != "shared" && s != "private" && s != "locked") {
        return MakeError(ErrorCode::kInvalidArgument, "unsupported sharing value \"{}\"", v);
      }
      m.sharing = s;
      sharing_set = true;
    } else if (key == "mode") {
      unsigned long mode = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), mode, 8);
      if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "invalid mode \"{}\" in mount", v);
      }
      m.mode = std::string(v);
    } else if (key == "size") {
      auto n = ParseRamBytes(v);
      if (!n) return MakeError(ErrorCode::kInvalidArgument, "invalid size \"{}\" in mount", v);
      m.size = *n;
    } else if (key == "uid" || key == "gid") {
      auto n = ParseInt(v);
      if (!n || *n < 0 || *n > 2147483647) {
        return MakeError(ErrorCode::kInvalidArgument, "invalid {} \"{}\" in mount", key, v);
      }
      (key == "uid" ? m.uid : m.gid) = *n;
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "unexpected key '{}' in '{}'", key, field);
    }
  }
  (void)readonly_set;
  if (m.type == "secret" && m.target.empty() && m.env.empty()) {
    std::string id = m.id.empty() ? m.source : m.id;
    if (id.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "secret mount requires an id or a target");
    }
    m.target = "/run/secrets/" + id;
  }
  if (m.type == "secret" && m.id.empty()) {
    std::string_view t = m.target;
    m.id = m.source.empty() ? std::string(t.substr(t.rfind('/') + 1)) : m.source;
  }
  if (m.type == "ssh" && m.id.empty()) m.id = "default";
  if (m.type == "ssh" && m.target.empty()) m.target = "/run/buildkit/ssh_agent.0";
  // No target: BuildKit mounts at the WORKDIR (the executor joins a relative
  // target to it). "/" can never be a mount target.
  {
    std::string_view t = m.target;
    while (t.size() > 1 && t.back() == '/') t.remove_suffix(1);
    if (t == "/" || t == "/.") {
      return MakeError(ErrorCode::kInvalidArgument, "invalid mount target \"{}\"", m.target);
    }
  }
  // Options that only some types take (BuildKit refuses them elsewhere too):
  // never accepted and dropped.
  auto only = [&](bool given, std::string_view key,
                  std::initializer_list<std::string_view> types) -> Status {
    if (!given) return OkStatus();
    for (std::string_view t : types) {
      if (m.type == t) return OkStatus();
    }
    return MakeError(ErrorCode::kInvalidArgument, "unexpected key '{}' for mount type '{}'", key,
                     m.type);
  };
  STRATA_RETURN_IF_ERROR(only(m.size.has_value(), "size", {"tmpfs"}));
  STRATA_RETURN_IF_ERROR(only(sharing_set, "sharing", {"cache"}));
  STRATA_RETURN_IF_ERROR(only(!m.mode.empty(), "mode", {"cache", "secret", "ssh"}));
  STRATA_RETURN_IF_ERROR(only(m.uid.has_value(), "uid", {"cache", "secret", "ssh"}));
  STRATA_RETURN_IF_ERROR(only(m.gid.has_value(), "gid", {"cache", "secret", "ssh"}));
  STRATA_RETURN_IF_ERROR(only(!m.env.empty(), "env", {"secret"}));
  STRATA_RETURN_IF_ERROR(only(m.required, "required", {"secret", "ssh"}));
  STRATA_RETURN_IF_ERROR(only(!m.from.empty(), "from", {"bind", "cache"}));
  // A cache's id defaults to its target (the executor resolves a relative or
  // missing one against the WORKDIR first).
  if (m.type == "cache" && m.id.empty() && m.target.starts_with("/")) m.id = m.target;
  if (m.type == "tmpfs" && !m.from.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "tmpfs mounts can not have a from");
  }
  return m;
}

Result<std::vector<std::string>> NormalizeExposedPorts(const std::vector<std::string>& ports) {
  std::vector<std::string> out;
  for (const std::string& spec : ports) {
    std::string_view s = spec;
    std::string proto = "tcp";
    if (size_t slash = s.find('/'); slash != std::string_view::npos) {
      proto = Lower(s.substr(slash + 1));
      s = s.substr(0, slash);
    }
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      return MakeError(ErrorCode::kInvalidArgument, "invalid proto: {}", proto);
    }
    std::string_view lo = s, hi = s;
    if (size_t dash = s.find('-'); dash != std::string_view::npos) {
      lo = s.substr(0, dash);
      hi = s.substr(dash + 1);
    }
    auto a = ParseInt(lo);
    auto b = ParseInt(hi);
    if (!a || !b || *a < 0 || *b > 65535 || *a > *b) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid containerPort: {}", spec);
    }
    for (int64_t p = *a; p <= *b; ++p) out.push_back(fmt::format("{}/{}", p, proto));
  }
  return out;
}

Status ValidateStopSignal(std::string_view signal) {
  // moby's signal.ParseSignal: a positive number, or a Linux signal name
  // with or without "SIG", in any case.
  static constexpr std::string_view kNames[] = {
      "ABRT", "ALRM",   "BUS",  "CHLD",   "CLD",   "CONT", "FPE",  "HUP",   "ILL",
      "INT",  "IO",     "IOT",  "KILL",   "PIPE",  "POLL", "PROF", "PWR",   "QUIT",
      "SEGV", "STKFLT", "STOP", "SYS",    "TERM",  "TRAP", "TSTP", "TTIN",  "TTOU",
      "URG",  "USR1",   "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "UNUSED"};
  if (auto n = ParseInt(signal); n) {
    if (*n > 0 && *n <= 64) return OkStatus();
    return MakeError(ErrorCode::kInvalidArgument, "invalid signal: {}", signal);
  }
  std::string up = Upper(signal);
  std::string_view name = up;
  if (name.starts_with("SIG")) name.remove_prefix(3);
  if (std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames)) {
    return OkStatus();
  }
  // Real-time signals: RTMIN, RTMIN+n, RTMAX-n.
  if (name == "RTMIN" || name == "RTMAX") return OkStatus();
  for (std::string_view base : {"RTMIN+", "RTMAX-"}) {
    if (name.starts_with(base)) {
      auto n = ParseInt(name.substr(base.size()));
      if (n && *n >= 1 && *n <= 15) return OkStatus();
    }
  }
  return MakeError(ErrorCode::kInvalidArgument, "invalid signal: {}", signal);
}

Result<int64_t> ParseGoDuration(std::string_view s) {
  std::string_view orig = s;
  if (s == "0") return 0;
  if (s.empty()) return MakeError(ErrorCode::kInvalidArgument, "invalid duration \"\"");
  bool neg = false;
  if (s.front() == '-' || s.front() == '+') {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return MakeError(ErrorCode::kInvalidArgument, "invalid duration \"{}\"", orig);
    double num = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, num);
    if (ec != std::errc() || p != s.data() + i) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid duration \"{}\"", orig);
    }
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double mult = 0;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      mult = 1e3;
    else if (unit == "ms")
      mult = 1e6;
    else if (unit == "s")
      mult = 1e9;
    else if (unit == "m")
      mult = 60e9;
    else if (unit == "h")
      mult = 3600e9;
    else {
      return MakeError(ErrorCode::kInvalidArgument, "unknown unit \"{}\" in duration \"{}\"", unit,
                       orig);
    }
    total += num * mult;
  }
  return static_cast<int64_t>(neg ? -total : total);
}

}  // namespace strata::builder
