// BlobStore: content-addressed blob storage, the seam containerd calls a
// content store. A blob is named by the digest of its bytes and never changes
// once committed.
//
// Writing goes through an ingest writer that hashes what it is given; Commit
// verifies the digest (and the size, when the caller knows it) and only then
// makes the blob visible, atomically. A failed or abandoned write leaves
// nothing visible. Committing content that is already present is success and
// does not touch the stored blob (it is never reopened for writing).
// Reading streams the blob through a reader that re-hashes it and fails with
// DataLoss at the end if the bytes do not match the name.
//
// Implementations: LocalBlobStore (ROOT/blobs + ROOT/ingest on disk, owned by
// oci::Store; oci/local_blob_store.h) and MemoryBlobStore (tests;
// oci/memory_blob_store.h). Both pass tests/oci/blob_store_conformance_test.cc.
//
// Thread-safety: a BlobStore may be used from several threads at once (and,
// for LocalBlobStore, several processes). A reader or writer is used from one
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/byte_stream.h"
#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/util/error.h"

namespace strata::oci {

struct BlobInfo {
  Digest digest;
  int64_t size = 0;
  bool operator==(const BlobInfo&) const = default;
};

// A verifying sequential reader of one blob.
class BlobReadStream : public ByteSource {
 public:
  // Reads up to `size` bytes; 0 at the end, after the content was verified.
  // DataLoss naming the blob if its bytes do not hash to its digest or run
  // past its size.
  Result<size_t> Read(void* buf, size_t size) override = 0;
  virtual int64_t size() const = 0;
  virtual const Digest& digest() const = 0;
};

// A streaming writer of one new blob. Destroying it before a successful
// Commit discards what was written.
class BlobIngestWriter {
 public:
  virtual ~BlobIngestWriter() = default;
  // FailedPrecondition after Commit.
  virtual Status Write(const void* data, size_t size) = 0;
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // Bytes written so far.
  virtual uint64_t written() const = 0;
  // Verifies the content against `expected` (if set) and `expected_size` (if
  // >= 0) and makes the blob visible under its digest. FailedPrecondition
  // naming expected and actual on a mismatch, and nothing is visible. Content
  // that is already stored is success (nothing is rewritten). A writer commits
  // at most once: FailedPrecondition on a second call.
  virtual Result<Descriptor> Commit(std::string media_type,
                                    std::optional<Digest> expected = std::nullopt,
                                    int64_t expected_size = -1) = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Size of a committed blob. NotFound if absent.
  virtual Result<BlobInfo> Stat(const Digest& d) const = 0;
  bool Has(const Digest& d) const { return Stat(d).has_value(); }
  // A verifying reader. NotFound if absent.
  virtual Result<std::unique_ptr<BlobReadStream>> OpenBlob(const Digest& d) const = 0;
  // A writer for new content (its digest is known only at Commit).
  virtual Result<std::unique_ptr<BlobIngestWriter>> NewWriter() = 0;
  // Removes a committed blob. NotFound if absent. Readers already open keep
  // reading the old bytes.
  virtual Status Delete(const Digest& d) = 0;
  // Calls `fn` for every committed blob, in no particular order; stops at
  // (and returns) the first error `fn` returns. `fn` may Delete the blob it
  // is given.
  virtual Status Walk(const std::function<Status(const BlobInfo&)>& fn) const = 0;

  // Every committed digest, sorted.
  Result<std::vector<Digest>> List() const;
};

// Writes a small blob in one call (configs, manifests); verified against its
// own digest, a no-op if present.
Result<Descriptor> PutBlob(BlobStore& store, std::string_view data, std::string media_type);
// Reads a whole (small) blob and verifies it: DataLoss if corrupt, NotFound
// if absent.
Result<std::string> ReadBlob(const BlobStore& store, const Digest& d);
// Copies everything `in` yields into a new blob and commits it (digest and
// size checked when given). Memory stays flat whatever the size.
Result<Descriptor> IngestFrom(BlobStore& store, ByteSource& in, std::string media_type,
                              std::optional<Digest> expected = std::nullopt,
                              int64_t expected_size = -1);

}  // namespace strata::oci
