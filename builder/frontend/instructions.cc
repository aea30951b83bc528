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
namespace internal {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
// ---- helpers ---------------------------------------------------------------

// Edit distance with adjacent transpositions (optimal string alignment), so
// "RNU" is one edit from "RUN".
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

CommandLine ParseCommandLine(std::string_view args) {
  CommandLine cmd;
  if (auto exec = ParseJsonStringArray(args)) {
    cmd.exec_form = true;
    cmd.exec = std::move(*exec);
  } else {
    cmd.shell = std::string(args);
  }
  return cmd;
}

// The key=value words of ENV and LABEL, or the legacy "KEY name value" form.
Result<std::vector<KeyValue>> ParseNameVal(std::string_view rest, std::string_view what,
                                           char escape) {
  std::vector<std::string> words = SplitWordsRaw(rest, escape);
  if (words.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "{} requires at least one argument", what);
  }
  std::vector<KeyValue> out;
  if (words[0].find('=') == std::string::npos) {
    std::string_view r = Trim(rest);
    size_t ws = 0;
    while (ws < r.size() && !IsWs(r[ws])) ++ws;
    std::string_view value = Trim(r.substr(ws));
    if (value.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{} must have two arguments", what);
    }
    out.push_back({std::string(r.substr(0, ws)), std::string(value)});
    return out;
  }
  for (const std::string& w : words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "Syntax error - can't find = in \"{}\". Must be of the form: name=value", w);
    }
    if (eq == 0) {
      return MakeError(ErrorCode::kInvalidArgument, "{} names can not be blank", what);
    }
    out.push_back({w.substr(0, eq), w.substr(eq + 1)});
  }
  return out;
}

// The word is a heredoc opener ("<<EOF", "<<-'EOF'", "3<<EOF").
bool IsHeredocWord(std::string_view w) {
  size_t i = 0;
  while (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) ++i;
  return w.substr(i).starts_with("<<") && w.size() > i + 2 && w[i + 2] != '<';
}

Result<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid number \"{}\"", s);
  }
  return v;
}

Result<bool> ParseBoolValue(std::string_view key, std::string_view v) {
  std::string l = Lower(v);
  if (l == "true" || l == "1") return true;
  if (l == "false" || l == "0") return false;
  return MakeError(ErrorCode::kInvalidArgument, "invalid value for {}: {}", key, v);
}

}  // namespace internal

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

// ---- flags ---------------------------------------------------------------

enum class FlagType { kString, kBool, kList };
struct FlagSpec {
  std::string_view name;
  FlagType type;
};

