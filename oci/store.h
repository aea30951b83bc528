// Store: the local content store, an OCI image layout on disk, and the one
// owner of ROOT and of index.json. Every entry under ROOT, and who owns it
// (nobody else creates, edits or deletes it):
//
//   ROOT/oci-layout            {"imageLayoutVersion":"1.0.0"}. Store.
//   ROOT/index.json            OCI index; each tag is one manifest descriptor
//                              annotated org.opencontainers.image.ref.name =
//                              the reference's familiar form ("hello:latest",
//                              "localhost:5000/app:1", "app@sha256:...") and
//                              io.containerd.image.name = the full name;
//                              untagged entries (oci::Load of an untagged
//                              image) carry neither. Store alone edits it
//                              (Tag, Untag, AddUntagged), each change a
//                              read-modify-write under index.lock, written
//                              with WriteFileAtomic.
//   ROOT/index.lock            flock held exclusive around each index.json
//                              read-modify-write. Store.
//   ROOT/lock                  flock: every Store holds it shared for its
//                              lifetime; Prune and RepairSnapshots take it
//                              exclusive (Unavailable while another strata
//                              process has the store open), so nothing a
//                              running build or pull just wrote is swept.
//                              builder/run_reaper also probes it to tell an
//                              idle store. Store.
//   ROOT/blobs/<alg>/<hex>     every blob, mode 0444, never opened for writing
//                              once committed. LocalBlobStore (blobs()).
//   ROOT/ingest/<random>       partial blob writes; verified, fsynced, then
//                              hard-linked into blobs/ (LocalBlobStore).
//   ROOT/ingest/load-*/        staging dirs of oci::Load (an archive being
//                              extracted), ROOT/ingest/add-*/ of the builder's
//                              ADD. Prune removes everything under ingest/
//                              (it runs only when no other process is alive).
//   ROOT/quarantine/<alg>-<hex>.<random>
//                              blobs found corrupt, moved away by
//                              QuarantineBlob so a good copy can be fetched
//                              again; never deleted automatically. Store.
//   ROOT/snapshots/            unpacked layers (<chainID hex>/fs,
//                              snapshot.json, verified.json), .tmp-/.trash-
//                              dirs and the builder's scratch dirs (.run-,
//                              .copy-, .view-, .bindrw-, .bindctx-, .heredoc-,
//                              .cache-private-, .secret-, .unpack-). Owned by
//                              oci/snapshots (lifecycle in snapshots.h);
//                              Store only asks it to check (Fsck) and sweep
//                              (Prune, RepairSnapshots).
//   ROOT/chunks/sha256/<hex>   chunk table of gzip layer blob <hex>: where its
//                              gzip members are and what they hold, so a later
//                              commit copies them instead of deflating again.
//                              Owned by oci/chunk_cache (format there); at most
//                              the 64 newest are kept; Prune removes the table
//                              of every blob it deletes.
//   ROOT/cache/<key hex>.json  build-cache records (builder/build_cache.h),
//   ROOT/cache/context-*.memo  the builder's COPY content-hash memo files.
//                              Store creates the empty dir and never reads
//                              it: the builder hands the blobs its records
//                              keep alive to Prune as roots.
//   ROOT/sources/<alg>/<hex>   where blob <alg>:<hex> is known to exist on
//                              registries (registry, repository), for
//                              cross-repository mounts on push; a hint, kept
//                              for at most the 8 most recent repositories.
//                              Also kept for the absent platform manifests
//                              of a tagged index (remote children,
//                              oci/image_index.h), which prune keeps.
//   ROOT/sources/.lock         flock around each record's read-modify-write.
//                              oci/blob_sources (format there); the registry
//                              client records and reads them; Prune drops
//                              the records of blobs it does not keep.
//   ROOT/referrers/<alg>/<hex> the referrers (attestations) of manifest
//   ROOT/referrers/.lock       <alg>:<hex>, an OCI index; oci/referrers
//                              (format there). Prune keeps a referrer while
//                              its subject lives and drops dead records.
//   ROOT/cache-mounts/<id>/    RUN --mount=type=cache dirs (builder executor).
//   ROOT/runtime/<id>/         OCI runtime state of RUN containers,
//   ROOT/bundles/run-*/        their bundle dirs (builder OciRuntimeRunner),
//   ROOT/run-owners/<token>    flock'd by each live build; a dead owner's
//                              containers and bundles are reaped
//                              (builder/run_reaper.h).
//
// Thread-safety: a Store may be used from several threads; index updates are
// serialized by index.lock, blobs need no lock (content-addressed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/image_config.h"
#include "oci/local_blob_store.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {

