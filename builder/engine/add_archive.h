// ADD's local-archive rule: a file that is a tar archive, plain or compressed
// with gzip, bzip2, xz, zstd or lz4, is extracted at the destination; any other
// file (including a compressed non-tar, e.g. data.json.gz) is copied as is.
// Decompression runs in-process through libarchive's raw format (never an
// external filter program: the archive comes from the build context).
#pragma once

#include <filesystem>
#include <memory>

#include "oci/byte_stream.h"
#include "oci/util/error.h"

namespace strata::builder {

// The decompressed bytes of `path` (the file as is when not compressed).
Result<std::unique_ptr<oci::ByteSource>> OpenDecompressed(const std::filesystem::path& path);

// True when the decompressed content starts with a tar header ("ustar" at
// offset 257). NotFound / errno-based errors for unreadable files.
Result<bool> IsTarArchive(const std::filesystem::path& path);

}  // namespace strata::builder
