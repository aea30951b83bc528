#include "builder/frontend/lint.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "builder/frontend/build_args.h"
#include "builder/frontend/instructions.h"
#include "builder/frontend/instructions_internal.h"
#include "builder/frontend/shell_lexer.h"
#include "oci/reference.h"

namespace strata::builder {
namespace {

using internal::EditDistance;
using internal::Lower;
using internal::SplitWhitespace;
using internal::Trim;

struct Rule {
  std::string_view name;
  std::string_view description;
  std::string_view url_slug;
  bool experimental = false;
};

// BuildKit's rules that need no network, with its descriptions.
constexpr Rule kRules[] = {
    {"StageNameCasing", "Stage names should be lowercase", "stage-name-casing"},
    {"FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword",
     "from-as-casing"},
    {"ConsistentInstructionCasing",
     "All commands within the Dockerfile should use the same casing (either upper or lower)",
     "consistent-instruction-casing"},
    {"DuplicateStageName", "Stage names should be unique", "duplicate-stage-name"},
    {"ReservedStageName", "Reserved words should not be used as stage names",
     "reserved-stage-name"},
    {"JSONArgsRecommended",
     "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS "
     "signals",
     "json-args-recommended"},
    {"MaintainerDeprecated",
     "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
     "maintainer-deprecated"},
    {"UndefinedArgInFrom", "FROM command must use declared ARGs", "undefined-arg-in-from"},
    {"WorkdirRelativePath",
     "Relative workdir without an absolute workdir declared within the build can have unexpected "
     "results if the base image changes",
     "workdir-relative-path"},
    {"UndefinedVar", "Variables should be defined before their use", "undefined-var"},
    {"MultipleInstructionsDisallowed",
     "Multiple instructions of the same type should not be used in the same stage",
     "multiple-instructions-disallowed"},
    {"LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used",
     "legacy-key-value-format"},
    {"RedundantTargetPlatform",
     "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default "
     "behavior",
     "redundant-target-platform"},
    {"SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands",
     "secrets-used-in-arg-or-env"},
    {"InvalidDefaultArgInFrom",
     "Default value for global ARG results in an empty or invalid base image name",
     "invalid-default-arg-in-from"},
    {"FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value",
     "from-platform-flag-const-disallowed"},
    {"CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore",
     "copy-ignored-file", /*experimental=*/true},
};

const Rule* FindRule(std::string_view name) {
  for (const Rule& r : kRules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

bool IsUpper(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return std::islower(c); });
}
bool IsLower(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return std::isupper(c); });
}

