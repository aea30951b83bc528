// Store: the local content store, an OCI image layout on disk.
//
//   ROOT/oci-layout            {"imageLayoutVersion":"1.0.0"}
//   ROOT/index.json            OCI index; each tag is one manifest descriptor
//                              annotated org.opencontainers.image.ref.name =
//                              the reference's familiar form ("hello:latest",
//                              "localhost:5000/app:1", "app@sha256:...") and
//                              io.containerd.image.name = the full name.
//   ROOT/blobs/sha256/<hex>    every blob, mode 0444, never opened for writing
//                              once committed
//   ROOT/ingest/<random>       partial writes; hashed while written, verified
//                              against the expected digest and size, fsynced,
//                              then hard-linked into blobs/ (no-replace) and
//                              unlinked. Leftovers are ignored; prune removes
//                              them.
//   ROOT/cache/<key>.json      build-cache records; prune keeps every digest
//                              listed in a record's "blobs" array
//   ROOT/snapshots/<chainID>/  unpacked layers: fs/ (the lowerdir) and
//                              snapshot.json (proof of completeness, written
//                              before the dir is renamed into place); temp
//                              and trash dirs are dot-named. Lifecycle in
//                              oci/snapshots.h.
//   ROOT/lock                  flock: every Store holds it shared for its
//                              lifetime; prune takes it exclusive, so it never
//                              sweeps a blob a running build or pull just wrote
//   ROOT/index.lock            flock held exclusive around each index.json
//                              read-modify-write (WriteFileAtomic)
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
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/util/error.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {

// Streaming writer into ingest/. Bytes are hashed as they are written.
// Destroying an uncommitted writer removes its ingest file.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  BlobWriter(const BlobWriter&) = delete;

  Status Write(const void* data, size_t size);
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  uint64_t written() const { return hasher_.bytes(); }

  // Verifies digest (if `expected` is set) and size (if >= 0), fsyncs and moves
  // the blob into blobs/. FailedPrecondition naming expected and actual digest
  // on mismatch (and the ingest file is removed). A blob that already exists
  // is success; it is not rewritten.
  Result<Descriptor> Commit(std::string media_type, std::optional<Digest> expected = std::nullopt,
                            int64_t expected_size = -1);

 private:
  friend class Store;
  BlobWriter(std::filesystem::path root, std::filesystem::path tmp, UniqueFd fd);
  std::filesystem::path root_;
  std::filesystem::path tmp_;
  UniqueFd fd_;
  Digester hasher_;
  bool done_ = false;
  uint64_t synced_ = 0;  // bytes whose writeback has been started
  static constexpr uint64_t kWritebackWindow = 8 << 20;
};

// Sequential reader of a stored blob that re-hashes what it reads. Reaching
// the end with bytes that do not match the name returns DataLoss: a corrupt
// blob is never served silently.
class BlobReader {
 public:
  // Reads up to `size` bytes; 0 at the end (after verification succeeded).
  Result<size_t> Read(void* buf, size_t size);
  int64_t size() const { return size_; }
  const Digest& digest() const { return digest_; }

 private:
  friend class Store;
  BlobReader(Digest d, UniqueFd fd, int64_t size)
      : digest_(std::move(d)), fd_(std::move(fd)), size_(size) {}
  Digest digest_;
  UniqueFd fd_;
  int64_t size_;
  Digester hasher_;
  bool verified_ = false;
};

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
  bool ok() const { return problems.empty(); }
};

struct PruneOptions {
  bool all = false;  // also drop build-cache records and what only they keep
};
struct PruneReport {
  int64_t blobs_removed = 0;
  int64_t bytes_freed = 0;
  int64_t ingest_removed = 0;
  int64_t snapshots_removed = 0;           // unused or incomplete
  int64_t snapshot_leftovers_removed = 0;  // temp/trash dirs of dead processes
  int64_t cache_records_removed = 0;
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
  std::filesystem::path BlobPath(const Digest& d) const;
  std::filesystem::path IngestDir() const { return root_ / "ingest"; }
  std::filesystem::path SnapshotsDir() const { return root_ / "snapshots"; }
  std::filesystem::path CacheDir() const { return root_ / "cache"; }

  // --- blobs ---
  bool Has(const Digest& d) const;
  Result<int64_t> Size(const Digest& d) const;
  Result<BlobWriter> Ingest();
  // Writes a small blob in one call (configs, manifests).
  Result<Descriptor> Put(std::string_view data, std::string media_type);
  // Streams the whole blob through a verifying reader.
  Result<BlobReader> Open(const Digest& d) const;
  // Reads a small blob fully and verifies it (DataLoss if corrupt).
  Result<std::string> ReadBlob(const Digest& d) const;
  // Every digest under blobs/.
  Result<std::vector<Digest>> ListBlobs() const;

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

  // --- images ---
  // Reads a manifest (or picks the entry for `platform` from an index) and its
  // config; verifies both blobs and that every layer blob is present.
  Result<Image> LoadImage(const Descriptor& desc,
                          const Platform& platform = Platform::Host()) const;
  Result<Image> LoadImage(std::string_view ref) const;

  // --- maintenance ---
  // Verifies every blob, every tagged image, and every snapshot's proof of
  // completeness (oci/snapshots.h).
  FsckReport Fsck() const;
  // Marks from index.json (and cache records unless opts.all), sweeps every
  // other blob, ingest leftovers, unused or incomplete snapshots and leftover
  // snapshot temp/trash dirs. Unavailable if another strata process is using
  // the store. DataLoss naming the image (ref and digest), with nothing
  // deleted, if a tagged image's manifest, index or config cannot be read.
  Result<PruneReport> Prune(const PruneOptions& opts);
  // fsck --repair: removes incomplete snapshots and leftover snapshot
  // temp/trash dirs (blobs and tags are left alone). Unavailable if another
  // strata process is using the store.
  Result<RepairReport> RepairSnapshots();

  // Runs `fn` with index.json locked exclusively.
  Status WithIndexLock(const std::function<Status()>& fn) const;
  // DataLoss naming ROOT/index.json and the parse error if it is corrupt
  // (never NotFound: a caller must not mistake it for "no such image").
  Result<Index> ReadIndex() const;
  Status WriteIndex(const Index& index) const;

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
  Store(std::filesystem::path root, UniqueFd lock)
      : root_(std::move(root)), lock_(std::move(lock)) {}
  // Upgrades our shared ROOT/lock to exclusive without waiting (Unavailable
  // while another strata process holds it) / back to shared.
  Status LockExclusive();
  void UnlockExclusive();
  std::filesystem::path root_;
  UniqueFd lock_;
};

// InvalidArgument unless the manifest lists exactly one layer per config
// diff_id (an image whose manifest and config disagree cannot be unpacked).
Status CheckLayersMatchDiffIds(const Image& image);

// The annotation value strata writes for a tag (familiar form).
std::string RefNameAnnotation(const Reference& ref);

}  // namespace strata::oci
