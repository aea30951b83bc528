#include "tools/strata/rootless_entry.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "builder/runtime/rootless.h"
#include "oci/store.h"

namespace strata::cli {

std::optional<int> MaybeRunRootless(std::string_view verb, const GlobalOptions& global,
                                    char** argv) {
  if (builder::AdoptRootlessChild()) return std::nullopt;
  // build creates files owned by other ids and mounts; prune removes them
  // (snapshot dirs owned by subordinate ids are not the user's to empty
  // outside the namespace). The other verbs work as the user (unpack keeps
  // files the caller's).
  if ((verb != "build" && verb != "prune") || ::geteuid() == 0) return std::nullopt;
  auto plan = builder::PlanRootless(builder::ReadRootlessHost());
  // Without a user namespace no build could have made snapshots of other
  // ids, so prune can do its work as the user.
  if (!plan && verb == "prune") return std::nullopt;
  if (!plan) {
    fmt::print(stderr, "strata: {}\n", plan.error().message());
    return kExitFailure;
  }
  if (global.verbose) fmt::print(stderr, "strata: rootless: {}\n", builder::DescribePlan(*plan));
  // Inside, strata is uid 0: the default store must stay the user's.
  std::vector<std::string> env;
  if (const char* r = std::getenv("STRATA_ROOT"); r == nullptr || *r == '\0') {
    env.push_back("STRATA_ROOT=" + oci::Store::DefaultRoot().string());
  }
  auto code = builder::RunInRootlessNamespace(*plan, argv, env);
  if (!code) {
    fmt::print(stderr, "strata: {}\n", code.error().message());
    return kExitFailure;
  }
  return *code;
}

}  // namespace strata::cli
