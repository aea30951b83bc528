#include "oci/blob_store.h"

#include <algorithm>

namespace strata::oci {

Result<std::vector<Digest>> BlobStore::List() const {
  std::vector<Digest> out;
  STRATA_RETURN_IF_ERROR(Walk([&](const BlobInfo& info) -> Status {
    out.push_back(info.digest);
    return OkStatus();
  }));
  std::sort(out.begin(), out.end());
  return out;
}

Result<Descriptor> PutBlob(BlobStore& store, std::string_view data, std::string media_type) {
  Digest d = Digest::Of(data);
  const auto size = static_cast<int64_t>(data.size());
  if (store.Has(d)) {
    // Content-addressed: present means done (fsck and every read verify).
    return Descriptor::Of(std::move(media_type), d, size);
  }
  STRATA_ASSIGN_OR_RETURN(auto w, store.NewWriter());
  STRATA_RETURN_IF_ERROR(w->Write(data));
  return w->Commit(std::move(media_type), d, size);
}

Result<std::string> ReadBlob(const BlobStore& store, const Digest& d) {
  STRATA_ASSIGN_OR_RETURN(auto r, store.OpenBlob(d));
  std::string out(static_cast<size_t>(std::max<int64_t>(r->size(), 0)), '\0');
  size_t off = 0;
  for (;;) {
    if (off == out.size()) out.resize(out.size() + 4096);
    STRATA_ASSIGN_OR_RETURN(size_t n, r->Read(out.data() + off, out.size() - off));
    if (n == 0) break;
    off += n;
  }
  out.resize(off);
  return out;
}

Result<Descriptor> IngestFrom(BlobStore& store, ByteSource& in, std::string media_type,
                              std::optional<Digest> expected, int64_t expected_size) {
  STRATA_ASSIGN_OR_RETURN(auto w, store.NewWriter());
  std::vector<char> buf(1 << 16);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, in.Read(buf.data(), buf.size()));
    if (n == 0) break;
    STRATA_RETURN_IF_ERROR(w->Write(buf.data(), n));
  }
  return w->Commit(std::move(media_type), std::move(expected), expected_size);
}

}  // namespace strata::oci
