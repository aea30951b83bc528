#include "tools/strata/run_options.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace strata::cli {
namespace {

bool IsIp(const std::string& s) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, s.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

// docker's --ulimit names (go-units) -> the OCI rlimit type.
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kUlimitNames = {{
    {"as", "RLIMIT_AS"},
    {"core", "RLIMIT_CORE"},
    {"cpu", "RLIMIT_CPU"},
    {"data", "RLIMIT_DATA"},
    {"fsize", "RLIMIT_FSIZE"},
    {"locks", "RLIMIT_LOCKS"},
    {"memlock", "RLIMIT_MEMLOCK"},
    {"msgqueue", "RLIMIT_MSGQUEUE"},
    {"nice", "RLIMIT_NICE"},
    {"nofile", "RLIMIT_NOFILE"},
    {"nproc", "RLIMIT_NPROC"},
    {"rss", "RLIMIT_RSS"},
    {"rtprio", "RLIMIT_RTPRIO"},
    {"rttime", "RLIMIT_RTTIME"},
    {"sigpending", "RLIMIT_SIGPENDING"},
    {"stack", "RLIMIT_STACK"},
}};

Result<uint64_t> ParseLimit(std::string_view value, std::string_view n) {
  if (n == "-1") return std::numeric_limits<uint64_t>::max();  // unlimited
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
  if (n.empty() || ec != std::errc() || p != n.data() + n.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--ulimit {}: \"{}\" is not a number (or -1 for unlimited)", value, n);
  }
  return v;
}

}  // namespace

Result<builder::HostEntry> ParseAddHost(std::string_view value) {
  // docker: HOST:IP, and since docker 25 HOST=IP (which allows IPv6 without
  // brackets after the first colon, as HOST:IP does too).
  size_t sep = value.find('=');
  if (sep == std::string_view::npos) sep = value.find(':');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 >= value.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "--add-host {}: want HOST:IP", value);
  }
  builder::HostEntry e{std::string(value.substr(0, sep)), std::string(value.substr(sep + 1))};
  for (char c : e.host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '#') {
      return MakeError(ErrorCode::kInvalidArgument, "--add-host {}: bad host name \"{}\"", value,
                       e.host);
    }
  }
  if (e.ip.size() > 2 && e.ip.front() == '[' && e.ip.back() == ']') {
    e.ip = e.ip.substr(1, e.ip.size() - 2);
  }
  if (e.ip == "host-gateway") {
    return MakeError(ErrorCode::kUnimplemented,
                     "--add-host {}: host-gateway is not supported (give the address)", value);
  }
  if (!IsIp(e.ip)) {
    return MakeError(ErrorCode::kInvalidArgument, "--add-host {}: \"{}\" is not an IP address",
                     value, e.ip);
  }
  return e;
}

Result<builder::Rlimit> ParseUlimit(std::string_view value) {
  size_t eq = value.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "--ulimit {}: want NAME=SOFT[:HARD]", value);
  }
  std::string_view name = value.substr(0, eq);
  builder::Rlimit r;
  for (const auto& [n, type] : kUlimitNames) {
    if (n == name) r.type = std::string(type);
  }
  if (r.type.empty()) {
    std::string names;
    for (const auto& [n, type] : kUlimitNames)
      names += (names.empty() ? "" : ", ") + std::string(n);
    return MakeError(ErrorCode::kInvalidArgument, "--ulimit {}: unknown limit \"{}\" (want {})",
                     value, name, names);
  }
  std::string_view limits = value.substr(eq + 1);
  size_t colon = limits.find(':');
  STRATA_ASSIGN_OR_RETURN(r.soft, ParseLimit(value, limits.substr(0, colon)));
  r.hard = r.soft;
  if (colon != std::string_view::npos) {
    STRATA_ASSIGN_OR_RETURN(r.hard, ParseLimit(value, limits.substr(colon + 1)));
  }
  if (r.soft > r.hard) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--ulimit {}: the soft limit is above the hard limit", value);
  }
  return r;
}

Result<uint64_t> ParseShmSize(std::string_view value) {
  std::string s(value);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.ends_with("ib")) {
    s.erase(s.size() - 2);
  } else if (s.size() > 1 && s.back() == 'b') {
    s.pop_back();
  }
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
        mult = 1ull << 10;
        break;
      case 'm':
        mult = 1ull << 20;
        break;
      case 'g':
        mult = 1ull << 30;
        break;
      default:
        break;
    }
    if (mult != 1) s.pop_back();
  }
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || n == 0 ||
      n > std::numeric_limits<uint64_t>::max() / mult) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--shm-size {}: want a positive size (bytes, or with k, m, g)", value);
  }
  return n * mult;
}

}  // namespace strata::cli
