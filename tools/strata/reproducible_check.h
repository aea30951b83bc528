// build --check-reproducible: the build runs a second time in a fresh
// temporary store (under ROOT/ingest/, removed afterwards) holding only the
// same inputs — every base image the first build resolved, copied by digest
// from this store — without the build cache, and the two results are
// compared: equal manifest digests pass; otherwise the first layer that
// differs is unpacked from both builds (overlay form, so whiteouts show) and
// the first differing file named with how it differs (content, mode, owner,
// mtime, xattr, type, link target, present in one build only); equal layers
// with different configs name the config field.
// The comparison of two layers' trees is tools/strata/tree_diff.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "builder/engine/executor.h"
#include "builder/runtime/command_runner.h"
#include "oci/digest.h"
#include "oci/store.h"
#include "tools/strata/cli.h"
#include "tools/strata/tree_diff.h"

namespace strata::cli {

struct ReproducibleReport {
  bool reproducible = false;
  oci::Digest second;      // the second build's manifest digest
  std::string difference;  // "" when reproducible
};

// Runs the second build (see above) and compares. `options` are the first
// build's (its resolver, fetchers and tags are not used: the temporary store
// holds the inputs).
Result<ReproducibleReport> CheckReproducible(const Context& ctx, oci::Store& store,
                                             builder::CommandRunner& runner,
                                             const builder::BuildOptions& options,
                                             const builder::BuildResult& first);

}  // namespace strata::cli
