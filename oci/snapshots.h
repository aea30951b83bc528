// Snapshots: each layer unpacked once, in overlay form, reused as an
// overlayfs lowerdir. This file is the only owner of ROOT/snapshots/: the
// builder creates (EnsureSnapshot), adopts (AdoptSnapshot) and looks up
// snapshots through it, and Store::Prune / Store::Fsck sweep and check them
// through it.
//
// The chainID (image-spec config.md, "Layer ChainID") names a layer together
// with everything below it:
//   ChainID(L0)   = DiffID(L0)
//   ChainID(L0|..|Ln) = sha256(ChainID(L0|..|Ln-1) + " " + DiffID(Ln))
// so two images that share a base share its snapshots. A snapshot holds only
// its own layer (with overlay whiteouts: char 0/0 and trusted.overlay.opaque),
// never its parents; the chainID in the name records what it sits on.
//
// Layout and lifecycle (design block; see also docs/DESIGN-NOTES.md):
//
//   ROOT/snapshots/<chainID hex>/fs/             the layer in overlay form: the lowerdir
//                                                (bare hex: overlayfs splits lowerdir= on ':')
//   ROOT/snapshots/<chainID hex>/snapshot.json   proof of completeness, written last:
//       {"version":1,"chainID":"sha256:..","diffID":"sha256:..",
//        "layer":"sha256:..","layerSize":N}
//   ROOT/snapshots/<chainID hex>/verified.json   optional memo of the last full
//       verification of a layer blob that this snapshot stands in for:
//       {"layer":"sha256:..","dev":..,"ino":..,"size":..,"mtime_ns":..,"ctime_ns":..}
//   ROOT/snapshots/.tmp-XXXXXX/                  a snapshot being made (unpack or adopt)
//   ROOT/snapshots/.trash-XXXXXX/                a snapshot being deleted
//   ROOT/snapshots/.run-*, .copy-*, .view-*, .bindrw-*, .unpack-*
//                                                builder scratch dirs (RUN upper/work,
//                                                COPY staging, read-only views)
//
// - Create: fill .tmp-X/fs (apply a layer, or rename an adopted dir into it),
//   write .tmp-X/snapshot.json (WriteFileAtomic), syncfs(2) the file system
//   (one call; an fsync per file costs ~150x more on a 6,000-file layer),
//   then RenameDurable(.tmp-X, <hex>). A name that exists was therefore
//   complete and durable when it appeared.
// - Use: a snapshot is trusted only if snapshot.json parses, names its own
//   chainID (and the expected diffID) and fs/ is a directory. Anything else
//   under a chainID name (an older strata's half-deleted directory, an
//   unmarked one) is never used: it is renamed to .trash-X, removed, and
//   made again.
// - Delete (prune, fsck --repair): RenameDurable(<hex>, .trash-X) first, then
//   remove .trash-X. A kill at any point leaves either the complete snapshot
//   or a .trash-X that nothing trusts.
// - Leftover .tmp-/.trash-/scratch dirs of killed processes are removed by
//   SweepSnapshots, which REQUIRES the store's exclusive lock (no other
//   strata process alive), so it never touches a live process's dirs.
//
// Thread-safety: safe across threads and processes sharing a store (two
// processes making the same snapshot both succeed; one rename wins).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "oci/digest.h"
#include "oci/layer_reader.h"
#include "oci/store.h"
#include "oci/util/error.h"
#include "oci/util/file_util.h"