struct Flags {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  std::string Get(std::string_view name) const {
    auto it = values.find(name);
    return it == values.end() || it->second.empty() ? std::string() : it->second.back();
  }
  bool Has(std::string_view name) const { return values.contains(name); }
  bool GetBool(std::string_view name) const { return Get(name) == "true"; }
  std::vector<std::string> GetList(std::string_view name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

Result<Flags> ParseFlags(const std::vector<std::string>& raw, std::span<const FlagSpec> specs) {
  Flags flags;
  for (const std::string& word : raw) {
    std::string_view arg = std::string_view(word).substr(2);  // "--"
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      return MakeError(ErrorCode::kInvalidArgument, "unknown flag: --{}", name);
    }
    if (spec->type != FlagType::kList && flags.Has(name)) {
      return MakeError(ErrorCode::kInvalidArgument, "duplicate flag specified: --{}", name);
    }
    switch (spec->type) {
      case FlagType::kBool: {
        std::string v = value ? Lower(*value) : "true";
        if (v != "true" && v != "false") {
          return MakeError(ErrorCode::kInvalidArgument,
                           "expecting boolean value for flag {}, not: {}", name, *value);
        }
        flags.values[std::string(name)].push_back(v);
        break;
      }
      case FlagType::kString:
      case FlagType::kList:
        if (!value) {
          return MakeError(ErrorCode::kInvalidArgument, "missing a value on flag: --{}", name);
        }
        flags.values[std::string(name)].emplace_back(*value);
        break;
    }
  }
  return flags;
}

constexpr std::array<FlagSpec, 0> kNoFlags{};
constexpr std::array kFromFlags{FlagSpec{"platform", FlagType::kString}};
constexpr std::array kRunFlags{FlagSpec{"mount", FlagType::kList},
                               FlagSpec{"network", FlagType::kString},
                               FlagSpec{"security", FlagType::kString}};
constexpr std::array kCopyFlags{
    FlagSpec{"from", FlagType::kString},  FlagSpec{"chown", FlagType::kString},
    FlagSpec{"chmod", FlagType::kString}, FlagSpec{"link", FlagType::kBool},
    FlagSpec{"parents", FlagType::kBool}, FlagSpec{"exclude", FlagType::kList}};
constexpr std::array kAddFlags{
    FlagSpec{"chown", FlagType::kString},    FlagSpec{"chmod", FlagType::kString},
    FlagSpec{"link", FlagType::kBool},       FlagSpec{"exclude", FlagType::kList},
    FlagSpec{"checksum", FlagType::kString}, FlagSpec{"keep-git-dir", FlagType::kBool},
    FlagSpec{"unpack", FlagType::kBool}};
constexpr std::array kHealthFlags{
    FlagSpec{"interval", FlagType::kString}, FlagSpec{"timeout", FlagType::kString},
    FlagSpec{"start-period", FlagType::kString}, FlagSpec{"start-interval", FlagType::kString},
    FlagSpec{"retries", FlagType::kString}};

// ---- per-instruction parsing ----------------------------------------------

struct Req {
  const Node& node;
  char escape;
  std::string_view args;
};

Result<Command> ParseFrom(const Req& r, const Flags& f) {
  std::vector<std::string> words = SplitWhitespace(r.args);
  FromCommand c;
  c.platform = f.Get("platform");
  if (words.size() == 1) {
    c.image = words[0];
  } else if (words.size() == 3 && Lower(words[1]) == "as") {
    c.image = words[0];
    c.stage_name = Lower(words[2]);
    bool ok = std::islower(static_cast<unsigned char>(c.stage_name[0]));
    for (char ch : c.stage_name) {
      ok = ok &&
           (std::islower(static_cast<unsigned char>(ch)) ||
            std::isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.');
    }
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid name for build stage: \"{}\", name can't start with a number or "
                       "contain symbols",
                       words[2]);
    }
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "FROM requires either one or three arguments");
  }
  return c;
}

Result<Command> ParseRun(const Req& r, const Flags& f) {
  if (Trim(r.args).empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "RUN requires at least one argument");
  }
  RunCommand c;
  c.cmd = ParseCommandLine(r.args);
  c.heredocs = r.node.heredocs;
  c.mount_flags = f.GetList("mount");
  for (const std::string& m : c.mount_flags) {
    auto spec = ParseMount(m);
    if (!spec) return std::unexpected(spec.error());
    c.mounts.push_back(std::move(*spec));
  }
  c.network = f.Get("network");
  if (!c.network.empty() && c.network != "default" && c.network != "none" && c.network != "host") {
    return MakeError(ErrorCode::kInvalidArgument, "unsupported network mode \"{}\"", c.network);
  }
  c.security = f.Get("security");
  if (!c.security.empty() && c.security != "sandbox" && c.security != "insecure") {
    return MakeError(ErrorCode::kInvalidArgument, "unsupported security mode \"{}\"", c.security);
  }
  return c;
}

Result<Command> ParseCopy(const Req& r, const Flags& f, bool add) {
  CopyCommand c;
  c.add = add;
  std::vector<std::string> words;
  if (auto json = ParseJsonStringArray(r.args)) {
    c.json_form = true;
    words = std::move(*json);
  } else {
    words = SplitWhitespace(r.args);
  }
  std::string_view name = add ? "ADD" : "COPY";
  if (words.size() < 2) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "{} requires at least two arguments, but only {} provided. Destination "
                     "could not be determined",
                     name, words.size() == 1 ? "one was" : "none were");
  }
  c.dest = words.back();
  words.pop_back();
  size_t next_heredoc = 0;
  for (std::string& w : words) {
    if (!c.json_form && IsHeredocWord(w) && next_heredoc < r.node.heredocs.size()) {
      c.source_contents.push_back(r.node.heredocs[next_heredoc++]);
    } else {
      c.sources.push_back(std::move(w));
    }
  }
  c.from = f.Get("from");
  c.chown = f.Get("chown");
  c.chmod = f.Get("chmod");
  c.link = f.GetBool("link");
  c.parents = f.GetBool("parents");
  c.excludes = f.GetList("exclude");
  c.checksum = f.Get("checksum");
  c.keep_git_dir = f.GetBool("keep-git-dir");
  if (f.Has("unpack")) c.unpack = f.GetBool("unpack");
  if (!c.checksum.empty()) {
    bool url_or_git = c.sources.size() == 1 && (c.sources[0].find("://") != std::string::npos ||
                                                c.sources[0].starts_with("git@"));
    if (!url_or_git) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "checksum can't be specified for non-HTTP(S) or non-Git sources");
    }
  }
  return c;
}

