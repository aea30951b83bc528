// build --lock / --update-lock / --locked (builder/engine/lockfile.h): where
// strata.lock is, what --locked refuses, and writing the pins after a build.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "builder/engine/executor.h"
#include "builder/engine/lockfile.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::cli {

struct LockFlags {
  bool lock = false;         // write strata.lock after the build
  bool update_lock = false;  // the same, over an existing one
  bool locked = false;       // check every input against strata.lock
  bool any() const { return lock || update_lock || locked; }
};

// Validates the flag combination, and for --locked reads the lockfile next
// to `dockerfile` and sets options.check_input. InvalidArgument for
// --locked with --lock/--update-lock, a Dockerfile from stdin; NotFound for
// a missing lockfile; Unimplemented naming an input kind --locked cannot pin
// yet (an https:// --build-context, git pins in the lockfile).
Status PrepareLock(const LockFlags& flags, const std::filesystem::path& dockerfile,
                   bool dockerfile_from_stdin, builder::BuildOptions& options);

// After a successful build with --lock/--update-lock: merges `inputs` (the
// build's, plus UnbuiltStageInputs) into strata.lock (created if missing)
// and writes it atomically. Returns its path.
Result<std::filesystem::path> WriteLock(const std::filesystem::path& dockerfile,
                                        const std::vector<builder::ResolvedInput>& inputs);

// The FROM images of the stages the build did not run (not needed by the
// target; not overridden by a --build-context), resolved with `resolve`
// (store, else the registry: manifest and config only), skipping those
// already in `have`: so that one strata.lock pins every target's bases.
// `text` is the Dockerfile; errors name the image.
Result<std::vector<builder::ResolvedInput>> UnbuiltStageInputs(
    std::string_view text, const builder::BuildOptions& options,
    const std::vector<builder::ResolvedInput>& have,
    const std::function<Result<builder::ResolvedInput>(const oci::Reference&)>& resolve);

// --lock/--update-lock after a successful build: the build's inputs plus
// UnbuiltStageInputs resolved from `store` (else through options' resolvers:
// manifest and config only), written with WriteLock. `pins` gets them all.
Result<std::filesystem::path> WriteLockForBuild(oci::Store& store,
                                                const builder::BuildOptions& options,
                                                const builder::BuildResult& result,
                                                const std::filesystem::path& dockerfile,
                                                std::vector<builder::ResolvedInput>* pins);

}  // namespace strata::cli
