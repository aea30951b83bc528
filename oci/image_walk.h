// The one image walk: everything an index or manifest reaches in a BlobStore
// (nested indexes, manifests, configs, layers), parents before children.
// Used by the garbage collector (oci/gc.h), save (oci/archive_oci.cc) and
// anything else that must follow an image's references.
//
// Thread-compatible: reads the blob store only.
#pragma once

#include <functional>

#include "oci/blob_store.h"
#include "oci/descriptor.h"
#include "oci/util/error.h"

namespace strata::oci {

enum class WalkNode { kIndex, kManifest, kConfig, kLayer, kOther };

struct ImageWalker {
  // Called for every descriptor reached, each digest at most once per walk,
  // with what it is: the root is kIndex/kManifest by its media type (kOther
  // for a non-manifest root, which is not read), an index's entries by
  // theirs, a manifest's config and layers kConfig/kLayer (never read).
  // `parent` is the index or manifest that names `d` (null for the root).
  // Returns whether to descend (read an index or manifest); an error stops
  // the walk and is returned.
  std::function<Result<bool>(const Descriptor& d, WalkNode node, const Descriptor* parent)> visit;
  // Called when an index or manifest cannot be read or parsed (so what it
  // reaches is unknown), with the error as ReadBlob or the parser gave it:
  // return OK to go on with the rest of the walk, or an
  // error to stop. Unset: the error stops the walk.
  std::function<Status(const Descriptor& d, const Error& e)> on_unreadable;
  // Index entries whose blob is not in the store are skipped (partial
  // multi-platform pulls) unless this is false, when they are visited (and
  // reading them fails through on_unreadable).
  bool skip_missing_index_entries = true;
  // Indexes nested deeper than this are unreadable ("nesting too deep").
  int max_depth = 8;
};

Status WalkImage(const BlobStore& blobs, const Descriptor& root, const ImageWalker& walker);

}  // namespace strata::oci