// The closest of `names` to `word` (case-insensitive match first, then an
// edit distance of at most 2), or "".
std::string Suggest(std::string_view word, const std::set<std::string, std::less<>>& names) {
  std::string best;
  size_t best_d = 3;
  for (const auto& n : names) {
    if (Lower(n) == Lower(word)) return n;
    size_t d = EditDistance(word, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best;
}

// ARG/ENV names that look like secrets: an `_`-separated token that is a
// secret word, unless one is "public".
bool LooksSecret(std::string_view key) {
  static const std::set<std::string_view> kDeny = {
      "apikey",   "auth",  "credential", "credentials", "key",
      "password", "pword", "passwd",     "secret",      "token"};
  bool deny = false;
  for (std::string_view tok : internal::Split(key, '_')) {
    std::string t = Lower(tok);
    if (t == "public") return false;
    if (kDeny.contains(t)) deny = true;
  }
  return deny;
}

class Linter {
 public:
  Linter(const AstFile& ast, const CheckOptions& options, const LintInputs& in)
      : ast_(ast), opts_(options), in_(in) {}

  std::vector<CheckWarning> Run() {
    CheckCasing();
    const char escape = ast_.directives.escape;
    LexOptions lo;
    lo.escape = escape;
    lo.skip_unset_env = true;
    ShellLexer lexer(lo);
    // Global ARGs (before the first FROM): what FROM may use.
    std::map<std::string, std::optional<std::string>> meta;
    size_t i = 0;
    for (; i < ast_.nodes.size() && ast_.nodes[i].keyword != "from"; ++i) {
      auto ins = ParseInstruction(ast_.nodes[i], escape, in_.file_name);
      if (!ins) continue;
      if (auto* a = std::get_if<ArgCommand>(&ins->command)) {
        for (const auto& d : a->args) {
          meta[d.key] = d.value;
          if (LooksSecret(d.key)) SecretWarning("ARG", d.key, *ins);
        }
      }
    }
    struct StageInfo {
      std::string name;
      std::set<std::string, std::less<>> env;  // ENV names in effect at its end
      bool env_known = true;
      bool abs_workdir = false;
      bool shell_set = false;
    };
    std::vector<StageInfo> stages;
    std::set<std::string, std::less<>> seen_names;
    for (; i < ast_.nodes.size(); ++i) {
      const Node& node = ast_.nodes[i];
      auto ins = ParseInstruction(node, escape, in_.file_name);
      if (!ins) continue;
      if (auto* from = std::get_if<FromCommand>(&ins->command)) {
        FlushStage();
        StageInfo st;
        CheckFrom(node, *from, *ins, meta, lexer, seen_names);
        st.name = from->stage_name;
        // The base: an earlier stage (inherits its ENV), scratch, or an image.
        std::string image = from->image;
        auto base = std::find_if(stages.begin(), stages.end(), [&](const StageInfo& s) {
          return !s.name.empty() && s.name == Lower(image);
        });
        if (base != stages.end()) {
          st.env = base->env;
          st.env_known = base->env_known;
          st.abs_workdir = base->abs_workdir;
          st.shell_set = base->shell_set;
        } else if (Lower(image) == "scratch") {
          st.env = {"PATH"};
        } else if (image.find('$') != std::string::npos || !in_.image_env) {
          st.env_known = false;
        } else if (auto env = in_.image_env(image)) {
          for (const auto& e : *env) st.env.insert(e.substr(0, e.find('=')));
        } else {
          st.env_known = false;
        }
        stages.push_back(std::move(st));
        continue;
      }
      if (stages.empty()) continue;
      StageInfo& st = stages.back();
      CheckInstruction(node, *ins, st.shell_set, st.abs_workdir);
      if (st.env_known) CheckUndefined(*ins, lexer, st.env);
      if (auto* e = std::get_if<EnvCommand>(&ins->command)) {
        for (const auto& kv : e->env) {
          st.env.insert(kv.key);
          if (LooksSecret(kv.key)) SecretWarning("ENV", kv.key, *ins);
        }
      } else if (auto* a = std::get_if<ArgCommand>(&ins->command)) {
        for (const auto& d : a->args) {
          st.env.insert(d.key);
          if (LooksSecret(d.key)) SecretWarning("ARG", d.key, *ins);
        }
      }
    }
    FlushStage();
    std::stable_sort(out_.begin(), out_.end(), [](const CheckWarning& a, const CheckWarning& b) {
      return a.start_line < b.start_line;
    });
    return out_;
  }

 private:
  bool Enabled(std::string_view name) const {
    const Rule* r = FindRule(name);
    if (r == nullptr || opts_.skip_all || opts_.skip.contains(name)) return false;
    if (r->experimental) return opts_.experimental_all || opts_.experimental.contains(name);
    return true;
  }

  void Warn(std::string_view name, std::string detail, int start, int end) {
    if (!Enabled(name)) return;
    const Rule* r = FindRule(name);
    out_.push_back({std::string(r->name), std::string(r->description),
                    fmt::format("https://docs.docker.com/go/dockerfile/rule/{}/", r->url_slug),
                    std::move(detail), start, end});
  }
  void Warn(std::string_view name, std::string detail, const Instruction& ins) {
    Warn(name, std::move(detail), ins.start_line, ins.end_line);
  }

  void SecretWarning(std::string_view what, const std::string& key, const Instruction& ins) {
    Warn(
        "SecretsUsedInArgOrEnv",
        fmt::format("Do not use ARG or ENV instructions for sensitive data ({} \"{}\")", what, key),
        ins);
  }

  // ConsistentInstructionCasing: every keyword in the majority's casing.
  void CheckCasing() {
    int upper = 0, lower = 0;
    for (const Node& n : ast_.nodes) {
      if (IsUpper(n.keyword_original)) ++upper;
      if (IsLower(n.keyword_original)) ++lower;
    }
    const bool want_lower = lower > upper;
    for (const Node& n : ast_.nodes) {
      bool ok = want_lower ? IsLower(n.keyword_original) : IsUpper(n.keyword_original);
      if (!ok) {
        Warn("ConsistentInstructionCasing",
             fmt::format("Command '{}' should match the case of the command majority ({})",
                         n.keyword_original, want_lower ? "lowercase" : "uppercase"),
             n.start_line, n.end_line);
      }
    }
  }

  void CheckFrom(const Node& node, const FromCommand& from, const Instruction& ins,
                 const std::map<std::string, std::optional<std::string>>& meta,
                 const ShellLexer& lexer, std::set<std::string, std::less<>>& seen_names) {
    // The AS word and the name as written (FromCommand keeps them lowercased).
    std::vector<std::string> words = SplitWhitespace(node.args);
    if (words.size() >= 3 && Lower(words[1]) == "as") {
      const std::string& as = words[1];
      const std::string& name = words[2];
      if ((IsUpper(node.keyword_original) && !IsUpper(as)) ||
          (IsLower(node.keyword_original) && !IsLower(as))) {
        Warn("FromAsCasing",
             fmt::format("'{}' and '{}' keywords' casing do not match", as, node.keyword_original),
             ins);
      }
      if (!IsLower(name)) {
        Warn("StageNameCasing", fmt::format("Stage name '{}' should be lowercase", name), ins);
      }
      std::string lname = Lower(name);
      if (lname == "scratch" || lname == "context") {
        Warn("ReservedStageName",
             fmt::format("Stage name should not use the same name as reserved stage \"{}\"", lname),
             ins);
      }
      if (!seen_names.insert(lname).second) {
        Warn("DuplicateStageName",
             fmt::format("Duplicate stage name \"{}\", stage names should be unique", lname), ins);
      }
    }
    // FROM may use global ARGs and the predefined platform ARGs.
    std::set<std::string, std::less<>> known;
    for (const auto& [k, v] : meta) known.insert(k);
    EnvGetter declared = [&](std::string_view n) -> std::optional<std::string> {
      if (meta.contains(std::string(n)) || IsPredefinedArg(n)) return std::string("x");
      return std::nullopt;
    };
    std::string raw_image = words.empty() ? "" : words[0];
    std::string raw_platform;
    for (const auto& f : node.flags) {
      if (f.starts_with("--platform=")) raw_platform = f.substr(11);
    }
    for (const std::string& word : {raw_image, raw_platform}) {
      if (word.empty()) continue;
      auto e = lexer.Process(word, declared);
      if (!e) continue;
      for (const auto& name : e->unmatched) {
        std::string s = Suggest(name, known);
        Warn("UndefinedArgInFrom",
             fmt::format("FROM argument '{}' is not declared{}", name,
                         s.empty() ? "" : fmt::format(" (did you mean {}?)", s)),
             ins);
      }
    }
    if (!raw_platform.empty()) {
      if (raw_platform == "$TARGETPLATFORM" || raw_platform == "${TARGETPLATFORM}") {
        Warn("RedundantTargetPlatform",
             fmt::format("Setting platform to predefined {} in FROM is redundant as this is the "
                         "default behavior",
                         raw_platform),
             ins);
      } else if (raw_platform.find('$') == std::string::npos) {
        Warn(
            "FromPlatformFlagConstDisallowed",
            fmt::format("FROM --platform flag should not use constant value \"{}\"", from.platform),
            ins);
      }
    }
    // The base name with only the global ARGs' defaults.
    if (raw_image.find('$') != std::string::npos) {
      // The predefined platform ARGs always have a value (this host's
      // stands for any): `FROM img:${TARGETARCH}` is valid.
      const std::vector<KeyValue> predefined =
          PredefinedArgs(BuildPlatform::Host(), BuildPlatform::Host());
      EnvGetter defaults = [&](std::string_view n) -> std::optional<std::string> {
        auto it = meta.find(std::string(n));
        if (it == meta.end() || !it->second) {
          for (const auto& kv : predefined) {
            if (kv.key == n) return kv.value;
          }
          return std::nullopt;
        }
        return *it->second;
      };
      LexOptions strict;
      strict.escape = ast_.directives.escape;
      auto e = ShellLexer(strict).Process(raw_image, defaults);
      bool invalid =
          !e || e->word.empty() || (Lower(e->word) != "scratch" && !oci::Reference::Parse(e->word));
      if (invalid) {
        Warn("InvalidDefaultArgInFrom",
             fmt::format("Default value for ARG {} results in empty or invalid base image name",
                         raw_image),
             ins);
      }
    }
  }

  void CheckInstruction(const Node& node, const Instruction& ins, bool& shell_set,
                        bool& abs_workdir) {
    std::visit(
        [&](const auto& c) {
          using T = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<T, CmdCommand> || std::is_same_v<T, EntrypointCommand>) {
            const char* name = std::is_same_v<T, CmdCommand> ? "CMD" : "ENTRYPOINT";
            if (!c.cmd.exec_form && !shell_set) {
              Warn("JSONArgsRecommended",
                   fmt::format("JSON arguments recommended for {} to prevent unintended behavior "
                               "related to OS signals",
                               name),
                   ins);
            }
            stage_counts_[name].push_back({ins.start_line, ins.end_line});
          } else if constexpr (std::is_same_v<T, HealthcheckCommand>) {
            stage_counts_["HEALTHCHECK"].push_back({ins.start_line, ins.end_line});
          } else if constexpr (std::is_same_v<T, ShellCommand>) {
            shell_set = true;
          } else if constexpr (std::is_same_v<T, MaintainerCommand>) {
            Warn("MaintainerDeprecated",
                 "Maintainer instruction is deprecated in favor of using label", ins);
          } else if constexpr (std::is_same_v<T, WorkdirCommand>) {
            if (c.path.starts_with("/") || c.path.starts_with("$")) {
              abs_workdir = true;
            } else if (!abs_workdir) {
              Warn("WorkdirRelativePath",
                   fmt::format("Relative workdir \"{}\" can have unexpected results if the base "
                               "image changes",
                               c.path),
                   ins);
            }
          } else if constexpr (std::is_same_v<T, EnvCommand> || std::is_same_v<T, LabelCommand>) {
            std::string_view args = Trim(node.args);
            std::string_view first = args.substr(0, args.find_first_of(" \t"));
            if (!args.empty() && first.find('=') == std::string_view::npos) {
              std::string name = std::is_same_v<T, EnvCommand> ? "ENV" : "LABEL";
              Warn("LegacyKeyValueFormat",
                   fmt::format("\"{0} key=value\" should be used instead of legacy \"{0} key "
                               "value\" format",
                               name),
                   ins);
            }
          } else if constexpr (std::is_same_v<T, CopyCommand>) {
            if (in_.ignore == nullptr || !c.from.empty()) return;
            for (const auto& src : c.sources) {
              if (src.find("://") != std::string::npos) continue;
              std::string rel = CleanPath(src);
              while (rel.starts_with("/")) rel.erase(0, 1);
              if (!rel.empty() && rel != "." && in_.ignore->Matches(rel)) {
                Warn("CopyIgnoredFile",
                     fmt::format("Attempting to {} file \"{}\" that is excluded by .dockerignore",
                                 c.add ? "Add" : "Copy", src),
                     ins);
              }
            }
          }
        },
        ins.command);
  }

  // UndefinedVar: words the frontend expands that name nothing declared.
  void CheckUndefined(const Instruction& raw, const ShellLexer& lexer,
                      const std::set<std::string, std::less<>>& env) {
    EnvGetter get = [&](std::string_view n) -> std::optional<std::string> {
      if (env.contains(n)) return std::string("x");
      return std::nullopt;
    };
    std::set<std::string> unresolved;
    if (!ExpandInstruction(raw, lexer, get, in_.file_name, &unresolved)) return;
    for (const auto& name : unresolved) {
      std::string s = Suggest(name, env);
      Warn("UndefinedVar",
           fmt::format("Usage of undefined variable '${}'{}", name,
                       s.empty() ? "" : fmt::format(" (did you mean ${}?)", s)),
           raw);
    }
  }

  // MultipleInstructionsDisallowed: every CMD/ENTRYPOINT/HEALTHCHECK of a
  // stage but its last. Called at the end of each stage.
  void FlushStage() {
    for (const auto& [name, lines] : stage_counts_) {
      for (size_t k = 0; k + 1 < lines.size(); ++k) {
        Warn("MultipleInstructionsDisallowed",
             fmt::format("Multiple {} instructions should not be used in the same stage because "
                         "only the last one will be used",
                         name),
             lines[k].first, lines[k].second);
      }
    }
    stage_counts_.clear();
  }

  const AstFile& ast_;
  const CheckOptions& opts_;
  const LintInputs& in_;
  std::vector<CheckWarning> out_;
  // CMD/ENTRYPOINT/HEALTHCHECK lines of the current stage.
  std::map<std::string, std::vector<std::pair<int, int>>> stage_counts_;
};

}  // namespace

