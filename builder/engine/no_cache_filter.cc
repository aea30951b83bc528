#include "builder/engine/no_cache_filter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "builder/engine/build_cache.h"
#include "builder/frontend/stage_graph.h"

namespace strata::builder {
namespace {

std::vector<std::string> StageNames(const Plan& plan) {
  std::vector<std::string> names;
  for (const auto& s : plan.stages) names.push_back(s.name);
  return names;
}

}  // namespace

Status CheckNoCacheStages(const Plan& plan, const std::vector<std::string>& names) {
  auto stage_names = StageNames(plan);
  for (const auto& n : names) {
    if (StageGraph::Resolve(stage_names, n)) continue;
    std::vector<std::string> known;
    for (const auto& s : plan.stages) {
      known.push_back(s.name.empty() ? std::to_string(s.index) : s.name);
    }
    return MakeError(ErrorCode::kInvalidArgument,
                     "--no-cache-filter {}: no stage named \"{}\" in {} (stages: {})", n, n,
                     plan.file_name.empty() ? "the Dockerfile" : plan.file_name,
                     fmt::join(known, ", "));
  }
  return OkStatus();
}

bool IsNoCacheStage(const Plan& plan, const Stage& stage, const std::vector<std::string>& names) {
  if (names.empty()) return false;
  auto stage_names = StageNames(plan);
  for (const auto& n : names) {
    if (StageGraph::Resolve(stage_names, n) == stage.index) return true;
  }
  return false;
}

bool SameOutput(const std::optional<CacheRecord>& old, const CacheRecord& rec) {
  if (!old || old->empty_layer != rec.empty_layer) return false;
  return rec.empty_layer || old->diff_id == rec.diff_id;
}

oci::Digest RebuiltStageKey(const StageState& st) {
  CacheKey key("REBUILT-STAGE");
  key.Add(st.key.ToString());
  for (const auto& d : st.config.diff_ids) key.Add(d.ToString());
  // The config minus its times: ENV, WORKDIR, ... of the rebuilt stage.
  oci::ImageConfig cfg = st.config;
  cfg.created.clear();
  cfg.history.clear();
  key.Add(cfg.Serialize());
  return key.Finish();
}

}  // namespace strata::builder
