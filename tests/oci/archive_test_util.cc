#include "tests/oci/archive_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "oci/image_config.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"

namespace strata::oci::testing {
namespace fs = std::filesystem;

namespace {
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
}  // namespace

std::string MakeTar(const std::vector<TarEntry>& entries) {
  std::string out;
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_open(
      a.get(), &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& e : entries) {
    std::unique_ptr<archive_entry, EntryFree> ent(archive_entry_new());
    archive_entry_set_pathname(ent.get(), e.name.c_str());
    archive_entry_set_mtime(ent.get(), 1700000000, 0);
    switch (e.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(ent.get(), AE_IFREG);
        archive_entry_set_perm(ent.get(), 0644);
        archive_entry_set_size(ent.get(), static_cast<la_int64_t>(e.content.size()));
        break;
      case TarEntry::Type::kDir:
        archive_entry_set_filetype(ent.get(), AE_IFDIR);
        archive_entry_set_perm(ent.get(), 0755);
        break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(ent.get(), AE_IFLNK);
        archive_entry_set_symlink(ent.get(), e.content.c_str());
        break;
      case TarEntry::Type::kHardlink:
        archive_entry_set_filetype(ent.get(), AE_IFREG);
        archive_entry_set_hardlink(ent.get(), e.content.c_str());
        break;
      case TarEntry::Type::kCharDevice:
        archive_entry_set_filetype(ent.get(), AE_IFCHR);
        archive_entry_set_rdev(ent.get(), makedev(1, 3));
        break;
    }
    archive_write_header(a.get(), ent.get());
    if (e.type == TarEntry::Type::kFile) {
      archive_write_data(a.get(), e.content.data(), e.content.size());
    }
  }
  archive_write_close(a.get());
  return out;
}

std::string Gzip(std::string_view data) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::map<std::string, std::string> ReadTarFiles(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::unique_ptr<archive, ReadFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 65536) != ARCHIVE_OK) return out;
  archive_entry* e;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string content;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof(buf))) > 0) content.append(buf, n);
    out[archive_entry_pathname(e)] = std::move(content);
  }
  return out;
}

void WriteTarFiles(const fs::path& path, const std::map<std::string, std::string>& files) {
  std::vector<TarEntry> entries;
  for (const auto& [name, content] : files) entries.push_back({name, content});
  (void)WriteFileAtomic(path, MakeTar(entries));
}

Result<Descriptor> AddImage(Store& store, const std::string& ref_text,
                            const std::vector<std::string>& layer_tars, LayerCodec codec,
                            std::vector<std::string> cmd) {
  STRATA_ASSIGN_OR_RETURN(auto ref, Reference::Parse(ref_text));
  ImageConfig cfg;
  cfg.created = "2026-11-26T06:30:00Z";
  cfg.os = "linux";
  cfg.architecture = Platform::Host().architecture;
  cfg.config.cmd = std::move(cmd);
  cfg.config.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  Manifest m;
  m.media_type = std::string(media_type::kImageManifest);
  for (const auto& tar : layer_tars) {
    cfg.diff_ids.push_back(Digest::Of(tar));
    std::string blob = tar;
    std::string_view mt = media_type::kLayerTar;
    if (codec == LayerCodec::kGzip) {
      blob = Gzip(tar);
      mt = media_type::kLayerTarGzip;
    } else if (codec == LayerCodec::kZstd) {
      blob.resize(ZSTD_compressBound(tar.size()));
      blob.resize(ZSTD_compress(blob.data(), blob.size(), tar.data(), tar.size(), 3));
      mt = media_type::kLayerTarZstd;
    }
    STRATA_ASSIGN_OR_RETURN(auto d, store.Put(blob, std::string(mt)));
    m.layers.push_back(d);
    HistoryEntry h;
    h.created = cfg.created;
    h.created_by = "test layer";
    cfg.history.push_back(h);
  }
  STRATA_ASSIGN_OR_RETURN(m.config,
                          store.Put(cfg.Serialize(), std::string(media_type::kImageConfig)));
  STRATA_ASSIGN_OR_RETURN(auto md,
                          store.Put(m.Serialize(), std::string(media_type::kImageManifest)));
  STRATA_RETURN_IF_ERROR(store.Tag(ref, md));
  return md;
}

std::string StoreFingerprint(const Store& store) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(store.root() / "blobs", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string line = it->path().lexically_relative(store.root()).string();
    if (it->is_regular_file()) line += " " + std::to_string(it->file_size());
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  auto index = ReadFile(store.root() / "index.json");
  out += "--- index.json\n" + (index ? *index : std::string("<unreadable>"));
  return out;
}

}  // namespace strata::oci::testing