Result<CheckOptions> ParseCheckOptions(std::string_view value) {
  CheckOptions o;
  for (std::string_view part : internal::Split(value, ';')) {
    part = Trim(part);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = Lower(Trim(part.substr(0, eq)));
    std::string_view v = eq == std::string_view::npos ? "" : Trim(part.substr(eq + 1));
    if (key == "skip" || key == "experimental") {
      for (std::string_view name : internal::Split(v, ',')) {
        name = Trim(name);
        if (name.empty()) continue;
        if (Lower(name) == "all") {
          (key == "skip" ? o.skip_all : o.experimental_all) = true;
        } else {
          (key == "skip" ? o.skip : o.experimental).insert(std::string(name));
        }
      }
    } else if (key == "error") {
      std::string b = Lower(v);
      if (b != "true" && b != "false") {
        return MakeError(ErrorCode::kInvalidArgument, "check: error={}: want true or false", v);
      }
      o.error = b == "true";
    } else {
      return MakeError(ErrorCode::kInvalidArgument,
                       "check: unknown option \"{}\" (want skip=, experimental= or error=)", key);
    }
  }
  return o;
}

std::vector<CheckWarning> RunChecks(const AstFile& ast, const CheckOptions& options,
                                    const LintInputs& inputs) {
  if (options.skip_all) return {};
  return Linter(ast, options, inputs).Run();
}

