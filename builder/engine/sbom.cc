#include "builder/engine/sbom.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "oci/digest.h"
#include "oci/util/in_root.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kGoMagic = "\xff Go buildinf:";
constexpr size_t kGoHeaderBytes = 32;
constexpr int64_t kMaxMetadataBytes = 16 << 20;  // a package database or metadata file

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Percent-encodes a purl component (RFC 3986 unreserved characters stay).
std::string PurlEscape(std::string_view s, bool keep_slash = false) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads an open regular file (at most `max` bytes; longer is an error).
Result<std::string> ReadFd(int fd, std::string_view what, int64_t max) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {}", what));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: larger than {} bytes", what, max);
    }
  }
}

// A regular file `rel` resolved inside the root; nullopt if absent or not a
// regular file (a symlink as the last component is not followed).
Result<std::optional<std::string>> ReadInRoot(const RootDir& root, std::string_view rel) {
  auto fd = root.OpenAt(rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fd) {
    auto code = fd.error().code();
    if (code == ErrorCode::kNotFound || code == ErrorCode::kInvalidArgument ||
        code == ErrorCode::kFailedPrecondition) {
      return std::optional<std::string>();
    }
    return Unexpected(fd.error());
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::optional<std::string>();
  STRATA_ASSIGN_OR_RETURN(auto text, ReadFd(fd->get(), rel, kMaxMetadataBytes));
  return std::optional<std::string>(std::move(text));
}

// A file of `dir_fd` by name, never following a symlink.
std::optional<std::string> ReadChild(int dir_fd, const char* name) {
  int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  UniqueFd owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  auto text = ReadFd(fd, name, kMaxMetadataBytes);
  if (!text) return std::nullopt;
  return std::move(*text);
}

// Unsigned LEB128 (Go's binary.Uvarint) at `pos`; advances it.
std::optional<uint64_t> Uvarint(std::string_view b, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && pos < b.size(); shift += 7) {
    auto c = static_cast<unsigned char>(b[pos++]);
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) return v;
  }
  return std::nullopt;
}

std::string OsReleaseId(const RootDir& root) {
  for (const char* p : {"etc/os-release", "usr/lib/os-release"}) {
    auto text = ReadInRoot(root, p);
    if (!text || !*text) continue;
    size_t i = 0;
    const std::string& t = **text;
    while (i < t.size()) {
      size_t j = t.find('\n', i);
      if (j == std::string::npos) j = t.size();
      std::string_view line(t.data() + i, j - i);
      i = j + 1;
      if (!line.starts_with("ID=")) continue;
      std::string_view v = Trim(line.substr(3));
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
      return LowerAscii(v);
    }
  }
  return "";
}

class Walker {
 public:
  Walker(const SbomLimits& limits, SbomScan& scan) : limits_(limits), scan_(scan) {}

