// SBOM: the software packages in an image's flattened root file system, as
// an SPDX 2.3 JSON document (the form BuildKit attaches; in-toto predicate
// https://spdx.dev/Document).
//
// ScanRootfs reads, inside `rootfs` only (oci/util/in_root.h: every path is
// resolved in the root, the tree walk opens each entry relative to its
// parent with O_NOFOLLOW, so no symlink of the image is ever followed out of
// it):
//   dpkg    /var/lib/dpkg/status (entries whose Status is "... installed")
//   apk     /lib/apk/db/installed
//   rpm     NOT read: the rpm database (sqlite / Berkeley DB / ndb) needs a
//           reader strata does not have. A database found at one of its
//           known places gives a warning naming it, never silence.
//   python  every */<name>.dist-info/METADATA (Name, Version, License)
//   npm     every node_modules/<name>/package.json and
//           node_modules/@scope/<name>/package.json (name, version, license)
//   go      executable ELF files with Go's build information (Go >= 1.18,
//           the "\xff Go buildinf:" header with inline strings): the main
//           module and its dependencies.
// Package URLs (purl) name each one: pkg:deb/<os id>/<name>@<version>?arch=,
// pkg:apk/<os id>/..., pkg:pypi/..., pkg:npm/..., pkg:golang/....
//
// The document is deterministic: packages sorted by (type, name, version,
// location), ids numbered in that order, times given by the caller.
// Pure functions besides ScanRootfs (which only reads). Thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/util/error.h"

namespace strata::builder {

struct SbomPackage {
  std::string type;  // "deb", "apk", "pypi", "npm", "golang"
  std::string name;
  std::string version;
  std::string arch;      // deb/apk
  std::string license;   // as the package states it ("" if unknown)
  std::string source;    // deb Source / apk origin, "" if none
  std::string location;  // the file it was found in, absolute in the image
  std::string purl;
  bool operator==(const SbomPackage&) const = default;
};

struct SbomScan {
  std::vector<SbomPackage> packages;  // sorted (see above)
  std::vector<std::string> warnings;  // e.g. the rpm database that was not read
};

// Bounds of the tree walk (a hostile image cannot make it run forever).
struct SbomLimits {
  int max_depth = 64;
  int64_t max_entries = 2'000'000;
  int64_t max_go_binary_bytes = int64_t{1} << 30;  // larger files are not scanned
};

// Scans `rootfs` (an unpacked image root). Errors only for a root that
// cannot be opened or a read error of a database file; malformed package
// metadata is skipped with a warning naming the file.
Result<SbomScan> ScanRootfs(const std::filesystem::path& rootfs, const SbomLimits& limits = {});

// The parsers, exposed for tests. `os_id` is /etc/os-release's ID ("" if none).
std::vector<SbomPackage> ParseDpkgStatus(std::string_view text, std::string_view os_id);
std::vector<SbomPackage> ParseApkInstalled(std::string_view text, std::string_view os_id);
// nullopt-like: a package with an empty name means "not a package".
SbomPackage ParsePythonMetadata(std::string_view text);
SbomPackage ParsePackageJson(std::string_view text);
// The Go build information in `bytes` (which start at the "\xff Go buildinf:"
// header): the main module then the dependencies. Empty if the header is of
// the old pointer form or malformed.
std::vector<SbomPackage> ParseGoBuildInfo(std::string_view bytes);

struct SpdxOptions {
  std::string name;          // the document's and the image package's name
  std::string image_digest;  // "sha256:..." of the image manifest
  std::string created;       // RFC 3339, seconds, "Z"
  std::string tool;          // "strata-0.1"
};
// The SPDX 2.3 document of `scan`: an image package (primaryPackagePurpose
// CONTAINER) the document DESCRIBES and that CONTAINS every package.
nlohmann::json SpdxDocument(const SbomScan& scan, const SpdxOptions& options);

}  // namespace strata::builder
