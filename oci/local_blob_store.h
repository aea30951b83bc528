// LocalBlobStore: the blob part of the on-disk store (oci::Store owns one).
//
//   ROOT/blobs/<alg>/<hex>   every blob, mode 0444, never opened for writing
//                            once committed
//   ROOT/ingest/<random>     partial writes, hashed while written; Commit
//                            verifies digest and size, fsyncs, hard-links the
//                            file into blobs/ (link never replaces: a blob is
//                            never rewritten, even when two processes commit
//                            the same content at once), unlinks it and fsyncs
//                            blobs/<alg>/. Leftovers of killed processes are
//                            ignored; Store::Prune removes them.
//
// Thread-safety: as BlobStore; any number of processes may share ROOT (no
// lock is needed: content-addressed names, link(2) for commits).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "oci/blob_store.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {

// Streaming writer into ROOT/ingest. Destroying an uncommitted writer removes
// its ingest file.
class BlobWriter final : public BlobIngestWriter {
 public:
  ~BlobWriter() override;
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  BlobWriter(const BlobWriter&) = delete;

  Status Write(const void* data, size_t size) override;
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  uint64_t written() const override { return hasher_.bytes(); }
  // As BlobIngestWriter::Commit; the ingest file is removed on a mismatch.
  Result<Descriptor> Commit(std::string media_type, std::optional<Digest> expected = std::nullopt,
                            int64_t expected_size = -1) override;

 private:
  friend class LocalBlobStore;
  BlobWriter(std::filesystem::path blobs_dir, std::filesystem::path tmp, UniqueFd fd);
  std::filesystem::path blobs_dir_;  // ROOT/blobs
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
class BlobReader final : public BlobReadStream {
 public:
  // Reads up to `size` bytes; 0 at the end (after verification succeeded).
  Result<size_t> Read(void* buf, size_t size) override;
  int64_t size() const override { return size_; }
  const Digest& digest() const override { return digest_; }

 private:
  friend class LocalBlobStore;
  BlobReader(Digest d, UniqueFd fd, int64_t size)
      : digest_(std::move(d)), fd_(std::move(fd)), size_(size) {}
  Digest digest_;
  UniqueFd fd_;
  int64_t size_;
  Digester hasher_;
  bool verified_ = false;
};

class LocalBlobStore final : public BlobStore {
 public:
  // Creates ROOT/blobs/sha256 and ROOT/ingest if needed.
  static Result<std::unique_ptr<LocalBlobStore>> Open(const std::filesystem::path& root);

  std::filesystem::path BlobPath(const Digest& d) const;
  const std::filesystem::path& IngestDir() const { return ingest_; }

  // The concrete reader and writer (by value, no allocation).
  Result<BlobWriter> Ingest();
  Result<BlobReader> Open(const Digest& d) const;

  Result<BlobInfo> Stat(const Digest& d) const override;
  Result<std::unique_ptr<BlobReadStream>> OpenBlob(const Digest& d) const override;
  Result<std::unique_ptr<BlobIngestWriter>> NewWriter() override;
  Status Delete(const Digest& d) override;
  Status Walk(const std::function<Status(const BlobInfo&)>& fn) const override;

 private:
  explicit LocalBlobStore(const std::filesystem::path& root)
      : blobs_(root / "blobs"), ingest_(root / "ingest") {}
  std::filesystem::path blobs_;
  std::filesystem::path ingest_;
};

}  // namespace strata::oci
