#include "oci/memory_blob_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace strata::oci {
namespace {

class MemoryReader final : public BlobReadStream {
 public:
  MemoryReader(Digest d, std::shared_ptr<const std::string> bytes)
      : digest_(std::move(d)), bytes_(std::move(bytes)) {}

  Result<size_t> Read(void* buf, size_t size) override {
    if (size == 0) return 0;
    size_t n = std::min(size, bytes_->size() - pos_);
    if (n > 0) {
      std::memcpy(buf, bytes_->data() + pos_, n);
      hasher_.Update(buf, n);
      pos_ += n;
      return n;
    }
    if (!verified_) {
      Digest actual = hasher_.Finish();
      if (actual != digest_) {
        return MakeError(ErrorCode::kDataLoss, "blob {} is corrupt: content hashes to {}",
                         digest_.ToString(), actual.ToString());
      }
      verified_ = true;
    }
    return 0;
  }
  int64_t size() const override { return static_cast<int64_t>(bytes_->size()); }
  const Digest& digest() const override { return digest_; }

 private:
  Digest digest_;
  std::shared_ptr<const std::string> bytes_;
  size_t pos_ = 0;
  Digester hasher_;
  bool verified_ = false;
};

class MemoryWriter final : public BlobIngestWriter {
 public:
  explicit MemoryWriter(std::shared_ptr<MemoryBlobStore::State> state) : state_(std::move(state)) {
    std::lock_guard lock(state_->mu);
    ++state_->open_writers;
  }
  ~MemoryWriter() override { Finish(); }

  Status Write(const void* data, size_t size) override {
    if (done_) return MakeError(ErrorCode::kFailedPrecondition, "write after commit");
    hasher_.Update(data, size);
    bytes_.append(static_cast<const char*>(data), size);
    return OkStatus();
  }
  uint64_t written() const override { return hasher_.bytes(); }

  Result<Descriptor> Commit(std::string media_type, std::optional<Digest> expected,
                            int64_t expected_size) override {
    if (done_) return MakeError(ErrorCode::kFailedPrecondition, "blob already committed");
    Finish();
    const auto size = static_cast<int64_t>(bytes_.size());
    Digest actual = hasher_.Finish();
    if (expected_size >= 0 && size != expected_size) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "blob {}: size mismatch: expected {} bytes, got {}",
                       expected ? expected->ToString() : actual.ToString(), expected_size, size);
    }
    if (expected && *expected != actual) {
      return MakeError(ErrorCode::kFailedPrecondition, "digest mismatch: expected {}, got {}",
                       expected->ToString(), actual.ToString());
    }
    {
      std::lock_guard lock(state_->mu);
      // Present content is never replaced.
      state_->blobs.try_emplace(actual, std::make_shared<const std::string>(std::move(bytes_)));
    }
    bytes_.clear();
    return Descriptor::Of(std::move(media_type), actual, size);
  }

 private:
  void Finish() {
    if (done_) return;
    done_ = true;
    std::lock_guard lock(state_->mu);
    --state_->open_writers;
  }
  std::shared_ptr<MemoryBlobStore::State> state_;
  std::string bytes_;
  Digester hasher_;
  bool done_ = false;
};

}  // namespace

Result<BlobInfo> MemoryBlobStore::Stat(const Digest& d) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(d);
  if (it == state_->blobs.end()) {
    return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
  }
  return BlobInfo{d, static_cast<int64_t>(it->second->size())};
}

Result<std::unique_ptr<BlobReadStream>> MemoryBlobStore::OpenBlob(const Digest& d) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(d);
  if (it == state_->blobs.end()) {
    return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
  }
  return std::unique_ptr<BlobReadStream>(new MemoryReader(d, it->second));
}

Result<std::unique_ptr<BlobIngestWriter>> MemoryBlobStore::NewWriter() {
  return std::unique_ptr<BlobIngestWriter>(new MemoryWriter(state_));
}

Status MemoryBlobStore::Delete(const Digest& d) {
  std::lock_guard lock(state_->mu);
  if (state_->blobs.erase(d) == 0) {
    return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
  }
  return OkStatus();
}

Status MemoryBlobStore::Walk(const std::function<Status(const BlobInfo&)>& fn) const {
  std::vector<BlobInfo> found;
  {
    std::lock_guard lock(state_->mu);
    for (const auto& [d, bytes] : state_->blobs) {
      found.push_back({d, static_cast<int64_t>(bytes->size())});
    }
  }
  for (const auto& info : found) STRATA_RETURN_IF_ERROR(fn(info));
  return OkStatus();
}

int MemoryBlobStore::open_writers() const {
  std::lock_guard lock(state_->mu);
  return state_->open_writers;
}

const void* MemoryBlobStore::StorageForTesting(const Digest& d) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(d);
  return it == state_->blobs.end() ? nullptr : it->second.get();
}

void MemoryBlobStore::CorruptForTesting(const Digest& d, std::string bytes) {
  std::lock_guard lock(state_->mu);
  state_->blobs[d] = std::make_shared<const std::string>(std::move(bytes));
}

}  // namespace strata::oci
