// StageGraph: the dependency graph between the stages of one Dockerfile.
//
// Edges come from `FROM <stage>`, `COPY --from=<stage|index>` and
// `RUN --mount=from=<stage|index>`. BuildKit resolves --from against every
// stage (earlier or later), so a forward reference is fine and only a cycle
// is an error; the error names the line of the edge that closes the cycle.
// Once built the graph is immutable and safe to share between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/util/error.h"

namespace strata::builder {

struct StageEdge {
  int stage = -1;  // the stage depended upon
  int line = 0;    // the line of the FROM / COPY / RUN that references it
  bool operator==(const StageEdge&) const = default;
};

struct StageNode {
  std::string name;  // lowercased `AS` name, may be empty
  int line = 0;      // line of the FROM
  std::vector<StageEdge> deps;
};

class StageGraph {
 public:
  // Validates the graph. kInvalidArgument "<file>:<line>: circular dependency
  // detected on stage: <name|index>" when the stages reference each other.
  static Result<StageGraph> Build(std::vector<StageNode> nodes,
                                  std::string_view file_name = "Dockerfile");

  // Resolves a stage reference: a name (case-insensitive) or a decimal index
  // among `names`. nullopt when it names no stage (then it is an image).
  static std::optional<int> Resolve(const std::vector<std::string>& names, std::string_view ref);

  size_t size() const { return nodes_.size(); }
  const StageNode& node(int i) const { return nodes_[static_cast<size_t>(i)]; }

  // Stage indices `stage` depends on directly, sorted, unique.
  std::vector<int> Dependencies(int stage) const;

  // Every stage needed to build `target` (itself included), dependencies first;
  // among independent stages, lower index first.
  std::vector<int> StagesNeededFor(int target) const;

  // StagesNeededFor(target) grouped in waves: every stage of wave k depends only
  // on stages of earlier waves, so the stages of one wave can run in parallel.
  std::vector<std::vector<int>> ParallelWaves(int target) const;

  // Resolves a --target value (stage name, case-insensitive). kNotFound:
  // `target stage "x" could not be found`.
  Result<int> ResolveTarget(std::string_view target) const;

 private:
  explicit StageGraph(std::vector<StageNode> nodes) : nodes_(std::move(nodes)) {}
  std::vector<StageNode> nodes_;
};

}  // namespace strata::builder
