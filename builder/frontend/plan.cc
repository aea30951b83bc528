#include "builder/frontend/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "builder/frontend/build_args.h"
#include "builder/frontend/dockerignore.h"
#include "oci/util/strings.h"

namespace strata::builder {
namespace {

void SetEnv(std::vector<KeyValue>& env, const KeyValue& kv) {
  for (KeyValue& e : env) {
    if (e.key == kv.key) {
      e.value = kv.value;
      return;
    }
  }
  env.push_back(kv);
}

nlohmann::json KeyValuesJson(const std::vector<KeyValue>& kvs) {
  nlohmann::json arr = nlohmann::json::array();
  for (const KeyValue& kv : kvs) arr.push_back({{"key", kv.key}, {"value", kv.value}});
  return arr;
}

// Per-stage bookkeeping while planning.
struct StageWork {
  std::vector<Instruction> raw;  // after FROM
  std::vector<std::string> shell = {"/bin/sh", "-c"};
  bool env_known = false;  // stage starts from scratch (transitively): no hidden ENV
  // The WORKDIR in effect when known (scratch starts at "/"; an image's is
  // only known at build time): a relative WORKDIR is shown resolved.
  std::optional<std::string> workdir;
  std::optional<Error> error;  // an expansion error, raised only if the stage is needed
  std::vector<StageEdge> deps;
};

}  // namespace

Result<Plan> ParseDockerfile(std::string_view text, const ParseOptions& opt) {
  const std::string& file = opt.file_name;
  STRATA_ASSIGN_OR_RETURN(AstFile ast, ParseAst(text, file));
  Plan plan;
  plan.file_name = file;
  plan.directives = ast.directives;
  plan.target_platform = opt.target_platform;
  plan.build_platform = opt.build_platform;
  plan.warnings = ast.warnings;

  const char escape = ast.directives.escape;
  LexOptions strict_opt;
  strict_opt.escape = escape;
  LexOptions static_opt = strict_opt;
  static_opt.skip_unset_env = true;
  const ShellLexer strict(strict_opt);
  const ShellLexer lenient(static_opt);
  const std::vector<KeyValue> predefined = PredefinedArgs(opt.target_platform, opt.build_platform);
  std::set<std::string> consumed;  // build args that some ARG declared

  auto where = [&](int line) { return Where(file, line); };

  // Typed instructions, split into the global (meta) part and stages.
  std::vector<Instruction> all;
  for (const Node& n : ast.nodes) {
    STRATA_ASSIGN_OR_RETURN(Instruction ins, ParseInstruction(n, escape, file));
    all.push_back(std::move(ins));
  }

  const std::vector<KeyValue> no_env;
  ArgScope meta;
  size_t i = 0;
  for (; i < all.size() && !std::holds_alternative<FromCommand>(all[i].command); ++i) {
    const auto* arg = std::get_if<ArgCommand>(&all[i].command);
    if (!arg) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: no build stage in current context",
                       where(all[i].start_line));
    }
    for (const ArgDecl& d : arg->args) {
      std::vector<KeyValue> visible = meta.Values();
      visible.insert(visible.end(), predefined.begin(), predefined.end());
      EnvGetter get = DispatchEnv(no_env, visible);
      auto key = strict.ProcessWord(d.key, get);
      if (!key) {
        return MakeError(ErrorCode::kInvalidArgument, "{}: {}", where(all[i].start_line),
                         key.error().message());
      }
      std::optional<std::string> value;
      if (auto it = opt.build_args.find(*key); it != opt.build_args.end()) {
        value = it->second;
        consumed.insert(*key);
      } else if (d.value) {
        auto v = strict.ProcessWord(*d.value, get);
        if (!v) {
          return MakeError(ErrorCode::kInvalidArgument, "{}: {}", where(all[i].start_line),
                           v.error().message());
        }
        value = *v;
      }
      meta.Declare(*key, value);
    }
  }
  if (i == all.size()) {
    // Only global ARGs: BuildKit's words, which scripts look for.
    int line = all.empty() ? 1 : all.back().start_line;
    return MakeError(ErrorCode::kInvalidArgument, "{}: dockerfile contains no stages to build",
                     where(line));
  }
  plan.meta_args = meta.Values();
  plan.global_args = meta.All();
  for (const auto& [k, v] : opt.build_args) {
    if (IsProxyArg(k)) plan.proxy_args.push_back({k, v});
  }

  // Split into stages and collect every stage name first: --from may point forward.
  std::vector<StageWork> work;
  std::vector<std::string> names;
  for (; i < all.size(); ++i) {
    if (std::holds_alternative<FromCommand>(all[i].command)) {
      Stage st;
      st.index = static_cast<int>(plan.stages.size());
      st.from = all[i];
      st.name = std::get<FromCommand>(all[i].command).stage_name;
      if (!st.name.empty() && std::find(names.begin(), names.end(), st.name) != names.end()) {
        return MakeError(ErrorCode::kInvalidArgument, "{}: duplicate stage name \"{}\"",
                         where(all[i].start_line), st.name);
      }
      names.push_back(st.name);
      plan.stages.push_back(std::move(st));
      work.emplace_back();
    } else {
      work.back().raw.push_back(all[i]);
    }
  }

  std::vector<KeyValue> meta_visible = plan.meta_args;
  meta_visible.insert(meta_visible.end(), predefined.begin(), predefined.end());
  const EnvGetter meta_get = DispatchEnv(no_env, meta_visible);

  for (size_t s = 0; s < plan.stages.size(); ++s) {
    Stage& st = plan.stages[s];
    StageWork& w = work[s];
    STRATA_ASSIGN_OR_RETURN(Instruction from, ExpandInstruction(st.from, strict, meta_get, file));
    const auto& fc = std::get<FromCommand>(from.command);
    if (fc.image.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: base name ({}) should not be blank",
                       where(st.from.start_line), std::get<FromCommand>(st.from.command).image);
    }
    st.platform = fc.platform;
    if (!st.platform.empty()) {
      auto p = BuildPlatform::Parse(st.platform);
      if (!p) {
        return MakeError(ErrorCode::kInvalidArgument, "{}: {}", where(st.from.start_line),
                         p.error().message());
      }
    }
    // FROM names a stage only if it was defined earlier; otherwise it is an image.
    std::vector<std::string> earlier(names.begin(), names.begin() + static_cast<long>(s));
    if (Lower(fc.image) == "scratch") {
      st.base.kind = StageBase::Kind::kScratch;
      w.env_known = true;
      // BuildKit's empty image has the default PATH and WorkingDir "/".
      st.env.push_back({"PATH", std::string(kDefaultImagePath)});
      w.workdir.emplace(1, '/');  // not = "/": GCC 12 -Wrestrict false positive (bug 105651)
    } else if (auto b = StageGraph::Resolve(earlier, fc.image);
               b && Lower(fc.image) == names[static_cast<size_t>(*b)]) {
      st.base.kind = StageBase::Kind::kStage;
      st.base.stage = *b;
      st.env = plan.stages[static_cast<size_t>(*b)].env;
      w.shell = work[static_cast<size_t>(*b)].shell;
      w.env_known = work[static_cast<size_t>(*b)].env_known;
      w.workdir = work[static_cast<size_t>(*b)].workdir;
      w.deps.push_back({*b, st.from.start_line});
    } else {
      st.base.kind = StageBase::Kind::kImage;
      st.base.image = fc.image;
    }

    ArgScope args;
    const ShellLexer& lexer = w.env_known ? strict : lenient;
    for (const Instruction& raw : w.raw) {
      std::vector<KeyValue> values = args.Values();
      EnvGetter get = DispatchEnv(st.env, values);
      std::set<std::string> unresolved;
      auto expanded = ExpandInstruction(raw, lexer, get, file, w.env_known ? nullptr : &unresolved);
      if (!expanded) {
        w.error = expanded.error();
        break;
      }
      PlanInstruction pi;
      pi.raw = raw;
      pi.args = values;
      pi.unresolved.assign(unresolved.begin(), unresolved.end());
      if (auto* env = std::get_if<EnvCommand>(&expanded->command)) {
        for (const KeyValue& kv : env->env) SetEnv(st.env, kv);
      } else if (auto* arg = std::get_if<ArgCommand>(&expanded->command)) {
        for (const ArgDecl& d : arg->args) {
          std::optional<std::string> value = d.value;
          if (auto it = opt.build_args.find(d.key); it != opt.build_args.end()) {
            value = it->second;
            consumed.insert(d.key);
          } else if (!value) {
            value = meta.Get(d.key);
            if (!value) {
              for (const KeyValue& p : predefined) {
                if (p.key == d.key) value = p.value;
              }
            }
          }
          args.Declare(d.key, value);
        }
      } else if (auto* sh = std::get_if<ShellCommand>(&expanded->command)) {
        w.shell = sh->shell;
      } else if (auto* wd = std::get_if<WorkdirCommand>(&expanded->command)) {
        if (wd->path.starts_with("/")) {
          w.workdir = CleanPath(wd->path);
        } else if (w.workdir) {
          wd->path = CleanPath(*w.workdir + "/" + wd->path);
          w.workdir = wd->path;
        }
      } else if (auto* cp = std::get_if<CopyCommand>(&expanded->command)) {
        if (!cp->from.empty()) {
          if (auto dep = StageGraph::Resolve(names, cp->from))
            w.deps.push_back({*dep, raw.start_line});
        }
      } else if (auto* run = std::get_if<RunCommand>(&expanded->command)) {
        for (const MountSpec& m : run->mounts) {
          if (m.from.empty()) continue;
          if (auto dep = StageGraph::Resolve(names, m.from))
            w.deps.push_back({*dep, raw.start_line});
        }
      }
      pi.created_by = CreatedBy(*expanded, w.shell, values);
      pi.expanded = std::move(*expanded);
      st.instructions.push_back(std::move(pi));
    }
  }

  std::vector<StageNode> nodes;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    nodes.push_back({names[s], plan.stages[s].from.start_line, work[s].deps});
  }
  STRATA_ASSIGN_OR_RETURN(StageGraph graph, StageGraph::Build(std::move(nodes), file));
  if (opt.target.empty()) {
    plan.target = static_cast<int>(plan.stages.size()) - 1;
  } else {
    auto t = graph.ResolveTarget(opt.target);
    if (!t) return MakeError(t.error().code(), "{}: {}", file, t.error().message());
    plan.target = *t;
  }
  plan.build_order = graph.StagesNeededFor(plan.target);
  plan.parallel_waves = graph.ParallelWaves(plan.target);
  for (int s : plan.build_order) {
    plan.stages[static_cast<size_t>(s)].needed = true;
    if (work[static_cast<size_t>(s)].error)
      return std::unexpected(*work[static_cast<size_t>(s)].error);
  }
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    plan.stages[s].depends_on = graph.Dependencies(static_cast<int>(s));
  }

  std::vector<std::string> unused;
  for (const auto& [k, v] : opt.build_args) {
    if (!consumed.contains(k) && !IsProxyArg(k) && !IsPredefinedArg(k) &&
        k != "BUILDKIT_DOCKERFILE_CHECK" && k != "BUILDKIT_CONTEXT_KEEP_GIT_DIR") {
      unused.push_back(k);
    }
  }
  if (!unused.empty()) {
    std::string list;
    for (const std::string& u : unused) list += (list.empty() ? "" : " ") + u;
    plan.warnings.push_back(
        {0, fmt::format("One or more build-args [{}] were not consumed", list)});
  }
  return plan;
}

