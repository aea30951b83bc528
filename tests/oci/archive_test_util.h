// Helpers for the archive tests: tar and gzip in memory, images in a store,
// and a fingerprint of a store's blobs/ and index.json to prove a failed load
// changed nothing.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kCharDevice };
  std::string name;
  std::string content;  // file bytes, or the link target
  Type type = Type::kFile;
};

// An uncompressed pax tar of `entries`, in order.
std::string MakeTar(const std::vector<TarEntry>& entries);
// gzip (RFC 1952) of `data`.
std::string Gzip(std::string_view data);
// Regular files of a tar (compressed or not) at `path`, name -> content.
std::map<std::string, std::string> ReadTarFiles(const std::filesystem::path& path);
// Writes `files` as an uncompressed tar (name order).
void WriteTarFiles(const std::filesystem::path& path,
                   const std::map<std::string, std::string>& files);

enum class LayerCodec { kNone, kGzip, kZstd };

// Puts an image with one layer per tar in `layer_tars` (compressed with
// `codec`), a linux config with `cmd`, an OCI manifest, and tags it `ref`.
Result<Descriptor> AddImage(Store& store, const std::string& ref,
                            const std::vector<std::string>& layer_tars,
                            LayerCodec codec = LayerCodec::kGzip,
                            std::vector<std::string> cmd = {"/bin/sh"});

// Sorted listing of blobs/ (name and size) followed by the bytes of
// index.json: equal fingerprints mean the store is unchanged.
std::string StoreFingerprint(const Store& store);

}  // namespace strata::oci::testing