Result<Command> ParseHealthcheck(const Req& r, const Flags& f) {
  HealthcheckCommand c;
  std::string_view args = Trim(r.args);
  if (args.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "HEALTHCHECK requires at least one argument");
  }
  size_t ws = 0;
  while (ws < args.size() && !IsWs(args[ws])) ++ws;
  std::string type = Upper(args.substr(0, ws));
  std::string_view rest = Trim(args.substr(ws));
  if (type == "NONE") {
    if (!rest.empty() || !f.values.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "HEALTHCHECK NONE takes no arguments");
    }
    c.none = true;
    c.test = {"NONE"};
    return c;
  }
  if (type != "CMD") {
    return MakeError(ErrorCode::kInvalidArgument, "Unknown type \"{}\" in HEALTHCHECK (try CMD)",
                     type);
  }
  if (rest.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "Missing command after HEALTHCHECK CMD");
  }
  CommandLine cl = ParseCommandLine(rest);
  if (cl.exec_form) {
    c.test = {"CMD"};
    c.test.insert(c.test.end(), cl.exec.begin(), cl.exec.end());
  } else {
    c.test = {"CMD-SHELL", cl.shell};
  }
  struct D {
    std::string_view flag;
    std::string* text;
    int64_t* ns;
    std::string_view label;
  };
  for (const D& d :
       {D{"interval", &c.interval, &c.interval_ns, "Interval"},
        D{"timeout", &c.timeout, &c.timeout_ns, "Timeout"},
        D{"start-period", &c.start_period, &c.start_period_ns, "StartPeriod"},
        D{"start-interval", &c.start_interval, &c.start_interval_ns, "StartInterval"}}) {
    std::string v = f.Get(d.flag);
    if (v.empty()) continue;
    auto ns = ParseGoDuration(v);
    if (!ns) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid --{}: {}", d.flag,
                       ns.error().message());
    }
    if (*ns != 0 && *ns < 1000000) {
      return MakeError(ErrorCode::kInvalidArgument, "{} \"{}\" cannot be less than 1ms", d.label,
                       v);
    }
    *d.text = v;
    *d.ns = *ns;
  }
  if (f.Has("retries")) {
    auto n = ParseInt(f.Get("retries"));
    if (!n)
      return MakeError(ErrorCode::kInvalidArgument, "invalid --retries: {}", f.Get("retries"));
    if (*n < 0) {
      return MakeError(ErrorCode::kInvalidArgument, "--retries cannot be negative ({})", *n);
    }
    c.retries = static_cast<int>(*n);
  }
  return c;
}

// A JSON array with a non-string element is an error in BuildKit (not a
// shell-form command): `CMD ["echo", 1]`.
bool IsNonStringJsonArray(std::string_view text) {
  text = Trim(text);
  if (text.empty() || text.front() != '[') return false;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return false;
  return std::any_of(j.begin(), j.end(), [](const auto& e) { return !e.is_string(); });
}

