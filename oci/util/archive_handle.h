// RAII for libarchive: the one deleter family for `archive*` (read and
// write) and `archive_entry*`, the error text of a handle, and the one list
// of decompression filters strata lets libarchive use.
//
// This header includes <archive.h>: strata_oci links libarchive PRIVATE, so a
// target outside oci/ that includes it links PkgConfig::LIBARCHIVE itself.
// Handles are move-only and used from one thread.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

namespace strata {

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

// archive_error_string, never null.
inline std::string ArchiveErrorText(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// The compressions layers and archives come in (gzip, zstd, xz, bzip2, lz4),
// all decoded in-process. Not archive_read_support_filter_all: that also bids
// external programs (lrzip, lzop, grzip, ...), and a hostile archive must not
// pick a program for us to run.
inline void SupportInProcessFilters(archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_lz4(a);
}

}  // namespace strata