  // Walks the directory `fd` (at image path `path`, "" for the root).
  void Walk(int fd, const std::string& path, const std::string& parent_name,
            const std::string& grandparent_name, int depth) {
    if (depth > limits_.max_depth) {
      Warn(fmt::format("{}/: deeper than {} levels, not scanned", path, limits_.max_depth));
      return;
    }
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return;
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      ::close(dup);
      return;
    }
    std::vector<std::pair<std::string, unsigned char>> entries;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      entries.emplace_back(e->d_name, e->d_type);
    }
    ::closedir(d);
    std::sort(entries.begin(), entries.end());
    const std::string name = path.empty() ? "" : path.substr(path.rfind('/') + 1);
    if (name.ends_with(".dist-info")) {
      if (auto text = ReadChild(fd, "METADATA")) {
        SbomPackage p = ParsePythonMetadata(*text);
        if (!p.name.empty()) {
          p.location = path + "/METADATA";
          scan_.packages.push_back(std::move(p));
        } else {
          Warn(fmt::format("{}/METADATA: no Name or Version", path));
        }
      }
    }
    if (parent_name == "node_modules" ||
        (grandparent_name == "node_modules" && parent_name.starts_with("@"))) {
      if (!name.starts_with("@") && !name.starts_with(".")) {
        if (auto text = ReadChild(fd, "package.json")) {
          SbomPackage p = ParsePackageJson(*text);
          if (!p.name.empty()) {
            p.location = path + "/package.json";
            scan_.packages.push_back(std::move(p));
          }
        }
      }
    }
    for (const auto& [child, type] : entries) {
      if (++entries_ > limits_.max_entries) {
        if (!truncated_) Warn(fmt::format("more than {} files: scan stopped", limits_.max_entries));
        truncated_ = true;
        return;
      }
      const std::string child_path = path + "/" + child;
      if (type == DT_DIR || type == DT_UNKNOWN) {
        int cfd = ::openat(fd, child.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (cfd >= 0) {
          UniqueFd owner(cfd);
          Walk(cfd, child_path, name, parent_name, depth + 1);
          continue;
        }
        if (type == DT_DIR) continue;
      }
      if (type == DT_REG || type == DT_UNKNOWN) ScanGoBinary(fd, child, child_path);
    }
  }

 private:
  void Warn(std::string w) { scan_.warnings.push_back(std::move(w)); }

  void ScanGoBinary(int dir_fd, const std::string& name, const std::string& path) {
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    UniqueFd owner(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0 ||
        st.st_size < 64 || st.st_size > limits_.max_go_binary_bytes) {
      return;
    }
    char head[4];
    if (::pread(fd, head, 4, 0) != 4 || std::memcmp(head,
                                                    "\x7f"
                                                    "ELF",
                                                    4) != 0)
      return;
    // The header is 16-byte aligned in the .go.buildinfo section; chunks
    // overlap by the magic's length so a header across a boundary is seen.
    constexpr size_t kChunk = 1 << 20;
    std::string buf(kChunk + kGoMagic.size(), '\0');
    for (off_t off = 0; off < st.st_size; off += static_cast<off_t>(kChunk)) {
      ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
      if (n <= 0) return;
      std::string_view view(buf.data(), static_cast<size_t>(n));
      for (size_t at = view.find(kGoMagic); at != std::string_view::npos;
           at = view.find(kGoMagic, at + 1)) {
        if ((off + static_cast<off_t>(at)) % 16 != 0) continue;
        std::string info(1 << 20, '\0');
        ssize_t m = ::pread(fd, info.data(), info.size(), off + static_cast<off_t>(at));
        if (m <= 0) return;
        info.resize(static_cast<size_t>(m));
        auto pkgs = ParseGoBuildInfo(info);
        if (pkgs.empty()) {
          Warn(fmt::format("{}: Go build information of an unsupported form (Go < 1.18?)", path));
          return;
        }
        for (auto& p : pkgs) {
          p.location = path;
          scan_.packages.push_back(std::move(p));
        }
        return;
      }
    }
  }

  const SbomLimits& limits_;
  SbomScan& scan_;
  int64_t entries_ = 0;
  bool truncated_ = false;
};

std::string Sanitize(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    out += (std::isalnum(c) || c == '.' || c == '-') ? static_cast<char>(c) : '-';
  }
  return out;
}

}  // namespace

std::vector<SbomPackage> ParseDpkgStatus(std::string_view text, std::string_view os_id) {
  std::vector<SbomPackage> out;
  std::map<std::string, std::string> fields;
  std::string last;
  auto flush = [&]() {
    auto get = [&](const char* k) {
      auto it = fields.find(k);
      return it == fields.end() ? std::string() : it->second;
    };
    const std::string status = get("status");
    if (!get("package").empty() && !get("version").empty() && status.ends_with(" installed")) {
      SbomPackage p;
      p.type = "deb";
      p.name = get("package");
      p.version = get("version");
      p.arch = get("architecture");
      p.source = get("source");
      if (auto sp = p.source.find(' '); sp != std::string::npos) p.source.resize(sp);
      p.location = "/var/lib/dpkg/status";
      const std::string ns = os_id.empty() ? "debian" : std::string(os_id);
      p.purl = fmt::format("pkg:deb/{}/{}@{}", PurlEscape(ns), PurlEscape(p.name),
                           PurlEscape(p.version));
      std::vector<std::string> q;
      if (!p.arch.empty()) q.push_back("arch=" + PurlEscape(p.arch));
      if (!p.source.empty() && p.source != p.name) q.push_back("upstream=" + PurlEscape(p.source));
      for (size_t i = 0; i < q.size(); ++i) p.purl += (i == 0 ? "?" : "&") + q[i];
      out.push_back(std::move(p));
    }
    fields.clear();
    last.clear();
  };
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      flush();
      if (j == text.size()) break;
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;  // continuation
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    last = LowerAscii(line.substr(0, colon));
    fields[last] = std::string(Trim(line.substr(colon + 1)));
    if (j == text.size()) break;
  }
  flush();
  return out;
}