namespace strata::oci {

// ChainIDs of every prefix of `diff_ids`: result[i] names layers 0..i.
std::vector<Digest> ChainIds(std::span<const Digest> diff_ids);
// The chainID of the whole stack. REQUIRES: !diff_ids.empty().
Digest ChainId(std::span<const Digest> diff_ids);

struct SnapshotOptions {
  bool allow_devices = false;   // root applying layers for RUN
  bool skip_devices = false;    // rootless: leave device entries out (ApplyOptions)
  bool preserve_owners = true;  // chown to the layer's uid/gid (root)
  // Per uncompressed layer (--max-layer-size).
  uint64_t max_uncompressed_bytes = kDefaultMaxLayerBytes;
};

// Creates ROOT/snapshots if needed (Store::Open calls it).
Status InitSnapshotsDir(const std::filesystem::path& store_root);

// A scratch dir for a build step under ROOT/snapshots (same file system as the
// snapshots, so it can be adopted by rename or used as overlay upper/work),
// removed when the returned object goes away; prune and the run reaper sweep
// those of killed processes. `prefix` must start with '.' (".run-", ".copy-",
// ...): dot names are never taken for snapshots. InvalidArgument otherwise.
Result<ScopedTempDir> MakeSnapshotScratchDir(const Store& store, std::string_view prefix);

// The directory of the snapshot for `chain_id` (whether or not it exists).
std::filesystem::path SnapshotPath(const Store& store, const Digest& chain_id);
// Its lowerdir: SnapshotPath(...) / "fs".
std::filesystem::path SnapshotLowerDir(const Store& store, const Digest& chain_id);

// The lowerdir of the complete snapshot of `chain_id`. NotFound if there is
// none; DataLoss if a directory of that name exists without valid proof of
// completeness (it must not be used); other codes for I/O errors.
Result<std::filesystem::path> FindSnapshot(const Store& store, const Digest& chain_id);

// Ensures the snapshot of `layer` (whose uncompressed digest must be
// `diff_id`) on top of the stack named by `chain_id` exists and is complete;
// returns its lowerdir. An incomplete directory of that name is discarded and
// the layer unpacked again. Errors from applying the layer, wrapped with the
// chainID; on error nothing new is left under snapshots/.
Result<std::filesystem::path> EnsureSnapshot(const Store& store, const Digest& chain_id,
                                             const Descriptor& layer, const Digest& diff_id,
                                             const SnapshotOptions& opts);

// Makes `dir` (the layer in overlay form: a RUN's overlay upper dir or a COPY
// staging dir, on the store's file system, not in use) the snapshot of
// `layer`/`diff_id` at `chain_id`, without unpacking it again. `dir` is moved
// away on success; if a complete snapshot already exists, it is kept and
// `dir` is left to the caller. Returns the lowerdir.
Result<std::filesystem::path> AdoptSnapshot(const Store& store, const std::filesystem::path& dir,
                                            const Digest& chain_id, const Descriptor& layer,
                                            const Digest& diff_id);

// Ensures the snapshots of every layer of `image` and returns them in
// overlayfs lowerdir order: the top layer first, the base layer last.
// InvalidArgument if the manifest and the config disagree on the layer count.
Result<std::vector<std::filesystem::path>> PrepareLowerDirs(const Store& store, const Image& image,
                                                            const SnapshotOptions& opts);

// "dir1:dir2:..." for the overlay mount's lowerdir= option.
std::string LowerDirOption(const std::vector<std::filesystem::path>& lower_dirs);

// Checks that the blob of `layer` is intact before a build relies on a
// snapshot instead of reading it. Always (cheap): the blob exists and has the
// descriptor's size. Then its content is hashed, unless the snapshot of
// `chain_id` memoizes a full verification of this very file (same digest,
// device, inode, size, mtime and ctime: any write or replacement changes
// ctime); a successful hash is memoized there. DataLoss naming the blob
// ("blob sha256:... is corrupt: ...") or NotFound when it is missing.
Status VerifyLayerBlob(const Store& store, const Descriptor& layer, const Digest& chain_id);

// --- maintenance (used by Store::Prune and Store::Fsck) ---

struct SnapshotSweep {
  int64_t removed = 0;    // chainID snapshots removed (unused or incomplete)
  int64_t leftovers = 0;  // temp/trash/scratch dirs of dead processes removed
  int64_t bytes = 0;      // regular-file bytes freed
};
// Removes every incomplete snapshot, every complete one whose chainID hex is
// not in `*keep` (none when `keep` is null), and every temp/trash/scratch
// dir. REQUIRES: the caller holds the store's exclusive lock (Store::Prune,
// Store::RepairSnapshots). Stops at the first error.
Result<SnapshotSweep> SweepSnapshots(const Store& store,
                                     const std::unordered_set<std::string>* keep);

struct SnapshotCheck {
  std::vector<std::string> problems;   // incomplete / unmarked snapshots
  std::vector<std::string> leftovers;  // temp/trash/scratch dirs (prune removes them)
};
// Verifies every snapshot's proof of completeness.
SnapshotCheck CheckSnapshots(const Store& store);

}  // namespace strata::oci
