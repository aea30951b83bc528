// The CLI's side of rootless builds (builder/runtime/rootless.h): before a
// verb that writes or removes snapshots (build, prune) runs as a non-root user, strata re-executes
// itself in a user namespace and this process only waits for it.
#pragma once

#include <optional>
#include <string_view>

#include "tools/strata/cli.h"

namespace strata::cli {

// Call after parsing, before anything touches the store. nullopt: go on
// with `verb` in this process (root, a verb that needs no namespace, or
// already the re-executed child). Otherwise the exit code to return: the
// child's, or kExitFailure after printing the missing prerequisite.
std::optional<int> MaybeRunRootless(std::string_view verb, const GlobalOptions& global,
                                    char** argv);

}  // namespace strata::cli
