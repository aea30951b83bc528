// Image indexes in the store, as the verbs see them: what a tag's index lists,
// which of its platform manifests are in the store and which are only
// recorded as remote, and the one rule every verb that needs a single image
// (unpack, history, diff, save --format docker-archive, inspect --platform)
// uses to pick a child.
//
// An index child that is not in the store is "remote" when a registry is
// recorded as its source (oci/blob_sources.h: ROOT/sources/<alg>/<hex> holds
// records for manifests exactly as it does for lazy base layers), e.g. the
// other platforms of an index pulled for one platform; fsck and prune accept
// it (oci/gc.cc), push fetches it (registry/pusher.cc).
//
// Thread-compatible: reads the store only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/blob_sources.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "oci/store.h"

namespace strata::oci {

struct IndexChild {
  Descriptor descriptor;              // as the index lists it (platform included)
  bool local = false;                 // the manifest blob is in the store
  std::vector<BlobLocation> sources;  // where it is recorded, when not local
};

struct IndexView {
  Descriptor descriptor;  // of the index
  Index index;            // as stored
  // The index's platform manifests, in index order; attestation manifests
  // (platform unknown/unknown) and nested indexes are left out.
  std::vector<IndexChild> children;
  // "linux/amd64, linux/arm64" ("none" when empty); an unplatformed child
  // shows as "<no platform>".
  std::string PlatformList() const;
};

// The index `desc` names, or nullopt when it is a plain manifest. NotFound if
// the blob is absent; InvalidArgument (naming the digest) if it does not parse.
Result<std::optional<IndexView>> ReadIndexView(const Store& store, const Descriptor& desc);

// InvalidArgument naming `p` unless its os and architecture are ones OCI
// images use (GOOS/GOARCH values: linux, windows, ...; amd64, arm64, arm, 386,
// ppc64le, s390x, riscv64, mips64le, loong64, ...) and a variant, if any,
// fits the architecture (arm: v5 v6 v7 v8; arm64: v8 v8.x v9; amd64: v1-v4).
Status CheckKnownPlatform(const Platform& p);
// Parse + CheckKnownPlatform, the error naming `flag` ("--platform").
Result<Platform> ParseKnownPlatform(std::string_view s, std::string_view flag = "--platform");

// The child of `view` a verb that needs one image uses. With `want`: the
// child whose platform matches it (a local one preferred); NotFound naming
// `ref`, the index and its platforms when there is none. Without: the one
// child matching the host; InvalidArgument listing the platforms (and asking
// for --platform) when none or several do. A picked child that is not in the
// store is FailedPrecondition naming it and where it is recorded.
Result<Descriptor> PickIndexChild(const IndexView& view, std::string_view ref,
                                  const std::optional<Platform>& want);

// Resolves `ref` and loads the one image it names: a manifest as it is (with
// `want`, FailedPrecondition unless its config's platform matches), an index
// through PickIndexChild (Image::index set). `layers`: require the layer blobs
// (Store::LoadImage) or only manifest and config (LoadImageMetadata).
Result<Image> LoadOneImage(const Store& store, std::string_view ref,
                           const std::optional<Platform>& want, bool layers);

// The platform of an image config ("os/arch[/variant]").
Platform PlatformOfConfig(const ImageConfig& config);

}  // namespace strata::oci
