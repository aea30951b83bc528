#include "builder/engine/add_archive.h"

#include <cstring>

#include "oci/compress.h"

namespace strata::builder {

Result<std::unique_ptr<oci::ByteSource>> OpenDecompressed(const std::filesystem::path& path) {
  // The one decompressor (oci/compress.h): gzip and zstd in-process, xz,
  // bzip2 and lz4 through libarchive's in-process filters.
  return oci::OpenDecompressedFile(path);
}

Result<bool> IsTarArchive(const std::filesystem::path& path) {
  STRATA_ASSIGN_OR_RETURN(auto src, OpenDecompressed(path));
  char head[512];
  size_t got = 0;
  while (got < sizeof(head)) {
    auto n = src->Read(head + got, sizeof(head) - got);
    if (!n) return false;  // not decodable: not an archive we extract
    if (*n == 0) break;
    got += *n;
  }
  return got == sizeof(head) && std::memcmp(head + 257, "ustar", 5) == 0;
}

}  // namespace strata::builder
