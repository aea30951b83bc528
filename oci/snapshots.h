// Snapshots: each layer unpacked once, in overlay form, under
// ROOT/snapshots/<hex of its chainID>/, reused as an overlayfs lowerdir.
//
// The chainID (image-spec config.md, "Layer ChainID") names a layer together
// with everything below it:
//   ChainID(L0)   = DiffID(L0)
//   ChainID(L0|..|Ln) = sha256(ChainID(L0|..|Ln-1) + " " + DiffID(Ln))
// so two images that share a base share its snapshots. A snapshot holds only
// its own layer (with overlay whiteouts: char 0/0 and trusted.overlay.opaque),
// never its parents; the chainID in the name records what it sits on.
// Directory names are the bare hex: overlayfs splits lowerdir= on ':'.
//
// Creation is atomic: the layer is applied into snapshots/.tmp-XXXXXX and
// renamed to its final name; a snapshot that exists is complete. Two
// processes racing for the same snapshot both succeed, one rename wins.
// Thread-safety: safe across threads and processes sharing a store.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "oci/digest.h"
#include "oci/layer_reader.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

// ChainIDs of every prefix of `diff_ids`: result[i] names layers 0..i.
std::vector<Digest> ChainIds(std::span<const Digest> diff_ids);
// The chainID of the whole stack. REQUIRES: !diff_ids.empty().
Digest ChainId(std::span<const Digest> diff_ids);

struct SnapshotOptions {
  bool allow_devices = false;   // root applying layers for RUN
  bool preserve_owners = true;  // chown to the layer's uid/gid (root)
  // Per uncompressed layer (--max-layer-size).
  uint64_t max_uncompressed_bytes = kDefaultMaxLayerBytes;
};

// Where the snapshot for `chain_id` lives (whether or not it exists).
std::filesystem::path SnapshotPath(const Store& store, const Digest& chain_id);

// Ensures the snapshot of `layer` (whose uncompressed digest must be
// `diff_id`) on top of the stack named by `chain_id` exists; returns its
// path. Errors from applying the layer, wrapped with the chainID; on error
// nothing is left under snapshots/.
Result<std::filesystem::path> EnsureSnapshot(const Store& store, const Digest& chain_id,
                                             const Descriptor& layer, const Digest& diff_id,
                                             const SnapshotOptions& opts);

// Ensures the snapshots of every layer of `image` and returns them in
// overlayfs lowerdir order: the top layer first, the base layer last.
// InvalidArgument if the manifest and the config disagree on the layer count.
Result<std::vector<std::filesystem::path>> PrepareLowerDirs(const Store& store, const Image& image,
                                                            const SnapshotOptions& opts);

// "dir1:dir2:..." for the overlay mount's lowerdir= option.
std::string LowerDirOption(const std::vector<std::filesystem::path>& lower_dirs);

}  // namespace strata::oci
