// Index merge: `strata manifest create DEST SRC...` with the semantics of
// `docker buildx imagetools create`. Each source (an image or an index, on a
// registry or in the local store) contributes its platform manifests; the
// result is one OCI image index of all of them. Nothing of a source's layers
// is downloaded: a registry source's manifests and configs are fetched into
// the store (small; the config says an image's platform) and every blob they
// name is recorded as being in the source repository (oci/blob_sources.h),
// so pushing the merged index (Pusher::Push) mounts the blobs across
// repositories of the same registry instead of uploading them.
//
// Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "registry/session.h"

namespace strata::registry {

// One platform manifest for the merged index, and the source that named it.
struct MergeEntry {
  oci::Descriptor descriptor;  // platform set
  std::string source;          // as the user wrote it, for errors
};

// The merged index (OCI image index media type) of `entries`, in order.
// The same platform from two sources is InvalidArgument naming both sources
// and the platform, unless both are the same manifest (digest), which is
// listed once. An entry without a platform is InvalidArgument naming its
// source. `annotations` become the index's annotations. InvalidArgument if
// `entries` is empty.
Result<oci::Index> MergeIndexes(const std::vector<MergeEntry>& entries,
                                const std::map<std::string, std::string>& annotations);

// The platform manifests of the image or index `ref` names on its registry.
// Fetches (verified) the manifests and, for an image not listed through an
// index with a platform, its config, into `store` (untagged: prune removes
// them unless something keeps them), and records every blob, and each
// manifest, as present in `ref`'s repository. Attestation manifests
// (unknown/unknown) are left out. Errors name `ref`.
RegistryResult<std::vector<MergeEntry>> GatherRemote(SessionFactory& sessions, oci::Store& store,
                                                     const oci::Reference& ref);

// The same for `ref` in the local store (an image: its config's platform; an
// index: its platform children, local or remote). Errors name `ref`.
Result<std::vector<MergeEntry>> GatherLocal(const oci::Store& store, const std::string& ref);

// "key=value" for --annotation. buildx's "index:key=value" form is accepted
// (the index is what is annotated); "manifest:"/"manifest-descriptor:" and
// other prefixes are InvalidArgument naming them.
Result<std::pair<std::string, std::string>> ParseIndexAnnotation(std::string_view s);

}  // namespace strata::registry
