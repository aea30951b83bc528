#include "builder/frontend/stage_graph.h"
#include "oci/util/strings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>

namespace strata::builder {
namespace {

std::string Label(const StageNode& n, int i) { return n.name.empty() ? std::to_string(i) : n.name; }

}  // namespace

std::optional<int> StageGraph::Resolve(const std::vector<std::string>& names,
                                       std::string_view ref) {
  std::string lower = Lower(ref);
  for (size_t i = 0; i < names.size(); ++i) {
    if (!names[i].empty() && names[i] == lower) return static_cast<int>(i);
  }
  int index = 0;
  auto [p, ec] = std::from_chars(ref.data(), ref.data() + ref.size(), index);
  if (!ref.empty() && ec == std::errc() && p == ref.data() + ref.size() && index >= 0 &&
      static_cast<size_t>(index) < names.size()) {
    return index;
  }
  return std::nullopt;
}

Result<StageGraph> StageGraph::Build(std::vector<StageNode> nodes, std::string_view file_name) {
  // Depth-first search with colours; a grey target is a back edge = a cycle.
  enum Colour { kWhite, kGrey, kBlack };
  std::vector<Colour> colour(nodes.size(), kWhite);
  std::optional<Error> err;
  std::function<void(int)> visit = [&](int i) {
    colour[static_cast<size_t>(i)] = kGrey;
    for (const StageEdge& e : nodes[static_cast<size_t>(i)].deps) {
      if (err) return;
      if (colour[static_cast<size_t>(e.stage)] == kGrey) {
        err = Error(ErrorCode::kInvalidArgument,
                    fmt::format("{}:{}: circular dependency detected on stage: {}", file_name,
                                e.line, Label(nodes[static_cast<size_t>(e.stage)], e.stage)));
        return;
      }
      if (colour[static_cast<size_t>(e.stage)] == kWhite) visit(e.stage);
    }
    colour[static_cast<size_t>(i)] = kBlack;
  };
  for (size_t i = 0; i < nodes.size() && !err; ++i) {
    for (const StageEdge& e : nodes[i].deps) {
      if (e.stage < 0 || static_cast<size_t>(e.stage) >= nodes.size()) {
        return MakeError(ErrorCode::kInvalidArgument, "{}:{}: invalid stage index {}", file_name,
                         e.line, e.stage);
      }
    }
  }
  for (size_t i = 0; i < nodes.size() && !err; ++i) {
    if (colour[i] == kWhite) visit(static_cast<int>(i));
  }
  if (err) return std::unexpected(*err);
  return StageGraph(std::move(nodes));
}

std::vector<int> StageGraph::Dependencies(int stage) const {
  std::vector<int> out;
  for (const StageEdge& e : nodes_[static_cast<size_t>(stage)].deps) out.push_back(e.stage);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int> StageGraph::StagesNeededFor(int target) const {
  std::vector<int> order;
  std::vector<bool> seen(nodes_.size(), false);
  std::function<void(int)> visit = [&](int i) {
    if (seen[static_cast<size_t>(i)]) return;
    seen[static_cast<size_t>(i)] = true;
    for (int d : Dependencies(i)) visit(d);
    order.push_back(i);
  };
  visit(target);
  return order;
}

std::vector<std::vector<int>> StageGraph::ParallelWaves(int target) const {
  std::vector<int> needed = StagesNeededFor(target);
  std::vector<int> wave_of(nodes_.size(), -1);
  std::vector<std::vector<int>> waves;
  for (int s : needed) {  // dependencies come first, so their waves are known
    int w = 0;
    for (int d : Dependencies(s)) w = std::max(w, wave_of[static_cast<size_t>(d)] + 1);
    wave_of[static_cast<size_t>(s)] = w;
    if (static_cast<size_t>(w) >= waves.size()) waves.resize(static_cast<size_t>(w) + 1);
    waves[static_cast<size_t>(w)].push_back(s);
  }
  for (auto& w : waves) std::sort(w.begin(), w.end());
  return waves;
}

Result<int> StageGraph::ResolveTarget(std::string_view target) const {
  std::string lower = Lower(target);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].name.empty() && nodes_[i].name == lower) return static_cast<int>(i);
  }
  return MakeError(ErrorCode::kNotFound, "target stage \"{}\" could not be found", target);
}

}  // namespace strata::builder