std::string FormatCheckLine(const CheckWarning& w) {
  std::string s = fmt::format(" - {}: {}", w.rule, w.detail);
  if (w.start_line > 0) s += fmt::format(" (line {})", w.start_line);
  return s;
}

std::string CheckErrorMessage(const std::vector<CheckWarning>& warnings) {
  std::set<std::string> rules;
  for (const auto& w : warnings) rules.insert(w.rule);
  std::string list;
  for (const auto& r : rules) list += (list.empty() ? "" : ", ") + r;
  return fmt::format("lint violation found for rules: {}", list);
}

std::string FormatCheckReport(const std::vector<CheckWarning>& warnings, std::string_view file_name,
                              std::string_view source) {
  if (warnings.empty()) return "Check complete, no warnings found.\n";
  std::string out =
      warnings.size() == 1
          ? "Check complete, 1 warning has been found!\n"
          : fmt::format("Check complete, {} warnings have been found!\n", warnings.size());
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= source.size();) {
    size_t nl = source.find('\n', pos);
    if (nl == std::string_view::npos) nl = source.size();
    std::string_view l = source.substr(pos, nl - pos);
    if (l.ends_with('\r')) l.remove_suffix(1);
    lines.push_back(l);
    pos = nl + 1;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  for (const auto& w : warnings) {
    out += fmt::format("\nWARNING: {} - {}\n{}\n", w.rule, w.url, w.detail);
    if (w.start_line <= 0) continue;
    out += fmt::format("{}:{}\n--------------------\n", file_name, w.start_line);
    int end = std::max(w.start_line, w.end_line);
    int first = std::max(1, w.start_line - 2);
    int last = std::min(static_cast<int>(lines.size()), end + 2);
    for (int n = first; n <= last; ++n) {
      bool in = n >= w.start_line && n <= end;
      out += fmt::format(" {:>3} | {}{}\n", n, in ? ">>> " : "    ",
                         lines[static_cast<size_t>(n - 1)]);
    }
    out += "--------------------\n";
  }
  return out;
}

}  // namespace strata::builder