Result<Command> ParseCommand(const Req& r, const Flags& f) {
  const std::string& k = r.node.keyword;
  if ((k == "run" || k == "cmd" || k == "entrypoint" || k == "shell" || k == "copy" || k == "add" ||
       k == "volume") &&
      IsNonStringJsonArray(r.args)) {
    return MakeError(ErrorCode::kInvalidArgument, "{} arrays must be comprised of strings only",
                     Upper(k));
  }
  auto need_one = [&](std::string_view what) -> Result<std::string> {
    std::string_view a = Trim(r.args);
    if (a.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{} requires exactly one argument", what);
    }
    return std::string(a);
  };
  if (k == "from") return ParseFrom(r, f);
  if (k == "run") return ParseRun(r, f);
  if (k == "cmd") return CmdCommand{ParseCommandLine(r.args)};
  if (k == "entrypoint") return EntrypointCommand{ParseCommandLine(r.args)};
  if (k == "shell") {
    auto json = ParseJsonStringArray(r.args);
    if (!json) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "SHELL requires the arguments to be in JSON form");
    }
    if (json->empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "SHELL requires at least one argument");
    }
    return ShellCommand{std::move(*json)};
  }
  if (k == "label") {
    STRATA_ASSIGN_OR_RETURN(auto kv, ParseNameVal(r.args, "LABEL", r.escape));
    return LabelCommand{std::move(kv)};
  }
  if (k == "env") {
    STRATA_ASSIGN_OR_RETURN(auto kv, ParseNameVal(r.args, "ENV", r.escape));
    return EnvCommand{std::move(kv)};
  }
  if (k == "maintainer") {
    STRATA_ASSIGN_OR_RETURN(std::string m, need_one("MAINTAINER"));
    return MaintainerCommand{std::move(m)};
  }
  if (k == "expose") {
    auto ports = SplitWhitespace(r.args);
    if (ports.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "EXPOSE requires at least one argument");
    }
    return ExposeCommand{std::move(ports)};
  }
  if (k == "arg") {
    std::vector<std::string> words = SplitWordsRaw(r.args, r.escape);
    if (words.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "ARG requires at least one argument");
    }
    ArgCommand c;
    for (const std::string& w : words) {
      ArgDecl d;
      size_t eq = w.find('=');
      d.key = w.substr(0, eq);
      if (eq != std::string::npos) d.value = w.substr(eq + 1);
      if (d.key.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "ARG names can not be blank");
      }
      c.args.push_back(std::move(d));
    }
    return c;
  }
  if (k == "copy") return ParseCopy(r, f, false);
  if (k == "add") return ParseCopy(r, f, true);
  if (k == "workdir") {
    STRATA_ASSIGN_OR_RETURN(std::string p, need_one("WORKDIR"));
    return WorkdirCommand{std::move(p)};
  }
  if (k == "user") {
    STRATA_ASSIGN_OR_RETURN(std::string u, need_one("USER"));
    return UserCommand{std::move(u)};
  }
  if (k == "stopsignal") {
    STRATA_ASSIGN_OR_RETURN(std::string s, need_one("STOPSIGNAL"));
    return StopSignalCommand{std::move(s)};
  }
  if (k == "volume") {
    std::vector<std::string> vols;
    if (auto json = ParseJsonStringArray(r.args)) {
      vols = std::move(*json);
    } else {
      vols = SplitWhitespace(r.args);
    }
    if (vols.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "VOLUME requires at least one argument");
    }
    for (const std::string& v : vols) {
      if (Trim(v).empty()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "VOLUME specified can not be an empty string");
      }
    }
    return VolumeCommand{std::move(vols)};
  }
  if (k == "healthcheck") return ParseHealthcheck(r, f);
  if (k == "onbuild") {
    std::string_view expr =
        Trim(std::string_view(r.node.original).substr(r.node.keyword_original.size()));
    if (expr.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "ONBUILD requires at least one argument");
    }
    size_t ws = 0;
    while (ws < expr.size() && !IsWs(expr[ws])) ++ws;
    std::string trigger = Upper(expr.substr(0, ws));
    if (trigger == "ONBUILD") {
      return MakeError(ErrorCode::kInvalidArgument,
                       "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if (trigger == "FROM" || trigger == "MAINTAINER") {
      return MakeError(ErrorCode::kInvalidArgument, "{} isn't allowed as an ONBUILD trigger",
                       trigger);
    }
    // The trigger must itself be a valid instruction.
    auto sub = ParseAst(expr, "ONBUILD");
    if (!sub) return std::unexpected(sub.error());
    Node n = sub->nodes.front();
    n.start_line = n.end_line = r.node.start_line;
    auto parsed = ParseInstruction(n, r.escape, "ONBUILD");
    if (!parsed) {
      std::string msg = parsed.error().message();
      size_t colon = msg.find(": ");
      return MakeError(ErrorCode::kInvalidArgument, "ONBUILD {}",
                       colon == std::string::npos ? msg : msg.substr(colon + 2));
    }
    return OnbuildCommand{std::string(expr)};
  }
  return MakeError(ErrorCode::kInternal, "unhandled instruction {}", k);
}