struct TaggedImage {
  Reference ref;
  Descriptor descriptor;  // the manifest (or index) the tag points at
};

// A manifest with its config, as read (and verified) from the store.
struct Image {
  Descriptor descriptor;  // of the manifest
  std::string manifest_bytes;
  Manifest manifest;
  std::string config_bytes;
  ImageConfig config;
  std::optional<Descriptor> index;  // set when resolved through an index
};

struct FsckReport {
  int64_t blobs_checked = 0;
  int64_t images_checked = 0;
  std::vector<std::string> problems;  // one line per problem, naming digest/ref
  // Temp/trash/scratch dirs under snapshots/ (of a running or a killed
  // process; prune removes those of dead ones). Not problems.
  std::vector<std::string> leftovers;
  // Layers tagged images reference that are absent with a recorded source
  // (lazy base layers, oci/blob_sources.h). Not problems.
  int64_t lazy_layers = 0;
  // Platform manifests that tagged indexes list but the store does not have
  // (oci/image_index.h): with a recorded source ("remote", e.g. the other
  // platforms of an index pulled for one), without one (an OCI layout loaded
  // with some platforms only). Not problems: the present children are checked.
  int64_t remote_manifests = 0;
  int64_t absent_manifests = 0;
  bool ok() const { return problems.empty(); }
};

struct PruneOptions {
  // GC roots besides index.json: the digests of blobs to keep (e.g. the
  // builder's cache records, builder::CacheRecordRoots). Called once, after
  // the store is locked exclusively and before anything is deleted; an error
  // stops the prune with nothing deleted. Unset: index.json is the only root.
  std::function<Result<std::vector<Digest>>()> extra_roots;
};
struct PruneReport {
  int64_t blobs_removed = 0;
  int64_t bytes_freed = 0;
  int64_t ingest_removed = 0;
  int64_t snapshots_removed = 0;           // unused or incomplete
  int64_t snapshot_leftovers_removed = 0;  // temp/trash dirs of dead processes
  int64_t sources_removed = 0;             // blob source records of dropped blobs
};
struct RepairReport {
  int64_t snapshots_removed = 0;  // incomplete ones
  int64_t leftovers_removed = 0;
};

class Store {
 public:
  // Opens (creating if needed) the store at `root`. Takes the shared lock.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& root);
  // --root, else $STRATA_ROOT, else /var/lib/strata (root) or
  // $XDG_DATA_HOME/strata (~/.local/share/strata).
  static std::filesystem::path DefaultRoot();

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path BlobPath(const Digest& d) const { return blobs_->BlobPath(d); }
  std::filesystem::path IngestDir() const { return blobs_->IngestDir(); }
  // Owned by oci/snapshots (see above); callers go through its API.
  std::filesystem::path SnapshotsDir() const { return root_ / "snapshots"; }
  // Owned by oci/chunk_cache (see above).
  std::filesystem::path ChunksDir() const { return root_ / "chunks"; }
  // Owned by builder/build_cache (see above).
  std::filesystem::path CacheDir() const { return root_ / "cache"; }
  // Owned by oci/blob_sources (see above).
  std::filesystem::path SourcesDir() const { return root_ / "sources"; }

  // --- blobs (delegated to the LocalBlobStore) ---
  LocalBlobStore& blobs() { return *blobs_; }
  const LocalBlobStore& blobs() const { return *blobs_; }
  bool Has(const Digest& d) const { return blobs_->Has(d); }
  // NotFound if absent.
  Result<int64_t> Size(const Digest& d) const;
  Result<BlobWriter> Ingest() { return blobs_->Ingest(); }
  // Writes a small blob in one call (configs, manifests).
  Result<Descriptor> Put(std::string_view data, std::string media_type) {
    return PutBlob(*blobs_, data, std::move(media_type));
  }
  // Streams the whole blob through a verifying reader.
  Result<BlobReader> Open(const Digest& d) const { return blobs_->Open(d); }
  // Reads a small blob fully and verifies it (DataLoss if corrupt).
  Result<std::string> ReadBlob(const Digest& d) const { return oci::ReadBlob(*blobs_, d); }
  // Every digest under blobs/, sorted.
  Result<std::vector<Digest>> ListBlobs() const { return blobs_->List(); }

