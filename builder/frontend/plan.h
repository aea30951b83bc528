// Plan: the typed result of parsing a Dockerfile, what the build engine runs.
//
// ParseDockerfile = ParseAst -> ParseInstruction -> ARG/ENV scoping and static
// expansion -> StageGraph. Each PlanInstruction keeps the raw instruction (for
// ExpandInstruction at dispatch, when the base image's ENV is known) and a
// statically expanded copy for display: build args, ARG defaults and ENV set
// in the Dockerfile are substituted; variables that could come from a base
// image's ENV are left as written ($PATH stays $PATH) unless the stage starts
// FROM scratch, where the environment is fully known.
// Plan is a value type; ToJson() is deterministic (sorted keys).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "builder/frontend/build_args.h"
#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/instructions.h"
#include "builder/frontend/stage_graph.h"
#include "oci/util/error.h"

namespace strata::builder {

struct ParseOptions {
  std::string file_name = "Dockerfile";           // used in every error message
  std::map<std::string, std::string> build_args;  // --build-arg K=V
  std::string target;                             // --target; empty = last stage
  BuildPlatform target_platform = BuildPlatform::Host();
  BuildPlatform build_platform = BuildPlatform::Host();
};

struct PlanInstruction {
  Instruction raw;             // words as written: input to ExpandInstruction
  Instruction expanded;        // statically expanded (see file comment)
  std::vector<KeyValue> args;  // ARGs in effect before this instruction (with values)
  std::string created_by;      // docker-style history text ("" for none)
  // Variables the static expansion could not resolve (left as written in
  // `expanded`); the engine resolves them at dispatch from the base image's ENV.
  std::vector<std::string> unresolved;
};

struct StageBase {
  enum class Kind { kImage, kStage, kScratch };
  Kind kind = Kind::kImage;
  std::string image;  // expanded image reference when kImage
  int stage = -1;     // index when kStage
};

struct Stage {
  int index = 0;
  std::string name;  // lowercased AS name, may be empty
  Instruction from;  // the raw FROM
  StageBase base;
  std::string platform;                       // expanded --platform, empty if none
  std::vector<PlanInstruction> instructions;  // after FROM
  std::vector<int> depends_on;  // direct dependencies (FROM stage, COPY --from, RUN --mount from)
  bool needed = false;          // reachable from the target
  // ENV declared in this stage (after inheriting the parent stage's, if FROM a stage).
  std::vector<KeyValue> env;
};

struct Plan {
  std::string file_name;
  ParserDirectives directives;
  BuildPlatform target_platform;
  BuildPlatform build_platform;
  std::vector<KeyValue> meta_args;  // global ARGs (before the first FROM) with values
  // Every global ARG, in order, valued or not (what --print-plan lists).
  std::vector<std::pair<std::string, std::optional<std::string>>> global_args;
  // --build-arg proxy values: RUN gets them in its env without a declaration;
  // they never enter created_by.
  std::vector<KeyValue> proxy_args;
  std::vector<Stage> stages;
  int target = -1;                               // index of the target stage
  std::vector<int> build_order;                  // needed stages, dependencies first
  std::vector<std::vector<int>> parallel_waves;  // build_order grouped for parallel runs
  std::vector<ParseWarning> warnings;            // empty continuation lines, unused build args

  nlohmann::json ToJson() const;
};

// Parses and plans a Dockerfile. Errors (kInvalidArgument unless noted) begin
// with "<file>:<line>: ": syntax, unknown instruction, bad flags, no FROM,
// blank base name, cycles; kNotFound for an unknown --target.
Result<Plan> ParseDockerfile(std::string_view text, const ParseOptions& options);

// ParseDockerfile(...)->ToJson(), for `strata parse` / `build --print-plan`.
Result<nlohmann::json> ParseDockerfileToJson(std::string_view text, const ParseOptions& options);

}  // namespace strata::builder