std::vector<SbomPackage> ParseApkInstalled(std::string_view text, std::string_view os_id) {
  std::vector<SbomPackage> out;
  SbomPackage cur;
  auto flush = [&]() {
    if (!cur.name.empty() && !cur.version.empty()) {
      cur.type = "apk";
      cur.location = "/lib/apk/db/installed";
      const std::string ns = os_id.empty() ? "alpine" : std::string(os_id);
      cur.purl = fmt::format("pkg:apk/{}/{}@{}", PurlEscape(ns), PurlEscape(cur.name),
                             PurlEscape(cur.version));
      std::vector<std::string> q;
      if (!cur.arch.empty()) q.push_back("arch=" + PurlEscape(cur.arch));
      if (!cur.source.empty() && cur.source != cur.name) {
        q.push_back("upstream=" + PurlEscape(cur.source));
      }
      for (size_t i = 0; i < q.size(); ++i) cur.purl += (i == 0 ? "?" : "&") + q[i];
      out.push_back(std::move(cur));
    }
    cur = SbomPackage();
  };
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.size() < 2 || line[1] != ':') continue;
    std::string v(line.substr(2));
    switch (line[0]) {
      case 'P':
        cur.name = v;
        break;
      case 'V':
        cur.version = v;
        break;
      case 'A':
        cur.arch = v;
        break;
      case 'L':
        cur.license = v;
        break;
      case 'o':
        cur.source = v;
        break;
      default:
        break;
    }
  }
  flush();
  return out;
}

SbomPackage ParsePythonMetadata(std::string_view text) {
  SbomPackage p;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the headers end; the description follows
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || line.front() == ' ') continue;
    std::string key = LowerAscii(line.substr(0, colon));
    std::string_view v = Trim(line.substr(colon + 1));
    if (key == "name" && p.name.empty()) p.name = v;
    if (key == "version" && p.version.empty()) p.version = v;
    if (key == "license" && p.license.empty()) p.license = v;
  }
  if (p.name.empty() || p.version.empty()) return SbomPackage();
  p.type = "pypi";
  // PEP 503 normalization, as purl's pypi type wants.
  std::string norm;
  for (char c : LowerAscii(p.name)) {
    bool sep = c == '_' || c == '.' || c == '-';
    if (sep) {
      if (norm.empty() || norm.back() != '-') norm += '-';
    } else {
      norm += c;
    }
  }
  p.purl = fmt::format("pkg:pypi/{}@{}", PurlEscape(norm), PurlEscape(p.version));
  return p;
}

SbomPackage ParsePackageJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SbomPackage p;
  if (!j.is_object()) return p;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  p.name = str("name");
  p.version = str("version");
  p.license = str("license");
  if (p.name.empty() || p.version.empty()) return SbomPackage();
  p.type = "npm";
  if (p.name.starts_with("@") && p.name.find('/') != std::string::npos) {
    size_t slash = p.name.find('/');
    p.purl = fmt::format("pkg:npm/{}/{}@{}", PurlEscape(p.name.substr(0, slash)),
                         PurlEscape(p.name.substr(slash + 1)), PurlEscape(p.version));
  } else {
    p.purl = fmt::format("pkg:npm/{}@{}", PurlEscape(p.name), PurlEscape(p.version));
  }
  return p;
}

std::vector<SbomPackage> ParseGoBuildInfo(std::string_view b) {
  std::vector<SbomPackage> out;
  if (b.size() < kGoHeaderBytes || !b.starts_with(kGoMagic)) return out;
  const auto flags = static_cast<unsigned char>(b[15]);
  if ((flags & 0x2) == 0) return out;  // the pre-1.18 pointer form
  size_t pos = kGoHeaderBytes;
  auto str = [&]() -> std::optional<std::string_view> {
    auto n = Uvarint(b, pos);
    if (!n || *n > b.size() - pos) return std::nullopt;
    std::string_view s = b.substr(pos, *n);
    pos += *n;
    return s;
  };
  auto go_version = str();
  auto mod = str();
  if (!go_version || !mod) return out;
  std::string_view m = *mod;
  // The module info is framed by two 16-byte sentinels.
  if (m.size() >= 33 && m[m.size() - 17] == '\n') {
    m = m.substr(16, m.size() - 32);
  }
  auto add = [&](std::string_view path, std::string_view version) {
    SbomPackage p;
    p.type = "golang";
    p.name = path;
    p.version = version;
    p.purl = fmt::format("pkg:golang/{}@{}", PurlEscape(path, true), PurlEscape(version));
    out.push_back(std::move(p));
  };
  size_t i = 0;
  while (i < m.size()) {
    size_t j = m.find('\n', i);
    if (j == std::string_view::npos) j = m.size();
    std::string_view line = m.substr(i, j - i);
    i = j + 1;
    std::vector<std::string_view> f;
    size_t k = 0;
    while (k <= line.size()) {
      size_t t = line.find('\t', k);
      if (t == std::string_view::npos) t = line.size();
      f.push_back(line.substr(k, t - k));
      k = t + 1;
    }
    if (f.size() >= 3 && (f[0] == "mod" || f[0] == "dep") && !f[1].empty()) {
      add(f[1], f[2]);
    } else if (f.size() >= 3 && f[0] == "=>" && !out.empty()) {
      out.back().name = std::string(f[1]);  // a replaced module: what was built
      out.back().version = std::string(f[2]);
      out.back().purl = fmt::format("pkg:golang/{}@{}", PurlEscape(f[1], true), PurlEscape(f[2]));
    }
  }
  // The toolchain itself, as syft lists it.
  if (!go_version->empty()) add("stdlib", *go_version);
  return out;
}