std::span<const FlagSpec> FlagsFor(std::string_view k) {
  if (k == "from") return kFromFlags;
  if (k == "run") return kRunFlags;
  if (k == "copy") return kCopyFlags;
  if (k == "add") return kAddFlags;
  if (k == "healthcheck") return kHealthFlags;
  return kNoFlags;
}

}  // namespace

std::string_view Instruction::Name() const {
  return std::visit(
      [](const auto& c) -> std::string_view {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FromCommand>) return "FROM";
        if constexpr (std::is_same_v<T, RunCommand>) return "RUN";
        if constexpr (std::is_same_v<T, CmdCommand>) return "CMD";
        if constexpr (std::is_same_v<T, EntrypointCommand>) return "ENTRYPOINT";
        if constexpr (std::is_same_v<T, ShellCommand>) return "SHELL";
        if constexpr (std::is_same_v<T, LabelCommand>) return "LABEL";
        if constexpr (std::is_same_v<T, MaintainerCommand>) return "MAINTAINER";
        if constexpr (std::is_same_v<T, ExposeCommand>) return "EXPOSE";
        if constexpr (std::is_same_v<T, EnvCommand>) return "ENV";
        if constexpr (std::is_same_v<T, ArgCommand>) return "ARG";
        if constexpr (std::is_same_v<T, CopyCommand>) return c.add ? "ADD" : "COPY";
        if constexpr (std::is_same_v<T, WorkdirCommand>) return "WORKDIR";
        if constexpr (std::is_same_v<T, UserCommand>) return "USER";
        if constexpr (std::is_same_v<T, VolumeCommand>) return "VOLUME";
        if constexpr (std::is_same_v<T, StopSignalCommand>) return "STOPSIGNAL";
        if constexpr (std::is_same_v<T, HealthcheckCommand>) return "HEALTHCHECK";
        if constexpr (std::is_same_v<T, OnbuildCommand>) return "ONBUILD";
        return "?";
      },
      command);
}

const std::vector<std::string_view>& InstructionNames() {
  static const std::vector<std::string_view> kNames = {
      "ADD",    "ARG",   "CMD",         "COPY",  "ENTRYPOINT", "ENV",
      "EXPOSE", "FROM",  "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
      "RUN",    "SHELL", "STOPSIGNAL",  "USER",  "VOLUME",     "WORKDIR"};
  return kNames;
}

std::optional<std::vector<std::string>> ParseJsonStringArray(std::string_view text) {
  text = Trim(text);
  if (text.empty() || text.front() != '[') return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) return std::nullopt;
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<Instruction> ParseInstruction(const Node& node, char escape, std::string_view file_name) {
  auto fail = [&](const Error& e) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: {}", Where(file_name, node.start_line),
                     e.message());
  };
  const auto& names = InstructionNames();
  std::string upper = Upper(node.keyword);
  if (std::find(names.begin(), names.end(), upper) == names.end()) {
    std::string_view best;
    size_t best_d = 3;
    for (std::string_view n : names) {
      size_t d = EditDistance(upper, n);
      if (d < best_d) {
        best_d = d;
        best = n;
      }
    }
    std::string msg = fmt::format("unknown instruction: {}", node.keyword_original);
    if (!best.empty()) msg += fmt::format(" (did you mean {}?)", best);
    return fail(Error(ErrorCode::kInvalidArgument, msg));
  }
  auto flags = ParseFlags(node.flags, FlagsFor(node.keyword));
  if (!flags) return fail(flags.error());
  Req req{node, escape, node.args};
  auto cmd = ParseCommand(req, *flags);
  if (!cmd) return fail(cmd.error());
  Instruction ins;
  ins.command = std::move(*cmd);
  ins.original = node.original;
  ins.start_line = node.start_line;
  ins.end_line = node.end_line;
  return ins;
}

}  // namespace strata::builder
