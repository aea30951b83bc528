#include "builder/frontend/base_use.h"

#include <algorithm>
#include <type_traits>
#include <variant>

namespace strata::builder {
namespace {

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// --chown that needs no lookup in the image: absent, or numeric uid[:gid].
bool NumericChown(const std::string& chown) {
  if (chown.empty()) return true;
  auto colon = chown.find(':');
  if (colon == std::string::npos) return IsDigits(chown);
  return IsDigits(std::string_view(chown).substr(0, colon)) &&
         IsDigits(std::string_view(chown).substr(colon + 1));
}

bool ReadsBase(const Instruction& ins) {
  return std::visit(
      [](const auto& c) -> bool {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CopyCommand>) {
          return !c.link || !c.from.empty() || !NumericChown(c.chown);
        } else if constexpr (std::is_same_v<T, CmdCommand> ||
                             std::is_same_v<T, EntrypointCommand> ||
                             std::is_same_v<T, ShellCommand> || std::is_same_v<T, LabelCommand> ||
                             std::is_same_v<T, MaintainerCommand> ||
                             std::is_same_v<T, ExposeCommand> || std::is_same_v<T, EnvCommand> ||
                             std::is_same_v<T, ArgCommand> || std::is_same_v<T, UserCommand> ||
                             std::is_same_v<T, VolumeCommand> ||
                             std::is_same_v<T, StopSignalCommand> ||
                             std::is_same_v<T, HealthcheckCommand> ||
                             std::is_same_v<T, OnbuildCommand>) {
          return false;  // config only (ONBUILD registers a trigger, runs nothing)
        } else {
          return true;  // RUN, WORKDIR, FROM and anything added later
        }
      },
      ins.command);
}

}  // namespace

bool StageReadsBaseFilesystem(const Plan& plan, int stage) {
  if (stage < 0 || static_cast<size_t>(stage) >= plan.stages.size()) return true;
  const Stage& s = plan.stages[static_cast<size_t>(stage)];
  if (s.base.kind != StageBase::Kind::kImage) return true;
  if (stage != plan.target) return true;
  for (const auto& other : plan.stages) {
    if (other.index == stage || !other.needed) continue;
    if (std::find(other.depends_on.begin(), other.depends_on.end(), stage) !=
        other.depends_on.end())
      return true;
  }
  for (const auto& pi : s.instructions) {
    // The raw form: a flag value with a variable in it ($USER) is not known
    // to be numeric here, so it counts as a lookup.
    if (ReadsBase(pi.raw)) return true;
  }
  return false;
}

}  // namespace strata::builder