Result<SbomScan> ScanRootfs(const fs::path& rootfs, const SbomLimits& limits) {
  STRATA_ASSIGN_OR_RETURN(auto root, RootDir::Open(rootfs));
  SbomScan scan;
  const std::string os_id = OsReleaseId(root);
  STRATA_ASSIGN_OR_RETURN(auto dpkg, ReadInRoot(root, "var/lib/dpkg/status"));
  if (dpkg) {
    for (auto& p : ParseDpkgStatus(*dpkg, os_id)) scan.packages.push_back(std::move(p));
  }
  STRATA_ASSIGN_OR_RETURN(auto apk, ReadInRoot(root, "lib/apk/db/installed"));
  if (apk) {
    for (auto& p : ParseApkInstalled(*apk, os_id)) scan.packages.push_back(std::move(p));
  }
  for (const char* rpmdb : {"var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages",
                            "var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/rpmdb.sqlite",
                            "usr/lib/sysimage/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db"}) {
    auto fd = root.OpenAt(rpmdb, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (fd) {
      scan.warnings.push_back(fmt::format(
          "/{}: rpm packages are not listed in the SBOM (strata cannot read rpm databases)",
          rpmdb));
    }
  }
  Walker w(limits, scan);
  w.Walk(root.fd(), "", "", "", 0);
  std::sort(scan.packages.begin(), scan.packages.end(),
            [](const SbomPackage& a, const SbomPackage& b) {
              return std::tie(a.type, a.name, a.version, a.location, a.purl) <
                     std::tie(b.type, b.name, b.version, b.location, b.purl);
            });
  scan.packages.erase(std::unique(scan.packages.begin(), scan.packages.end()), scan.packages.end());
  return scan;
}

nlohmann::json SpdxDocument(const SbomScan& scan, const SpdxOptions& o) {
  using nlohmann::json;
  json packages = json::array();
  json relationships = json::array();
  json image = {{"SPDXID", "SPDXRef-Image"},
                {"name", o.name},
                {"versionInfo", o.image_digest},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"licenseConcluded", "NOASSERTION"},
                {"licenseDeclared", "NOASSERTION"},
                {"copyrightText", "NOASSERTION"},
                {"primaryPackagePurpose", "CONTAINER"}};
  packages.push_back(image);
  relationships.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"},
                           {"relationshipType", "DESCRIBES"},
                           {"relatedSpdxElement", "SPDXRef-Image"}});
  size_t n = 0;
  for (const auto& p : scan.packages) {
    const std::string id = fmt::format("SPDXRef-Package-{}-{}-{}", Sanitize(p.type), ++n,
                                       Sanitize(p.name).substr(0, 64));
    json pkg = {{"SPDXID", id},
                {"name", p.name},
                {"versionInfo", p.version},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"licenseConcluded", "NOASSERTION"},
                {"licenseDeclared", "NOASSERTION"},
                {"copyrightText", "NOASSERTION"},
                {"sourceInfo", fmt::format("found in {}", p.location)},
                {"externalRefs", json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                               {"referenceType", "purl"},
                                               {"referenceLocator", p.purl}}})}};
    if (!p.license.empty()) pkg["comment"] = fmt::format("license as stated: {}", p.license);
    packages.push_back(std::move(pkg));
    relationships.push_back({{"spdxElementId", "SPDXRef-Image"},
                             {"relationshipType", "CONTAINS"},
                             {"relatedSpdxElement", id}});
  }
  json creation = {{"created", o.created}, {"creators", json::array({"Tool: " + o.tool})}};
  if (!scan.warnings.empty()) {
    std::string c;
    for (const auto& w : scan.warnings) c += (c.empty() ? "" : "; ") + w;
    creation["comment"] = c;
  }
  const std::string hex = o.image_digest.substr(o.image_digest.find(':') + 1);
  return {{"spdxVersion", "SPDX-2.3"},
          {"dataLicense", "CC0-1.0"},
          {"SPDXID", "SPDXRef-DOCUMENT"},
          {"name", o.name},
          {"documentNamespace", fmt::format("https://strata.invalid/spdx/{}", hex)},
          {"creationInfo", std::move(creation)},
          {"packages", std::move(packages)},
          {"relationships", std::move(relationships)}};
}

}  // namespace strata::builder
