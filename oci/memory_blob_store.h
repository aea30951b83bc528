// MemoryBlobStore: a BlobStore held in memory, for tests and for callers that
// want a scratch content store. Same contract as every BlobStore (verified by
// tests/oci/blob_store_conformance_test.cc): a writer's bytes are invisible
// until Commit verifies them; committed content is immutable and shared with
// open readers (deleting a blob does not disturb a reader of it).
//
// Thread-safety: every method may be called from several threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "oci/blob_store.h"

namespace strata::oci {

class MemoryBlobStore final : public BlobStore {
 public:
  MemoryBlobStore() : state_(std::make_shared<State>()) {}

  Result<BlobInfo> Stat(const Digest& d) const override;
  Result<std::unique_ptr<BlobReadStream>> OpenBlob(const Digest& d) const override;
  Result<std::unique_ptr<BlobIngestWriter>> NewWriter() override;
  Status Delete(const Digest& d) override;
  Status Walk(const std::function<Status(const BlobInfo&)>& fn) const override;

  // Writers created and not yet committed or destroyed.
  int open_writers() const;
  // Test hook: replaces the stored bytes of `d` (which must exist) with
  // `bytes` without renaming it, as disk corruption would.
  void CorruptForTesting(const Digest& d, std::string bytes);
  // Test hook: the stored buffer of `d` (nullptr if absent); it changes only
  // when the blob is replaced.
  const void* StorageForTesting(const Digest& d) const;

  // Shared by the store and its writers (a writer may outlive the store).
  struct State {
    mutable std::mutex mu;
    std::map<Digest, std::shared_ptr<const std::string>> blobs;
    int open_writers = 0;
  };

 private:
  std::shared_ptr<State> state_;
};

}  // namespace strata::oci
