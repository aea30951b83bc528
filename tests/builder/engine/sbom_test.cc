#include "builder/engine/sbom.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDpkgStatus = R"(Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
)";

TEST(SbomTest, DpkgStatusListsInstalledPackagesWithVersions) {
  auto pkgs = ParseDpkgStatus(kDpkgStatus, "debian");
  ASSERT_EQ(pkgs.size(), 2u);
  EXPECT_EQ(pkgs[0].name, "base-files");
  EXPECT_EQ(pkgs[0].version, "12.4+deb12u5");
  EXPECT_EQ(pkgs[0].purl, "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64");
  EXPECT_EQ(pkgs[1].name, "libc6");
  EXPECT_EQ(pkgs[1].source, "glibc");
  EXPECT_EQ(pkgs[1].purl, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc");
}

TEST(SbomTest, ApkInstalled) {
  auto pkgs = ParseApkInstalled(
      "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nP:busybox\nV:1.36.1-r5\n"
      "A:x86_64\nL:GPL-2.0-only\n\n",
      "alpine");
  ASSERT_EQ(pkgs.size(), 2u);
  EXPECT_EQ(pkgs[0].name, "musl");
  EXPECT_EQ(pkgs[0].license, "MIT");
  EXPECT_EQ(pkgs[1].purl, "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64");
}

TEST(SbomTest, PythonMetadataAndPackageJson) {
  auto py = ParsePythonMetadata(
      "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.2.3\nLicense: MIT\n\nName: not-this\n");
  EXPECT_EQ(py.name, "Foo_Bar");
  EXPECT_EQ(py.version, "1.2.3");
  EXPECT_EQ(py.purl, "pkg:pypi/foo-bar@1.2.3");
  EXPECT_TRUE(ParsePythonMetadata("Name: x\n").name.empty());  // no version
  auto js = ParsePackageJson(R"({"name":"@types/node","version":"20.1.0","license":"MIT"})");
  EXPECT_EQ(js.purl, "pkg:npm/%40types/node@20.1.0");
  EXPECT_TRUE(ParsePackageJson("{not json").name.empty());
}

// Go >= 1.18 build information: header, then varint-prefixed version and
// module info framed by 16-byte sentinels.
std::string GoBuildInfo(const std::string& version, const std::string& mod) {
  std::string b = "\xff Go buildinf:";
  b += '\x08';  // pointer size
  b += '\x02';  // flags: inline strings
  b.resize(32, '\0');
  auto put = [&](const std::string& s) {
    size_t n = s.size();
    while (n >= 0x80) {
      b += static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    b += static_cast<char>(n);
    b += s;
  };
  put(version);
  put(std::string(16, 'S') + mod + std::string(16, 'E'));
  return b;
}

TEST(SbomTest, GoBuildInfo) {
  std::string mod =
      "path\texample.com/app\nmod\texample.com/app\tv1.0.0\th1:x=\n"
      "dep\tgolang.org/x/sys\tv0.1.0\th1:y=\n";
  auto pkgs = ParseGoBuildInfo(GoBuildInfo("go1.21.3", mod));
  ASSERT_EQ(pkgs.size(), 3u);
  EXPECT_EQ(pkgs[0].name, "example.com/app");
  EXPECT_EQ(pkgs[0].purl, "pkg:golang/example.com/app@v1.0.0");
  EXPECT_EQ(pkgs[1].name, "golang.org/x/sys");
  EXPECT_EQ(pkgs[2].name, "stdlib");
  EXPECT_EQ(pkgs[2].version, "go1.21.3");
  std::string old = GoBuildInfo("go1.17", mod);
  old[15] = '\0';  // the old pointer form
  EXPECT_TRUE(ParseGoBuildInfo(old).empty());
}

void Write(const fs::path& p, std::string_view content, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  ::chmod(p.c_str(), mode);
}

TEST(SbomTest, ScanRootfsFindsEveryKindAndStaysInside) {
  auto dir = testing::MakeTempDir();
  fs::path root = dir.path() / "root";
  fs::path outside = dir.path() / "outside";
  Write(root / "etc/os-release", "NAME=\"Debian\"\nID=debian\n");
  Write(root / "var/lib/dpkg/status", kDpkgStatus);
  Write(root / "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
        "Name: requests\nVersion: 2.31.0\n");
  Write(root / "app/node_modules/left-pad/package.json",
        R"({"name":"left-pad","version":"1.3.0"})");
  Write(root / "app/node_modules/@scope/pkg/package.json",
        R"({"name":"@scope/pkg","version":"2.0.0"})");
  // Not a package: package.json of the app itself.
  Write(root / "app/package.json", R"({"name":"myapp","version":"9.9.9"})");
  std::string elf = std::string(
                        "\x7f"
                        "ELF",
                        4) +
                    std::string(60, '\0');
  std::string info = GoBuildInfo("go1.22.0", "path\tex.com/tool\nmod\tex.com/tool\tv0.2.0\t\n");
  Write(root / "usr/local/bin/tool", elf + info + std::string(100, '\0'), 0755);
  // Outside the root, reached only through symlinks: never read.
  Write(outside / "status", "Package: evil\nStatus: install ok installed\nVersion: 6.6.6\n");
  Write(outside / "nm/evil/package.json", R"({"name":"evil","version":"6.6.6"})");
  fs::create_directories(root / "srv/node_modules");
  fs::create_directory_symlink(outside / "nm/evil", root / "srv/node_modules/evil");
  fs::create_directories(root / "lib/apk/db");
  fs::create_symlink(outside / "status", root / "lib/apk/db/installed");
  // An rpm database is named, not skipped silently.
  Write(root / "var/lib/rpm/rpmdb.sqlite", "SQLite format 3");
  auto scan = ScanRootfs(root);
  ASSERT_OK(scan);
  std::vector<std::string> purls;
  for (const auto& p : scan->packages) purls.push_back(p.purl);
  EXPECT_THAT(purls, ::testing::ElementsAre(
                         "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64",
                         "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc",
                         "pkg:golang/ex.com/tool@v0.2.0", "pkg:golang/stdlib@go1.22.0",
                         "pkg:npm/%40scope/pkg@2.0.0", "pkg:npm/left-pad@1.3.0",
                         "pkg:pypi/requests@2.31.0"));
  ASSERT_EQ(scan->warnings.size(), 1u);
  EXPECT_THAT(scan->warnings[0], ::testing::HasSubstr("/var/lib/rpm/rpmdb.sqlite"));
  // The document: deterministic, ids unique, every package contained.
  SpdxOptions o{"app:1", "sha256:" + std::string(64, 'a'), "2024-01-01T00:00:00Z", "strata-0.1"};
  auto doc = SpdxDocument(*scan, o);
  EXPECT_EQ(doc["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(doc["packages"].size(), purls.size() + 1);
  EXPECT_EQ(doc["relationships"].size(), purls.size() + 1);
  EXPECT_EQ(doc["creationInfo"]["created"], "2024-01-01T00:00:00Z");
  std::set<std::string> ids;
  for (const auto& p : doc["packages"]) ids.insert(p["SPDXID"].get<std::string>());
  EXPECT_EQ(ids.size(), doc["packages"].size());
  auto again = ScanRootfs(root);
  ASSERT_OK(again);
  EXPECT_EQ(SpdxDocument(*again, o).dump(), doc.dump());
}

}  // namespace
}  // namespace strata::builder
