#include "builder/frontend/instructions.h"

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
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

// Splits at runs of whitespace, no quote handling (BuildKit's
// parseStringsWhitespaceDelimited).
std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsWs(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !IsWs(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

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

// ---- expansion ------------------------------------------------------------

struct Expander {
  const ShellLexer& lexer;
  const EnvGetter& env;
  std::set<std::string>* unresolved;
  Status Word(std::string& w) const {
    STRATA_ASSIGN_OR_RETURN(Expansion e, lexer.Process(w, env));
    if (unresolved) unresolved->insert(e.unmatched.begin(), e.unmatched.end());
    w = std::move(e.word);
    return OkStatus();
  }
  Status Words(std::vector<std::string>& ws) const {
    for (std::string& w : ws) STRATA_RETURN_IF_ERROR(Word(w));
    return OkStatus();
  }
};

Status ExpandCommand(Command& cmd, const Expander& x, const ShellLexer& lexer) {
  return std::visit(
      [&](auto& c) -> Status {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FromCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.image));
          STRATA_RETURN_IF_ERROR(x.Word(c.platform));
        } else if constexpr (std::is_same_v<T, RunCommand>) {
          c.mounts.clear();
          for (std::string& m : c.mount_flags) {
            STRATA_RETURN_IF_ERROR(x.Word(m));
            STRATA_ASSIGN_OR_RETURN(MountSpec spec, ParseMount(m));
            c.mounts.push_back(std::move(spec));
          }
        } else if constexpr (std::is_same_v<T, LabelCommand> || std::is_same_v<T, EnvCommand>) {
          auto& kvs = [&]() -> std::vector<KeyValue>& {
            if constexpr (std::is_same_v<T, LabelCommand>) {
              return c.labels;
            } else {
              return c.env;
            }
          }();
          for (KeyValue& kv : kvs) {
            STRATA_RETURN_IF_ERROR(x.Word(kv.key));
            STRATA_RETURN_IF_ERROR(x.Word(kv.value));
          }
        } else if constexpr (std::is_same_v<T, ArgCommand>) {
          for (ArgDecl& a : c.args) {
            STRATA_RETURN_IF_ERROR(x.Word(a.key));
            if (a.value) STRATA_RETURN_IF_ERROR(x.Word(*a.value));
          }
        } else if constexpr (std::is_same_v<T, ExposeCommand>) {
          std::vector<std::string> out;
          for (const std::string& p : c.ports) {
            STRATA_ASSIGN_OR_RETURN(Expansion e, x.lexer.Process(p, x.env));
            if (x.unresolved) x.unresolved->insert(e.unmatched.begin(), e.unmatched.end());
            out.insert(out.end(), e.words.begin(), e.words.end());
          }
          c.ports = std::move(out);
          // Every port must be valid after expansion (a bad one fails the
          // instruction; it is never dropped along with the good ones).
          STRATA_RETURN_IF_ERROR(NormalizeExposedPorts(c.ports));
        } else if constexpr (std::is_same_v<T, CopyCommand>) {
          STRATA_RETURN_IF_ERROR(x.Words(c.sources));
          STRATA_RETURN_IF_ERROR(x.Word(c.dest));
          STRATA_RETURN_IF_ERROR(x.Word(c.from));
          STRATA_RETURN_IF_ERROR(x.Word(c.chown));
          STRATA_RETURN_IF_ERROR(x.Word(c.chmod));
          STRATA_RETURN_IF_ERROR(x.Words(c.excludes));
          LexOptions body = lexer.options();
          body.skip_process_quotes = true;
          body.raw_escapes = true;
          ShellLexer body_lexer(body);
          for (Heredoc& h : c.source_contents) {
            if (!h.expand) continue;
            STRATA_ASSIGN_OR_RETURN(Expansion e, body_lexer.Process(h.content, x.env));
            if (x.unresolved) x.unresolved->insert(e.unmatched.begin(), e.unmatched.end());
            h.content = std::move(e.word);
          }
        } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.path));
        } else if constexpr (std::is_same_v<T, UserCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.user));
        } else if constexpr (std::is_same_v<T, StopSignalCommand>) {
          STRATA_RETURN_IF_ERROR(x.Word(c.signal));
          STRATA_RETURN_IF_ERROR(ValidateStopSignal(c.signal));
        } else if constexpr (std::is_same_v<T, VolumeCommand>) {
          STRATA_RETURN_IF_ERROR(x.Words(c.volumes));
          for (const std::string& v : c.volumes) {
            if (Trim(v).empty()) {
              return MakeError(ErrorCode::kInvalidArgument,
                               "VOLUME specified can not be an empty string");
            }
          }
        }
        // RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/MAINTAINER/ONBUILD: not expanded.
        return OkStatus();
      },
      cmd);
}

// Go's time.Duration.String() for whole milliseconds and up ("1m30s", "500ms").
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

Result<Instruction> ExpandInstruction(const Instruction& raw, const ShellLexer& lexer,
                                      const EnvGetter& env, std::string_view file_name,
                                      std::set<std::string>* unresolved) {
  Instruction out = raw;
  Expander x{lexer, env, unresolved};
  Status s = ExpandCommand(out.command, x, lexer);
  if (!s) {
    return MakeError(s.error().code(), "{}: {}", Where(file_name, raw.start_line),
                     s.error().message());
  }
  return out;
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
