#include "oci/tar_chunker.h"

#include <limits>

namespace strata::oci {

uint64_t TarChunker::NameHash(std::string_view path) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : path) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

Status TarChunker::OnEntryHeader(uint64_t offset, std::string_view path, int64_t data_size) {
  if (offset < last_offset_) {
    return MakeError(ErrorCode::kInvalidArgument, "tar entry {} at offset {} before offset {}",
                     path, offset, last_offset_);
  }
  last_offset_ = offset;
  pending_big_size_ = -1;
  const bool big = data_size >= 0 && static_cast<uint64_t>(data_size) >= kBigEntry;
  const uint64_t since = offset - last_cut_;
  bool cut = prev_big_ || big || since >= kMaxChunk ||
             (since >= kMinChunk && NameHash(path) % kCutModulus == 0);
  prev_big_ = false;
  if (cut && offset > last_cut_) {
    cuts_.push_back(offset);
    last_cut_ = offset;
  }
  if (big) pending_big_size_ = data_size;
  return OkStatus();
}

Status TarChunker::OnEntryData(uint64_t offset) {
  if (offset < last_offset_) {
    return MakeError(ErrorCode::kInvalidArgument, "tar data at offset {} before offset {}", offset,
                     last_offset_);
  }
  last_offset_ = offset;
  if (pending_big_size_ < 0) return OkStatus();
  const uint64_t size = static_cast<uint64_t>(pending_big_size_);
  pending_big_size_ = -1;
  prev_big_ = true;
  big_start_ = offset;
  big_end_ = offset + size;
  // The last periodic cut inside the data (the next header cuts anyway).
  const uint64_t pieces = (size - 1) / kBigEntry;
  if (pieces > 0) last_cut_ = offset + pieces * kBigEntry;
  return OkStatus();
}

uint64_t TarChunker::NextCutAfter(uint64_t pos) {
  while (!cuts_.empty() && cuts_.front() <= pos) cuts_.pop_front();
  uint64_t next = cuts_.empty() ? std::numeric_limits<uint64_t>::max() : cuts_.front();
  if (pos < big_end_) {
    // Smallest big_start_ + k * kBigEntry > pos with k >= 1, inside the data.
    uint64_t k = pos < big_start_ ? 1 : (pos - big_start_) / kBigEntry + 1;
    uint64_t c = big_start_ + k * kBigEntry;
    if (c < big_end_ && c < next) next = c;
  }
  return next;
}

bool TarChunker::CutAt(uint64_t pos) {
  while (!cuts_.empty() && cuts_.front() < pos) cuts_.pop_front();
  bool cut = !cuts_.empty() && cuts_.front() == pos;
  if (cut) cuts_.pop_front();
  if (!cut && pos > big_start_ && pos < big_end_ && (pos - big_start_) % kBigEntry == 0) cut = true;
  return cut;
}

}  // namespace strata::oci
