// --no-cache-filter STAGE...: the named stages are rebuilt without the build
// cache while every other stage still hits it (BuildKit's per-target
// IgnoreCache). Pure functions over the plan; the executor consults them.
//
// A stage after a rebuilt one (FROM it, COPY --from it, RUN --mount from it)
// must not reuse what was built on the old output: when a step of the
// rebuilt stage made a layer other than the one its cache record held (or
// there was none), the stage's key, which those steps chain from, becomes
// one derived from what it produced (its layers' diffIDs and its config).
// A rebuild that made the same layers keeps its key: its users still hit.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "builder/engine/build.h"
#include "builder/engine/build_cache.h"
#include "builder/frontend/plan.h"

namespace strata::builder {

// OK when every name is a stage of `plan` (an AS name, case-insensitive, or
// an index); else InvalidArgument naming it and the stages that exist.
Status CheckNoCacheStages(const Plan& plan, const std::vector<std::string>& names);

// Whether `stage` is one of `names` (already checked).
bool IsNoCacheStage(const Plan& plan, const Stage& stage, const std::vector<std::string>& names);

// Whether a rebuilt step's record `rec` holds what the record `old` it
// replaces held (same layer diffID, or both empty).
bool SameOutput(const std::optional<CacheRecord>& old, const CacheRecord& rec);

// The key a rebuilt stage that made something new hands to the stages using
// it: its chain key plus what it produced.
oci::Digest RebuiltStageKey(const StageState& st);

}  // namespace strata::builder