Result<nlohmann::json> ParseDockerfileToJson(std::string_view text, const ParseOptions& options) {
  STRATA_ASSIGN_OR_RETURN(Plan plan, ParseDockerfile(text, options));
  return plan.ToJson();
}

nlohmann::json Plan::ToJson() const {
  nlohmann::json j;
  j["file"] = file_name;
  nlohmann::json d = {{"escape", std::string(1, directives.escape)}};
  if (!directives.syntax.empty()) d["syntax"] = directives.syntax;
  if (!directives.check.empty()) d["check"] = directives.check;
  j["directives"] = std::move(d);
  j["target_platform"] = target_platform.ToString();
  j["build_platform"] = build_platform.ToString();
  j["meta_args"] = KeyValuesJson(meta_args);
  nlohmann::json globals = nlohmann::json::array();
  for (const auto& [k, v] : global_args) {
    globals.push_back({{"key", k}, {"value", v ? nlohmann::json(*v) : nlohmann::json(nullptr)}});
  }
  j["global_args"] = std::move(globals);
  if (!proxy_args.empty()) j["proxy_args"] = KeyValuesJson(proxy_args);
  j["target"] = target;
  j["build_order"] = build_order;
  j["parallel_waves"] = parallel_waves;
  nlohmann::json warn = nlohmann::json::array();
  for (const ParseWarning& w : warnings) warn.push_back({{"line", w.line}, {"message", w.message}});
  j["warnings"] = std::move(warn);
  nlohmann::json stages_json = nlohmann::json::array();
  for (const Stage& st : stages) {
    nlohmann::json sj;
    sj["index"] = st.index;
    sj["name"] = st.name.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.name);
    sj["line"] = st.from.start_line;
    switch (st.base.kind) {
      case StageBase::Kind::kImage:
        sj["base"] = {{"kind", "image"}, {"image", st.base.image}};
        break;
      case StageBase::Kind::kStage:
        sj["base"] = {{"kind", "stage"}, {"stage", st.base.stage}};
        break;
      case StageBase::Kind::kScratch:
        sj["base"] = {{"kind", "scratch"}};
        break;
    }
    if (!st.platform.empty()) sj["platform"] = st.platform;
    sj["depends_on"] = st.depends_on;
    sj["needed"] = st.needed;
    sj["env"] = KeyValuesJson(st.env);
    nlohmann::json ins = nlohmann::json::array();
    for (const PlanInstruction& pi : st.instructions) {
      nlohmann::json ij = InstructionToJson(pi.expanded);
      if (!pi.created_by.empty()) ij["created_by"] = pi.created_by;
      if (!pi.unresolved.empty()) ij["unresolved"] = pi.unresolved;
      if (std::holds_alternative<RunCommand>(pi.expanded.command) && !pi.args.empty()) {
        ij["args"] = KeyValuesJson(pi.args);
      }
      ins.push_back(std::move(ij));
    }
    sj["instructions"] = std::move(ins);
    stages_json.push_back(std::move(sj));
  }
  j["stages"] = std::move(stages_json);
  return j;
}

}  // namespace strata::builder
