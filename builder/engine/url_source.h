// ADD <url>: sources downloaded through the injected UrlFetcher.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/engine/executor.h"
#include "oci/util/error.h"

namespace strata::builder {

// One downloaded URL: a 0600 file named after the URL's last path element
// ("index.html" when it has none), with the Last-Modified time as mtime.
struct Downloaded {
  std::filesystem::path file;
  std::string name;
  struct stat st {};
  std::string digest;  // "sha256:..." of the content
};

// Downloads every URL of `urls` into `dir` (which must exist) with
// `fetcher`. `checksum` ("" or a digest, ADD --checksum) must then match the
// one URL's content. A response without Last-Modified gets `default_mtime`.
Result<std::vector<Downloaded>> FetchUrls(const std::vector<std::string>& urls,
                                          const UrlFetcher& fetcher,
                                          const std::filesystem::path& dir,
                                          const std::string& checksum, int64_t default_mtime);

}  // namespace strata::builder
