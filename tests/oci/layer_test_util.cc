#include "tests/oci/layer_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "oci/compress.h"
#include "oci/digest.h"
#include "oci/whiteout.h"
#include "tests/testing/test_util.h"

namespace strata::oci::testing {

namespace fs = std::filesystem;
using ::strata::testing::WriteTestFile;

Result<size_t> StringSource::Read(void* buf, size_t size) {
  size_t n = std::min({size, size_t{4096}, s_.size() - pos_});
  std::memcpy(buf, s_.data() + pos_, n);
  pos_ += n;
  return n;
}

void SetMtime(const fs::path& p, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

TarSpec TarSpec::WithMode(unsigned m) const {
  TarSpec c = *this;
  c.mode = m;
  return c;
}
TarSpec TarSpec::WithMtime(int64_t t) const {
  TarSpec c = *this;
  c.mtime = t;
  return c;
}
TarSpec TarSpec::WithXattr(std::string n, std::string v) const {
  TarSpec c = *this;
  c.xattrs.emplace_back(std::move(n), std::move(v));
  return c;
}

namespace {
TarSpec Spec(std::string name, char type, std::string data, std::string link, unsigned mode) {
  TarSpec s;
  s.name = std::move(name);
  s.type = type;
  s.data = std::move(data);
  s.link = std::move(link);
  s.mode = mode;
  return s;
}
}  // namespace

TarSpec File(std::string name, std::string data, unsigned mode) {
  return Spec(std::move(name), 'f', std::move(data), "", mode);
}
TarSpec Dir(std::string name, unsigned mode) { return Spec(std::move(name), 'd', "", "", mode); }
TarSpec Symlink(std::string name, std::string target) {
  return Spec(std::move(name), 'l', "", std::move(target), 0777);
}
TarSpec Hardlink(std::string name, std::string target) {
  return Spec(std::move(name), 'h', "", std::move(target), 0644);
}
TarSpec Fifo(std::string name) { return Spec(std::move(name), 'p', "", "", 0644); }
TarSpec CharDevice(std::string name) { return Spec(std::move(name), 'c', "", "", 0666); }

std::string MakeTar(const std::vector<TarSpec>& entries, bool gzip) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  auto write_cb = [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  };
  EXPECT_EQ(archive_write_open(a, &out, nullptr, write_cb, nullptr), ARCHIVE_OK);
  for (const auto& spec : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, spec.name.c_str());
    archive_entry_set_perm(e, spec.mode);
    archive_entry_set_mtime(e, spec.mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    switch (spec.type) {
      case 'f':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(spec.data.size()));
        break;
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, spec.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, spec.link.c_str());
        break;
      case 'p':
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      case 'c':
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdevmajor(e, 1);
        archive_entry_set_rdevminor(e, 3);
        break;
      default:
        ADD_FAILURE() << "unknown entry type " << spec.type;
    }
    for (const auto& [n, v] : spec.xattrs) {
      archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (spec.type == 'f' && !spec.data.empty()) {
      EXPECT_EQ(archive_write_data(a, spec.data.data(), spec.data.size()),
                static_cast<la_ssize_t>(spec.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

Descriptor PutLayer(Store& store, const std::string& tar, bool gzip) {
  auto d = store.Put(tar, std::string(gzip ? media_type::kLayerTarGzip : media_type::kLayerTar));
  EXPECT_TRUE(d.has_value()) << d.error().message();
  return d.value_or(Descriptor{});
}

void MakeRichTree(const fs::path& dir) {
  const bool root = ::geteuid() == 0;
  fs::create_directories(dir / "etc");
  fs::create_directories(dir / "usr/bin");
  fs::create_directories(dir / "tmp");
  ::chmod((dir / "tmp").c_str(), 01777);
  WriteTestFile(dir / "etc/hostname", "strata\n", 0644);
  WriteTestFile(dir / "etc/empty", "", 0600);
  WriteTestFile(dir / "usr/bin/su", "#!/bin/sh\necho su\n", 0755);
  ::chmod((dir / "usr/bin/su").c_str(), 04755);
  WriteTestFile(dir / "usr/bin/wall", "wall", 0755);
  ::chmod((dir / "usr/bin/wall").c_str(), 02711);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
  WriteTestFile(dir / "usr/bin/big", big, 0755);
  // security.capability: cap_net_bind_service+ep (v2 format).
  WriteTestFile(dir / "usr/bin/ping", "ping", 0755);
  if (root) {
    const unsigned char cap[20] = {0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0,
                                   0,    0, 0, 0,    0,    0,    0, 0, 0, 0};
    EXPECT_EQ(
        ::setxattr((dir / "usr/bin/ping").c_str(), "security.capability", cap, sizeof(cap), 0), 0);
  }
  EXPECT_EQ(::setxattr((dir / "etc/hostname").c_str(), "user.comment", "hello", 5, 0), 0);
  fs::create_symlink("../etc/hostname", dir / "usr/hostname-link");
  fs::create_hard_link(dir / "usr/bin/su", dir / "usr/bin/su-hardlink");
  EXPECT_EQ(::mkfifo((dir / "tmp/fifo").c_str(), 0640), 0);
  if (root) {
    fs::create_directories(dir / "dev");
    EXPECT_EQ(::mknod((dir / "dev/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
    ::chmod((dir / "dev/null").c_str(), 0666);
    EXPECT_EQ(::lchown((dir / "etc/hostname").c_str(), 1234, 5678), 0);
    EXPECT_EQ(::lchown((dir / "usr/hostname-link").c_str(), 1234, 5678), 0);
    EXPECT_EQ(::lchown((dir / "tmp").c_str(), 1234, 5678), 0);
  }
  std::string long_dir = "a-directory-name-that-is-rather-long-to-exceed-the-ustar-name-field";
  std::string long_file = "and-a-file-name-that-is-also-quite-long-so-the-path-needs-pax.txt";
  WriteTestFile(dir / long_dir / long_file, "long", 0644);
  WriteTestFile(dir / "caf\xc3\xa9.txt", "non-ascii", 0644);
  // Fixed times, children before parents (creating children bumps parents).
  std::vector<fs::path> all;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    all.push_back(it->path());
  }
  std::sort(all.begin(), all.end(), [](const fs::path& a, const fs::path& b) {
    return a.string().size() > b.string().size();
  });
  int64_t t = 1600000000;
  for (const auto& p : all) SetMtime(p, t += 1000);
}

namespace {

std::string HashFile(const fs::path& p) {
  auto d = DigestFile(p.string());
  return d ? d->Short() : "?";
}

std::string Xattrs(const fs::path& p) {
  char names[4096];
  ssize_t len = ::llistxattr(p.c_str(), names, sizeof(names));
  if (len <= 0) return "";
  std::vector<std::string> items;
  for (ssize_t pos = 0; pos < len;) {
    std::string name(names + pos);
    pos += static_cast<ssize_t>(name.size()) + 1;
    if (name.starts_with(kOverlayXattrPrefix)) continue;
    char value[4096];
    ssize_t vlen = ::lgetxattr(p.c_str(), name.c_str(), value, sizeof(value));
    std::string hex;
    for (ssize_t i = 0; i < vlen; ++i)
      hex += fmt::format("{:02x}", static_cast<unsigned char>(value[i]));
    items.push_back(name + "=" + hex);
  }
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& i : items) out += " " + i;
  return out;
}

}  // namespace

std::string DescribeTree(const fs::path& dir, bool with_times) {
  std::vector<std::string> lines;
  std::map<std::pair<dev_t, ino_t>, int> groups;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::string rel = fs::relative(p, dir).string();
    std::string line =
        fmt::format("{} mode={:o} owner={}:{}", rel, st.st_mode, st.st_uid, st.st_gid);
    if (S_ISREG(st.st_mode)) {
      line += fmt::format(" size={} sha={}", st.st_size, HashFile(p));
      if (st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        auto [it, inserted] = groups.emplace(key, static_cast<int>(groups.size()));
        line += fmt::format(" linkgroup={}", it->second);
      }
    } else if (S_ISLNK(st.st_mode)) {
      line += " -> " + fs::read_symlink(p).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      line += fmt::format(" rdev={}:{}", major(st.st_rdev), minor(st.st_rdev));
    }
    line += Xattrs(p);
    if (with_times) line += fmt::format(" mtime={}", st.st_mtim.tv_sec);
    lines.push_back(line);
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::vector<TarEntryInfo> ListTar(const std::string& tar) {
  std::vector<TarEntryInfo> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntryInfo info;
    info.path = archive_entry_pathname(e);
    mode_t t = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr) {
      info.type = 'h';
      info.link = archive_entry_hardlink(e);
    } else if (t == AE_IFREG) {
      info.type = 'f';
    } else if (t == AE_IFDIR) {
      info.type = 'd';
    } else if (t == AE_IFLNK) {
      info.type = 'l';
      info.link = archive_entry_symlink(e);
    } else if (t == AE_IFIFO) {
      info.type = 'p';
    } else if (t == AE_IFCHR) {
      info.type = 'c';
    } else {
      info.type = 'b';
    }
    info.mode = archive_entry_perm(e);
    info.uid = archive_entry_uid(e);
    info.gid = archive_entry_gid(e);
    auto nonempty = [](const char* s) { return s != nullptr && *s != 0; };
    info.has_uname = nonempty(archive_entry_uname(e)) || nonempty(archive_entry_gname(e));
    info.has_atime = archive_entry_atime_is_set(e);
    info.has_ctime = archive_entry_ctime_is_set(e);
    info.mtime = archive_entry_mtime(e);
    if (archive_entry_xattr_reset(e) > 0) {
      const char* n;
      const void* v;
      size_t s;
      while (archive_entry_xattr_next(e, &n, &v, &s) == ARCHIVE_OK) info.xattrs.push_back(n);
    }
    out.push_back(std::move(info));
  }
  archive_read_free(a);
  return out;
}

std::string ReadLayerTar(const Store& store, const Descriptor& layer) {
  auto blob = store.ReadBlob(layer.digest);
  EXPECT_TRUE(blob.has_value());
  if (!blob) return "";
  StringSource src(*blob);
  auto d = NewDecompressor(media_type::LayerCompression(layer.media_type), &src);
  EXPECT_TRUE(d.has_value());
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = (*d)->Read(buf, sizeof(buf));
    EXPECT_TRUE(n.has_value());
    if (!n || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

}  // namespace strata::oci::testing

#include "oci/image_config.h"
#include "oci/layer_writer.h"
#include "oci/manifest.h"

namespace strata::oci::testing {

Result<Image> MakeImage(Store& store, const std::vector<fs::path>& layer_dirs, bool overlay_upper) {
  ImageConfig config;
  config.os = "linux";
  config.architecture = Platform::Host().architecture;
  Manifest m;
  m.media_type = std::string(media_type::kImageManifest);
  for (const auto& dir : layer_dirs) {
    LayerWriterOptions opts;
    opts.tar.overlay_upper = overlay_upper;
    STRATA_ASSIGN_OR_RETURN(LayerInfo info, CommitLayer(store, dir, opts));
    config.diff_ids.push_back(info.diff_id);
    m.layers.push_back(info.descriptor);
  }
  STRATA_ASSIGN_OR_RETURN(m.config,
                          store.Put(config.Serialize(), std::string(media_type::kImageConfig)));
  STRATA_ASSIGN_OR_RETURN(Descriptor d,
                          store.Put(m.Serialize(), std::string(media_type::kImageManifest)));
  return store.LoadImage(d);
}

}  // namespace strata::oci::testing