  // --- tags (index.json) ---
  Result<std::vector<TaggedImage>> ListImages() const;
  // Resolves a reference string: a tag, name@digest, a bare manifest digest
  // ("sha256:..."), or a unique hex prefix (>= 4) of a tagged image's digest.
  // NotFound naming the reference.
  Result<Descriptor> Resolve(std::string_view ref) const;
  Result<Descriptor> Resolve(const Reference& ref) const;
  // Points `ref` at `desc` (replacing what it pointed at; that image stays).
  // REQUIRES: desc's blob is in the store.
  Status Tag(const Reference& ref, const Descriptor& desc);
  // Removes the tag. NotFound if it does not exist. Blobs stay until prune.
  Status Untag(const Reference& ref);
  // Lists `desc` in index.json without a tag (no ref.name annotation), so
  // that prune keeps it and it resolves by digest; a no-op if index.json
  // already lists that digest. REQUIRES: desc's blob is in the store.
  Status AddUntagged(const Descriptor& desc);

  // --- images ---
  // Reads a manifest (or picks the entry for `platform` from an index) and its
  // config; verifies both blobs and that every layer blob is present. A layer
  // that is absent but has a recorded source (a lazy base layer, see
  // oci/blob_sources.h) is FailedPrecondition naming the layer and where it
  // is; one without is NotFound.
  Result<Image> LoadImage(const Descriptor& desc,
                          const Platform& platform = Platform::Host()) const;
  // The same without requiring the layer blobs (inspect, history, a build
  // that never reads the image's file system): manifest and config only.
  Result<Image> LoadImageMetadata(const Descriptor& desc,
                                  const Platform& platform = Platform::Host()) const;
  Result<Image> LoadImage(std::string_view ref) const;

  // --- maintenance ---
  // Verifies every blob, every tagged image, and every snapshot's proof of
  // completeness (oci/snapshots.h).
  FsckReport Fsck() const;
  // Marks from index.json (and opts.extra_roots), sweeps every other blob (and its
  // blob-source record, oci/blob_sources.h), ingest leftovers, unused
  // or incomplete snapshots and leftover snapshot temp/trash dirs. Unavailable if another strata
  // process is using the store. DataLoss naming the image (ref and digest), with nothing deleted,
  // if a tagged image's manifest, index or config cannot be read.
  Result<PruneReport> Prune(const PruneOptions& opts);
  // fsck --repair: removes incomplete snapshots and leftover snapshot
  // temp/trash dirs (blobs and tags are left alone). Unavailable if another
  // strata process is using the store.
  Result<RepairReport> RepairSnapshots();

  // DataLoss naming ROOT/index.json and the parse error if it is corrupt
  // (never NotFound: a caller must not mistake it for "no such image").
  Result<Index> ReadIndex() const;

  // --- verification and quarantine ---
  // ROOT/quarantine/<alg>-<hex>.<random> holds blobs found corrupt. They are
  // moved there (rename, never rewritten in place) so that a good copy can be
  // committed under the name again; nothing deletes them automatically.

  // Re-hashes blob `d`. OK if its bytes match its name; DataLoss naming the
  // blob and the digest its content has if not; NotFound if absent.
  Status VerifyBlob(const Digest& d) const;
  // Moves blob `d` out of blobs/ into ROOT/quarantine/ if it is corrupt and
  // returns where it went. Returns an empty path if there was nothing to
  // move: the blob is absent, or the file it took hashes to its name (another
  // process committed a good copy since the caller's check; it is linked
  // back). REQUIRES: the caller found `d` corrupt (VerifyBlob).
  Result<std::filesystem::path> QuarantineBlob(const Digest& d);

 private:
  Store(std::filesystem::path root, UniqueFd lock, std::unique_ptr<LocalBlobStore> blobs)
      : root_(std::move(root)), lock_(std::move(lock)), blobs_(std::move(blobs)) {}
  // Runs `fn` with index.json locked exclusively; `fn` edits the index in
  // place and it is written back (atomically) if `fn` succeeds.
  Status UpdateIndex(const std::function<Status(Index&)>& fn) const;
  // Upgrades our shared ROOT/lock to exclusive without waiting (Unavailable
  // while another strata process holds it) / back to shared.
  Status LockExclusive();
  void UnlockExclusive();
  std::filesystem::path root_;
  UniqueFd lock_;
  std::unique_ptr<LocalBlobStore> blobs_;
};

// InvalidArgument unless the manifest lists exactly one layer per config
// diff_id (an image whose manifest and config disagree cannot be unpacked).
Status CheckLayersMatchDiffIds(const Image& image);

// The annotation value strata writes for a tag (familiar form).
std::string RefNameAnnotation(const Reference& ref);

}  // namespace strata::oci
