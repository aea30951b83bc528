#include "builder/engine/add_archive.h"

#include <archive.h>

#include <cstring>

#include <fmt/format.h>

namespace strata::builder {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

class DecompressedSource : public oci::ByteSource {
 public:
  explicit DecompressedSource(std::unique_ptr<archive, ArchiveDeleter> a, std::string name)
      : a_(std::move(a)), name_(std::move(name)) {}
  Result<size_t> Read(void* buf, size_t size) override {
    la_ssize_t n = archive_read_data(a_.get(), buf, size);
    if (n < 0) {
      return MakeError(ErrorCode::kDataLoss, "decompress {}: {}", name_,
                       archive_error_string(a_.get()) ? archive_error_string(a_.get()) : "error");
    }
    return static_cast<size_t>(n);
  }

 private:
  std::unique_ptr<archive, ArchiveDeleter> a_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<oci::ByteSource>> OpenDecompressed(const std::filesystem::path& path) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
  // Only in-process decoders; no archive_read_support_filter_all(), which may
  // run external programs.
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_lz4(a.get());
  archive_read_support_format_raw(a.get());
  archive_read_support_format_empty(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return MakeError(ErrorCode::kInvalidArgument, "open {}: {}", path.string(),
                     archive_error_string(a.get()) ? archive_error_string(a.get()) : "error");
  }
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(a.get(), &entry);
  if (rc == ARCHIVE_EOF) {
    return std::unique_ptr<oci::ByteSource>(new DecompressedSource(std::move(a), path.string()));
  }
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
    return MakeError(ErrorCode::kInvalidArgument, "read {}: {}", path.string(),
                     archive_error_string(a.get()) ? archive_error_string(a.get()) : "error");
  }
  return std::unique_ptr<oci::ByteSource>(new DecompressedSource(std::move(a), path.string()));
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
