// Whether a stage's steps read its base image's file system: the planner's
// half of lazy base layers. A stage that never reads it needs only the
// base's manifest and config (its ENV, WORKDIR, USER, history, diff_ids);
// the base's layer blobs may stay at the registry they came from, recorded
// as their source (oci/blob_sources.h), and be mounted or fetched by a push.
//
// Conservative by construction: anything not listed below as file-system
// free reads the base. A stage's base file system is needed when the stage
//   - has any RUN (it runs on the base's root) or WORKDIR (it makes the
//     directory, with the image's parents);
//   - has a COPY/ADD without --link (the destination is resolved through the
//     image's symlinks and its parent directories copied from the image), or
//     with --from (another image or stage is read, which is not this base but
//     keeps the rule simple), or --chown with a name or a variable (resolved
//     through the image's /etc/passwd and /etc/group);
//   - is not the build's target, or another stage builds on it or copies or
//     mounts from it (their reads are not analysed).
// The engine adds what only the base's config tells: ONBUILD triggers (they
// run in this stage) make it fetch the layers too.
//
// Pure: no I/O. Thread-compatible.
#pragma once

#include "builder/frontend/plan.h"

namespace strata::builder {

// True unless stage `stage` of `plan` provably never reads its base image's
// file system (see above). True for an index out of range and for stages
// whose base is not an image (scratch has no layers; a stage base was built
// here and is local).
bool StageReadsBaseFilesystem(const Plan& plan, int stage);

}  // namespace strata::builder
