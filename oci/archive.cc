#include "oci/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "oci/image_config.h"
#include "oci/json_util.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"

namespace strata::oci {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kAnnotationImageName = "io.containerd.image.name";
constexpr size_t kChunk = 1 << 16;
// JSON documents are read whole; anything bigger is not a sane manifest,
// index or config and is refused rather than read into memory.
constexpr int64_t kMaxJsonSize = 16 << 20;

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadFree>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteFree>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryFree>;

std::string ArchiveErrorText(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// ------------------------------------------------------------ decompression

// The compressions layers and archives come in, all decoded in-process.
// Not archive_read_support_filter_all: that also bids external programs
// (lrzip, lzop, grzip, ...), and a hostile archive must not pick a program
// for us to run.
void SupportFilters(archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_lz4(a);
}

using ReadFn = std::function<Result<size_t>(void* buf, size_t size)>;
using SinkFn = std::function<Status(const void* data, size_t size)>;

// Feeds the bytes `read` yields through the matching decompressor (or none:
// the raw format passes plain bytes through) and hands the decompressed stream to `sink`. Errors of
// `read` (e.g. DataLoss from a verifying BlobReader) come back unchanged.
Status Decompress(const ReadFn& read, const SinkFn& sink, std::string_view what) {
  struct Client {
    const ReadFn* read = nullptr;
    std::vector<char> buf = std::vector<char>(kChunk);
    std::optional<Error> error;
  } client;
  client.read = &read;
  auto read_cb = [](archive* a, void* data, const void** out) -> la_ssize_t {
    auto* c = static_cast<Client*>(data);
    auto n = (*c->read)(c->buf.data(), c->buf.size());
    if (!n) {
      c->error = n.error();
      archive_set_error(a, EIO, "%s", n.error().message().c_str());
      return -1;
    }
    *out = c->buf.data();
    return static_cast<la_ssize_t>(*n);
  };
  ArchiveReadPtr a(archive_read_new());
  if (!a) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
  SupportFilters(a.get());
  archive_read_support_format_raw(a.get());
  auto fail = [&](std::string_view stage) -> Status {
    if (client.error) return Unexpected(*client.error);
    return MakeError(ErrorCode::kDataLoss, "{}: {}: {}", what, stage, ArchiveErrorText(a.get()));
  };
  if (archive_read_open(a.get(), &client, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
    return fail("open");
  }
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(a.get(), &entry);
  if (r == ARCHIVE_EOF) return OkStatus();  // empty input
  if (r < ARCHIVE_WARN) return fail("read");
  std::vector<char> out(kChunk);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), out.data(), out.size());
    if (n < 0) return fail("decompress");
    if (n == 0) break;
    STRATA_RETURN_IF_ERROR(sink(out.data(), static_cast<size_t>(n)));
  }
  return OkStatus();
}

// Reads a file through an fd, for Decompress and for copying into the store.
ReadFn FileReader(int fd, std::string path) {
  return [fd, path = std::move(path)](void* buf, size_t size) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, fmt::format("read {}", path));
    }
  };
}

// ------------------------------------------------------------ tar writing

// A file that appears at its final name only when Finish() succeeds: written
// as a hidden temp file next to it, fsynced, then renamed (RenameDurable).
class AtomicOutput {
 public:
  static Result<AtomicOutput> Create(const fs::path& out) {
    fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    std::string tmpl = (dir / fmt::format(".{}.tmp-XXXXXX", out.filename().string())).string();
    int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, fmt::format("create {}", out.string()));
    ::fchmod(fd, 0644);
    return AtomicOutput(out, tmpl, UniqueFd(fd));
  }
  AtomicOutput(AtomicOutput&& o) noexcept
      : out_(std::move(o.out_)), tmp_(std::move(o.tmp_)), fd_(std::move(o.fd_)), done_(o.done_) {
    o.done_ = true;
  }
  AtomicOutput& operator=(AtomicOutput&&) = delete;
  ~AtomicOutput() {
    if (!done_) ::unlink(tmp_.c_str());
  }
  int fd() const { return fd_.get(); }
  Status Finish() {
    if (::fsync(fd_.get()) != 0) return ErrnoError(errno, fmt::format("fsync {}", tmp_.string()));
    fd_.Reset();
    STRATA_RETURN_IF_ERROR(RenameDurable(tmp_, out_));
    done_ = true;
    return OkStatus();
  }

 private:
  AtomicOutput(fs::path out, fs::path tmp, UniqueFd fd)
      : out_(std::move(out)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  fs::path out_;
  fs::path tmp_;
  UniqueFd fd_;
  bool done_ = false;
};

// A pax tar stream onto an fd. Entries are root-owned with mtime 0 so the
// same images give the same archive bytes.
class TarWriter {
 public:
  static Result<TarWriter> Open(int fd, std::string out_name) {
    ArchiveWritePtr a(archive_write_new());
    if (!a) return MakeError(ErrorCode::kInternal, "archive_write_new failed");
    if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
        archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) {
      return MakeError(ErrorCode::kInternal, "{}: {}", out_name, ArchiveErrorText(a.get()));
    }
    return TarWriter(std::move(a), std::move(out_name));
  }

  Status AddDir(const std::string& name) { return Header(name, AE_IFDIR, 0755, 0); }
  Status AddFile(const std::string& name, std::string_view data) {
    STRATA_RETURN_IF_ERROR(BeginFile(name, static_cast<int64_t>(data.size())));
    return Data(data.data(), data.size());
  }
  Status BeginFile(const std::string& name, int64_t size) {
    return Header(name, AE_IFREG, 0644, size);
  }
  Status Data(const void* data, size_t size) {
    if (archive_write_data(a_.get(), data, size) < 0) return Failed("write");
    return OkStatus();
  }
  Status Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return Failed("close");
    return OkStatus();
  }

 private:
  TarWriter(ArchiveWritePtr a, std::string out_name)
      : a_(std::move(a)), out_name_(std::move(out_name)) {}
  Status Header(const std::string& name, unsigned type, int perm, int64_t size) {
    ArchiveEntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), perm);
    archive_entry_set_size(e.get(), size);
    archive_entry_set_mtime(e.get(), 0, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) return Failed("write " + name);
    return OkStatus();
  }
  Status Failed(std::string_view what) {
    return MakeError(ErrorCode::kInternal, "{}: {}: {}", out_name_, what,
                     ArchiveErrorText(a_.get()));
  }
  ArchiveWritePtr a_;
  std::string out_name_;
};

// Streams a stored blob into the tar as `name`; the BlobReader verifies the
// digest at the end, so a corrupt blob fails the save.
Status WriteBlob(const Store& store, TarWriter& tar, const Digest& d, const std::string& name) {
  STRATA_ASSIGN_OR_RETURN(auto reader, store.Open(d));
  STRATA_RETURN_IF_ERROR(tar.BeginFile(name, reader.size()));
  std::vector<char> buf(kChunk);
  int64_t total = 0;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
    if (n == 0) break;
    total += static_cast<int64_t>(n);
    STRATA_RETURN_IF_ERROR(tar.Data(buf.data(), n));
  }
  if (total != reader.size()) {
    return MakeError(ErrorCode::kDataLoss, "blob {} changed size while being saved", d);
  }
  return OkStatus();
}

// ------------------------------------------------------------ save

struct SaveTarget {
  std::optional<Reference> ref;  // set when the user named a tag
  Descriptor descriptor;
};

// Resolves one user-supplied name. A tag keeps its Reference so the archive
// can carry it; digests and ID prefixes are saved untagged, as docker does.
Result<SaveTarget> ResolveForSave(const Store& store, const std::string& name) {
  if (!name.starts_with("sha256:") && !name.starts_with("sha512:")) {
    if (auto ref = Reference::Parse(name); ref && !ref->digest()) {
      if (auto d = store.Resolve(*ref)) return SaveTarget{*ref, *d};
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto d, store.Resolve(name));
  return SaveTarget{std::nullopt, d};
}

// Appends every blob reachable from `d` (index children present in the
// store, manifests, configs, layers) to `out`, each once.
Status CollectBlobs(const Store& store, const Descriptor& d, std::vector<Digest>& out,
                    std::unordered_set<Digest>& seen, int depth = 0) {
  if (!seen.insert(d.digest).second) return OkStatus();
  if (depth > 8)
    return MakeError(ErrorCode::kInvalidArgument, "{}: index nesting too deep", d.digest);
  out.push_back(d.digest);
  STRATA_ASSIGN_OR_RETURN(auto bytes, store.ReadBlob(d.digest));
  STRATA_ASSIGN_OR_RETURN(auto mt, DetectManifestMediaType(bytes));
  if (media_type::IsIndex(mt)) {
    auto idx = Index::Parse(bytes);
    if (!idx) return Unexpected(idx.error().Wrap(d.digest.ToString()));
    for (const auto& m : idx->manifests) {
      // A partial multi-platform pull keeps only some children; save those.
      if (!store.Has(m.digest)) continue;
      STRATA_RETURN_IF_ERROR(CollectBlobs(store, m, out, seen, depth + 1));
    }
    return OkStatus();
  }
  auto m = Manifest::Parse(bytes);
  if (!m) return Unexpected(m.error().Wrap(d.digest.ToString()));
  std::vector<Descriptor> refs = {m->config};
  refs.insert(refs.end(), m->layers.begin(), m->layers.end());
  for (const auto& r : refs) {
    if (!store.Has(r.digest)) {
      return MakeError(ErrorCode::kNotFound, "image {}: blob {} missing from the store", d.digest,
                       r.digest);
    }
    if (seen.insert(r.digest).second) out.push_back(r.digest);
  }
  return OkStatus();
}

std::string BlobName(const Digest& d) {
  return fmt::format("blobs/{}/{}", d.algorithm_name(), d.hex());
}

std::string RepoOf(const Reference& ref) {
  std::string f = ref.WithoutDigest().Familiar();
  if (!ref.tag().empty() && f.ends_with(":" + ref.tag())) f.resize(f.size() - ref.tag().size() - 1);
  return f;
}

// Writes one layer uncompressed. Pass 1 decompresses to learn the size the
// tar header needs and to check the diff_id before a byte is written; pass 2
// writes, hashing again because the header's size is a promise.
Status WriteDockerLayer(const Store& store, TarWriter& tar, const Descriptor& layer,
                        const Digest& diff_id, const std::string& name) {
  auto pass = [&](const SinkFn& sink) -> Result<std::pair<Digest, int64_t>> {
    STRATA_ASSIGN_OR_RETURN(auto reader, store.Open(layer.digest));
    Digester hasher;
    auto read = [&reader](void* buf, size_t size) { return reader.Read(buf, size); };
    STRATA_RETURN_IF_ERROR(Decompress(
        read,
        [&](const void* data, size_t size) -> Status {
          hasher.Update(data, size);
          return sink ? sink(data, size) : OkStatus();
        },
        fmt::format("layer {}", layer.digest)));
    // libarchive may stop at the end of the compressed stream; read on to
    // the end so the BlobReader checks the blob's digest in every case.
    std::vector<char> rest(kChunk);
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(size_t left, reader.Read(rest.data(), rest.size()));
      if (left == 0) break;
    }
    int64_t n = static_cast<int64_t>(hasher.bytes());
    return std::pair{hasher.Finish(), n};
  };
  STRATA_ASSIGN_OR_RETURN(auto first, pass(nullptr));
  if (first.first != diff_id) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "layer {}: uncompressed content hashes to {}, config diff_id is {}",
                     layer.digest, first.first, diff_id);
  }
  STRATA_RETURN_IF_ERROR(tar.BeginFile(name, first.second));
  STRATA_ASSIGN_OR_RETURN(
      auto second, pass([&](const void* data, size_t size) { return tar.Data(data, size); }));
  if (second != first) {
    return MakeError(ErrorCode::kDataLoss, "layer {} changed while being saved", layer.digest);
  }
  return OkStatus();
}

}  // namespace

Result<ArchiveFormat> ParseArchiveFormat(std::string_view s) {
  if (s == "docker-archive") return ArchiveFormat::kDockerArchive;
  if (s == "oci-archive") return ArchiveFormat::kOciArchive;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown archive format \"{}\" (want oci-archive or docker-archive)", s);
}

Status SaveOciArchive(const Store& store, const std::vector<std::string>& refs,
                      const fs::path& out) {
  if (refs.empty()) return MakeError(ErrorCode::kInvalidArgument, "save: no image named");
  Index index;
  index.media_type = std::string(media_type::kImageIndex);
  std::vector<Digest> blobs;
  std::unordered_set<Digest> seen;
  for (const auto& name : refs) {
    STRATA_ASSIGN_OR_RETURN(auto target, ResolveForSave(store, name));
    auto s = CollectBlobs(store, target.descriptor, blobs, seen);
    if (!s) return Unexpected(s.error().Wrap(fmt::format("save {}", name)));
    Descriptor entry = Descriptor::Of(target.descriptor.media_type, target.descriptor.digest,
                                      target.descriptor.size);
    entry.platform = target.descriptor.platform;
    if (target.ref) {
      entry.annotations[std::string(kAnnotationRefName)] = RefNameAnnotation(*target.ref);
      entry.annotations[std::string(kAnnotationImageName)] = target.ref->ToString();
    }
    index.manifests.push_back(std::move(entry));
  }
  STRATA_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(out));
  STRATA_ASSIGN_OR_RETURN(auto tar, TarWriter::Open(output.fd(), out.string()));
  STRATA_RETURN_IF_ERROR(tar.AddFile("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  STRATA_RETURN_IF_ERROR(tar.AddDir("blobs"));
  std::set<std::string> dirs;
  for (const auto& d : blobs) {
    std::string dir = fmt::format("blobs/{}", d.algorithm_name());
    if (dirs.insert(dir).second) STRATA_RETURN_IF_ERROR(tar.AddDir(dir));
    auto s = WriteBlob(store, tar, d, BlobName(d));
    if (!s) return Unexpected(s.error().Wrap(fmt::format("save {}", out.string())));
  }
  STRATA_RETURN_IF_ERROR(tar.AddFile("index.json", DumpJson(index.ToJson()) + "\n"));
  STRATA_RETURN_IF_ERROR(tar.Close());
  return output.Finish();
}

Status SaveDockerArchive(const Store& store, const std::vector<std::string>& refs,
                         const fs::path& out) {
  if (refs.empty()) return MakeError(ErrorCode::kInvalidArgument, "save: no image named");
  struct Entry {
    Image image;
    std::vector<Reference> tags;
  };
  std::vector<Entry> entries;
  std::unordered_map<Digest, size_t> by_config;
  for (const auto& name : refs) {
    STRATA_ASSIGN_OR_RETURN(auto target, ResolveForSave(store, name));
    auto image = store.LoadImage(target.descriptor);
    if (!image) return Unexpected(image.error().Wrap(fmt::format("save {}", name)));
    if (image->config.diff_ids.size() != image->manifest.layers.size()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "save {}: config {} lists {} diff_ids for {} layers", name,
                       image->manifest.config.digest, image->config.diff_ids.size(),
                       image->manifest.layers.size());
    }
    Digest config = image->manifest.config.digest;
    auto [it, fresh] = by_config.try_emplace(config, entries.size());
    if (fresh) entries.push_back({std::move(*image), {}});
    if (target.ref) {
      auto& tags = entries[it->second].tags;
      if (std::find(tags.begin(), tags.end(), *target.ref) == tags.end()) {
        tags.push_back(*target.ref);
      }
    }
  }

  STRATA_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(out));
  STRATA_ASSIGN_OR_RETURN(auto tar, TarWriter::Open(output.fd(), out.string()));
  json manifest = json::array();
  json repositories = json::object();
  std::set<std::string> written;
  for (const auto& e : entries) {
    const Image& img = e.image;
    std::string config_name = img.manifest.config.digest.hex() + ".json";
    if (written.insert(config_name).second) {
      STRATA_RETURN_IF_ERROR(tar.AddFile(config_name, img.config_bytes));
    }
    json layers = json::array();
    std::string top;
    for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
      const Digest& diff_id = img.config.diff_ids[i];
      top = diff_id.hex();
      std::string name = top + "/layer.tar";
      layers.push_back(name);
      if (!written.insert(name).second) continue;
      STRATA_RETURN_IF_ERROR(tar.AddDir(top));
      STRATA_RETURN_IF_ERROR(tar.AddFile(top + "/VERSION", "1.0"));
      auto s = WriteDockerLayer(store, tar, img.manifest.layers[i], diff_id, name);
      if (!s)
        return Unexpected(s.error().Wrap(fmt::format("save image {}", img.descriptor.digest)));
    }
    json tags = json::array();
    for (const auto& ref : e.tags) {
      if (ref.tag().empty()) continue;  // digest references have no tag to record
      tags.push_back(ref.WithoutDigest().Familiar());
      if (!top.empty()) repositories[RepoOf(ref)][ref.tag()] = top;
    }
    manifest.push_back(json{{"Config", config_name},
                            {"RepoTags", tags.empty() ? json(nullptr) : tags},
                            {"Layers", layers}});
  }
  STRATA_RETURN_IF_ERROR(tar.AddFile("manifest.json", DumpJson(manifest) + "\n"));
  if (!repositories.empty()) {
    STRATA_RETURN_IF_ERROR(tar.AddFile("repositories", DumpJson(repositories) + "\n"));
  }
  STRATA_RETURN_IF_ERROR(tar.Close());
  return output.Finish();
}

Status SaveArchive(const Store& store, const std::vector<std::string>& refs, const fs::path& out,
                   ArchiveFormat format) {
  return format == ArchiveFormat::kOciArchive ? SaveOciArchive(store, refs, out)
                                              : SaveDockerArchive(store, refs, out);
}

// ------------------------------------------------------------ load

namespace {

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    if (end > start) out.emplace_back(p.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

// Lexically normalizes `p` (relative to `base`, both archive-relative):
// drops "." and empty components, applies "..". nullopt if the path is
// absolute or climbs above the archive root.
std::optional<std::string> NormalizeInside(std::string_view p, std::string_view base = "") {
  if (p.starts_with('/')) return std::nullopt;
  std::vector<std::string> parts = SplitPath(base);
  for (auto& c : SplitPath(p)) {
    if (c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(c));
  }
  return JoinPath(parts);
}

struct SourceFile {
  fs::path path;
  int64_t size = 0;
  std::optional<Digest> sha256;  // computed while extracting, or on demand
};

// The files of what is being loaded: an archive extracted into a staging dir
// (removed when this goes away), or a directory read in place.
class LoadSource {
 public:
  static Result<LoadSource> FromDirectory(const fs::path& dir) {
    LoadSource s;
    s.dir_ = dir;
    return s;
  }

  static Result<LoadSource> Extract(const fs::path& file, const fs::path& ingest_dir) {
    LoadSource s;
    STRATA_ASSIGN_OR_RETURN(s.staging_, ScopedTempDir::Create(ingest_dir, "load-"));
    s.dir_ = s.staging_.path();
    s.extracted_ = true;
    STRATA_RETURN_IF_ERROR(s.ExtractAll(file));
    return s;
  }

  // The file at archive-relative `rel`, following remembered links. NotFound
  // if there is none; InvalidArgument if the path leaves the archive.
  Result<SourceFile*> Find(std::string_view rel) {
    auto norm = NormalizeInside(rel);
    if (!norm) {
      return MakeError(ErrorCode::kInvalidArgument, "path {} escapes the archive", rel);
    }
    if (!extracted_) return FindInDirectory(*norm);
    std::deque<std::string> todo;
    for (auto& c : SplitPath(*norm)) todo.push_back(std::move(c));
    std::vector<std::string> cur;
    int hops = 0;
    while (!todo.empty()) {
      std::string c = std::move(todo.front());
      todo.pop_front();
      cur.push_back(std::move(c));
      auto link = links_.find(JoinPath(cur));
      if (link == links_.end()) continue;
      if (++hops > 40) {
        return MakeError(ErrorCode::kInvalidArgument, "path {}: too many links", rel);
      }
      if (!link->second) {
        return MakeError(ErrorCode::kInvalidArgument, "path {}: link {} points outside the archive",
                         rel, link->first);
      }
      cur = SplitPath(*link->second);
    }
    auto it = files_.find(JoinPath(cur));
    if (it == files_.end()) {
      return MakeError(ErrorCode::kNotFound, "{} is not in the archive", rel);
    }
    return &it->second;
  }

  bool Exists(std::string_view rel) { return Find(rel).has_value(); }

  Result<Digest> Sha256(SourceFile& f) {
    if (!f.sha256) {
      STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(f.path, O_RDONLY));
      Digester h;
      std::vector<char> buf(kChunk);
      auto read = FileReader(fd.get(), f.path.string());
      for (;;) {
        STRATA_ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
        if (n == 0) break;
        h.Update(buf.data(), n);
      }
      if (static_cast<int64_t>(h.bytes()) != f.size) {
        return MakeError(ErrorCode::kFailedPrecondition, "{} changed while being loaded",
                         f.path.string());
      }
      f.sha256 = h.Finish();
    }
    return *f.sha256;
  }

  Result<std::string> ReadSmall(SourceFile& f, std::string_view what) {
    if (f.size > kMaxJsonSize) {
      return MakeError(ErrorCode::kInvalidArgument, "{} is {} bytes; refusing to read it", what,
                       f.size);
    }
    return ReadFile(f.path);
  }

 private:
  Result<SourceFile*> FindInDirectory(const std::string& norm) {
    auto it = files_.find(norm);
    if (it != files_.end()) return &it->second;
    fs::path p = dir_ / norm;
    struct stat st;
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return MakeError(ErrorCode::kNotFound, "{} is not in {}", norm, dir_.string());
    }
    auto [ins, _] = files_.emplace(norm, SourceFile{p, static_cast<int64_t>(st.st_size), {}});
    return &ins->second;
  }

  Status ExtractAll(const fs::path& file) {
    ArchiveReadPtr a(archive_read_new());
    if (!a) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
    SupportFilters(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    const std::string name = file.string();
    if (archive_read_open_filename(a.get(), name.c_str(), kChunk) != ARCHIVE_OK) {
      return MakeError(ErrorCode::kInvalidArgument, "not a readable tar archive: {}",
                       ArchiveErrorText(a.get()));
    }
    std::vector<char> buf(kChunk);
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        return MakeError(ErrorCode::kInvalidArgument, "{}", ArchiveErrorText(a.get()));
      }
      const char* raw = archive_entry_pathname(e);
      std::string entry = raw ? raw : "";
      auto norm = NormalizeInside(entry);
      if (!norm) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "entry \"{}\" escapes the archive; refusing to load it", entry);
      }
      if (norm->empty()) continue;  // "./"
      if (const char* target = archive_entry_hardlink(e)) {
        STRATA_RETURN_IF_ERROR(CheckFresh(*norm));
        links_[*norm] = NormalizeInside(target);
        continue;
      }
      switch (archive_entry_filetype(e)) {
        case AE_IFDIR:
          STRATA_RETURN_IF_ERROR(MakeDirs(dir_ / *norm, 0700));
          break;
        case AE_IFLNK: {
          STRATA_RETURN_IF_ERROR(CheckFresh(*norm));
          const char* target = archive_entry_symlink(e);
          std::string parent = fs::path(*norm).parent_path().string();
          links_[*norm] = NormalizeInside(target ? target : "", parent);
          break;
        }
        case AE_IFREG:
          STRATA_RETURN_IF_ERROR(ExtractFile(a.get(), *norm, buf));
          break;
        default:
          return MakeError(ErrorCode::kInvalidArgument,
                           "entry \"{}\" is not a regular file or directory; refusing to "
                           "load it",
                           entry);
      }
    }
    return OkStatus();
  }

  // One name, one meaning: a later entry must not silently replace (or,
  // as a link, redirect) what an earlier one said.
  Status CheckFresh(const std::string& norm) const {
    if (files_.count(norm) || links_.count(norm)) {
      return MakeError(ErrorCode::kInvalidArgument, "entry \"{}\" appears twice", norm);
    }
    return OkStatus();
  }

  Status ExtractFile(archive* a, const std::string& norm, std::vector<char>& buf) {
    STRATA_RETURN_IF_ERROR(CheckFresh(norm));
    fs::path p = dir_ / norm;
    STRATA_RETURN_IF_ERROR(MakeDirs(p.parent_path(), 0700));
    // Staging holds no symlinks (we never create them), so p stays inside.
    STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    Digester h;
    for (;;) {
      la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
      if (n < 0) {
        return MakeError(ErrorCode::kInvalidArgument, "entry \"{}\": {}", norm,
                         ArchiveErrorText(a));
      }
      if (n == 0) break;
      h.Update(buf.data(), static_cast<size_t>(n));
      STRATA_RETURN_IF_ERROR(WriteAll(fd.get(), buf.data(), static_cast<size_t>(n)));
    }
    int64_t size = static_cast<int64_t>(h.bytes());
    files_.emplace(norm, SourceFile{p, size, h.Finish()});
    return OkStatus();
  }

  ScopedTempDir staging_;
  fs::path dir_;
  bool extracted_ = false;
  std::map<std::string, SourceFile> files_;
  // link path -> normalized target; nullopt when the target leaves the archive
  std::map<std::string, std::optional<std::string>> links_;
};

// What Load will write once everything is verified.
struct LoadPlan {
  struct Blob {
    Descriptor desc;
    fs::path file;        // copied from here, or
    std::string inline_;  // made by Load (docker-archive manifests)
  };
  std::vector<Blob> blobs;
  std::unordered_set<Digest> planned;
  std::vector<LoadedImage> images;

  void Add(const Descriptor& d, fs::path file, std::string data = {}) {
    if (!planned.insert(d.digest).second) return;
    blobs.push_back({d, std::move(file), std::move(data)});
  }
};

// Checks that the blob `d` names is in the layout with its size and digest,
// and plans to copy it. Returns the file.
Result<SourceFile*> VerifyBlob(LoadSource& src, LoadPlan& plan, const Descriptor& d) {
  if (d.digest.algorithm() != DigestAlgorithm::kSha256) {
    return MakeError(ErrorCode::kUnimplemented, "blob {}: only sha256 blobs can be stored",
                     d.digest);
  }
  auto f = src.Find(BlobName(d.digest));
  if (!f) {
    if (f.error().code() != ErrorCode::kNotFound) return Unexpected(f.error());
    return MakeError(ErrorCode::kFailedPrecondition, "blob {} is missing", d.digest);
  }
  SourceFile* file = *f;
  if (file->size != d.size) {
    return MakeError(ErrorCode::kFailedPrecondition, "blob {} has {} bytes, its descriptor says {}",
                     d.digest, file->size, d.size);
  }
  STRATA_ASSIGN_OR_RETURN(Digest actual, src.Sha256(*file));
  if (actual != d.digest) {
    return MakeError(ErrorCode::kFailedPrecondition, "blob {} is corrupt: content hashes to {}",
                     d.digest, actual);
  }
  plan.Add(d, file->path);
  return file;
}

// Verifies a manifest or index and everything it references.
Status VerifyManifestTree(LoadSource& src, LoadPlan& plan, const Descriptor& d, int depth = 0) {
  if (depth > 8)
    return MakeError(ErrorCode::kInvalidArgument, "{}: index nesting too deep", d.digest);
  STRATA_ASSIGN_OR_RETURN(SourceFile * file, VerifyBlob(src, plan, d));
  STRATA_ASSIGN_OR_RETURN(auto bytes, src.ReadSmall(*file, d.digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto mt, DetectManifestMediaType(bytes));
  if (media_type::IsIndex(mt)) {
    auto idx = Index::Parse(bytes);
    if (!idx) return Unexpected(idx.error().Wrap(d.digest.ToString()));
    int present = 0;
    for (const auto& m : idx->manifests) {
      // As in the store: an index may list platforms that were not copied.
      if (!src.Exists(BlobName(m.digest))) continue;
      ++present;
      auto s = VerifyManifestTree(src, plan, m, depth + 1);
      if (!s) return Unexpected(s.error().Wrap(fmt::format("index {}", d.digest)));
    }
    if (present == 0) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "index {}: none of its {} manifests is present", d.digest,
                       idx->manifests.size());
    }
    return OkStatus();
  }
  auto m = Manifest::Parse(bytes);
  if (!m) return Unexpected(m.error().Wrap(d.digest.ToString()));
  auto wrap = [&](const Error& e) {
    return Unexpected(e.Wrap(fmt::format("manifest {}", d.digest)));
  };
  auto cfg = VerifyBlob(src, plan, m->config);
  if (!cfg) return wrap(cfg.error());
  if (media_type::IsConfig(m->config.media_type)) {
    auto text = src.ReadSmall(**cfg, m->config.digest.ToString());
    if (!text) return wrap(text.error());
    if (auto c = ImageConfig::Parse(*text); !c) return wrap(c.error());
  }
  for (const auto& l : m->layers) {
    if (auto s = VerifyBlob(src, plan, l); !s) return wrap(s.error());
  }
  return OkStatus();
}

// The tag an index.json entry names. io.containerd.image.name (containerd,
// docker, strata) is always a full reference, so a bad one is an error. The
// layout spec lets ref.name be any string and by its convention a bare one
// ("latest", "1.0") is a tag without a repository: entries whose ref.name
// is not a reference are loaded untagged rather than refused.
Result<std::optional<Reference>> RefOfIndexEntry(const Descriptor& d) {
  if (auto it = d.annotations.find(std::string(kAnnotationImageName)); it != d.annotations.end()) {
    auto ref = Reference::Parse(it->second);
    if (!ref) return Unexpected(ref.error().Wrap(fmt::format("index.json entry {}", d.digest)));
    return std::optional<Reference>(*ref);
  }
  auto it = d.annotations.find(std::string(kAnnotationRefName));
  if (it == d.annotations.end() || it->second.find_first_of(":/@") == std::string::npos) {
    return std::nullopt;
  }
  auto ref = Reference::Parse(it->second);
  if (!ref) return std::nullopt;
  return std::optional<Reference>(*ref);
}

Status PlanOciLayout(LoadSource& src, LoadPlan& plan) {
  if (auto layout = src.Find("oci-layout")) {
    STRATA_ASSIGN_OR_RETURN(auto text, src.ReadSmall(**layout, "oci-layout"));
    auto j = ParseJson(text, "oci-layout");
    if (!j || !j->is_object() || !j->contains("imageLayoutVersion")) {
      return MakeError(ErrorCode::kInvalidArgument, "oci-layout: not an OCI image layout");
    }
  }
  STRATA_ASSIGN_OR_RETURN(SourceFile * index_file, src.Find("index.json"));
  STRATA_ASSIGN_OR_RETURN(auto text, src.ReadSmall(*index_file, "index.json"));
  auto index = Index::Parse(text);
  if (!index) return Unexpected(index.error().Wrap("index.json"));
  for (const auto& entry : index->manifests) {
    STRATA_RETURN_IF_ERROR(VerifyManifestTree(src, plan, entry));
    STRATA_ASSIGN_OR_RETURN(auto ref, RefOfIndexEntry(entry));
    Descriptor d = Descriptor::Of(entry.media_type, entry.digest, entry.size);
    d.platform = entry.platform;
    plan.images.push_back({ref, d});
  }
  if (plan.images.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "index.json lists no images");
  }
  return OkStatus();
}

// Media type for a docker-archive layer file, by its magic bytes.
Result<std::string_view> SniffLayerType(const SourceFile& f) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(f.path, O_RDONLY));
  unsigned char magic[4] = {};
  ssize_t n = ::pread(fd.get(), magic, sizeof(magic), 0);
  if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return media_type::kLayerTarGzip;
  if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return media_type::kLayerTarZstd;
  }
  return media_type::kLayerTar;
}

Result<Digest> UncompressedDigest(const SourceFile& f) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(f.path, O_RDONLY));
  Digester h;
  STRATA_RETURN_IF_ERROR(Decompress(
      FileReader(fd.get(), f.path.string()),
      [&](const void* data, size_t size) -> Status {
        h.Update(data, size);
        return OkStatus();
      },
      f.path.filename().string()));
  return h.Finish();
}

Status PlanDockerArchive(LoadSource& src, LoadPlan& plan) {
  STRATA_ASSIGN_OR_RETURN(SourceFile * mf, src.Find("manifest.json"));
  STRATA_ASSIGN_OR_RETURN(auto text, src.ReadSmall(*mf, "manifest.json"));
  STRATA_ASSIGN_OR_RETURN(auto j, ParseJson(text, "manifest.json"));
  if (!j.is_array() || j.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "manifest.json: expected a non-empty array");
  }
  for (const auto& item : j) {
    if (!item.is_object()) {
      return MakeError(ErrorCode::kInvalidArgument, "manifest.json: entry is not an object");
    }
    STRATA_ASSIGN_OR_RETURN(auto config_name, GetString(item, "Config", "manifest.json", true));
    STRATA_ASSIGN_OR_RETURN(auto layer_names, GetStringList(item, "Layers", "manifest.json"));
    std::vector<std::string> tag_names;
    if (item.contains("RepoTags") && !item["RepoTags"].is_null()) {
      STRATA_ASSIGN_OR_RETURN(tag_names, GetStringList(item, "RepoTags", "manifest.json"));
    }
    auto ctx = [&](const Error& e) {
      return Unexpected(e.Wrap(fmt::format("manifest.json image {}", config_name)));
    };

    auto config_file = src.Find(config_name);
    if (!config_file) return ctx(config_file.error());
    auto config_text = src.ReadSmall(**config_file, config_name);
    if (!config_text) return ctx(config_text.error());
    auto config = ImageConfig::Parse(*config_text);
    if (!config) return ctx(config.error());
    if (config->diff_ids.size() != layer_names.size()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "{}: config lists {} diff_ids, manifest.json {} layers", config_name,
                       config->diff_ids.size(), layer_names.size());
    }
    STRATA_ASSIGN_OR_RETURN(Digest config_digest, src.Sha256(**config_file));

    Manifest m;
    m.media_type = std::string(media_type::kImageManifest);
    m.config =
        Descriptor::Of(std::string(media_type::kImageConfig), config_digest, (*config_file)->size);
    plan.Add(m.config, (*config_file)->path);
    for (size_t i = 0; i < layer_names.size(); ++i) {
      const Digest& diff_id = config->diff_ids[i];
      auto f = src.Find(layer_names[i]);
      if (!f) return ctx(f.error());
      SourceFile* file = *f;
      STRATA_ASSIGN_OR_RETURN(std::string_view mt, SniffLayerType(*file));
      STRATA_ASSIGN_OR_RETURN(Digest stored, src.Sha256(*file));
      Digest uncompressed = stored;
      if (mt != media_type::kLayerTar) {
        STRATA_ASSIGN_OR_RETURN(uncompressed, UncompressedDigest(*file));
      }
      if (uncompressed != diff_id) {
        return MakeError(ErrorCode::kFailedPrecondition,
                         "layer {} does not match diff_id {}: its content hashes to {}",
                         layer_names[i], diff_id, uncompressed);
      }
      Descriptor d = Descriptor::Of(std::string(mt), stored, file->size);
      plan.Add(d, file->path);
      m.layers.push_back(std::move(d));
    }
    std::string bytes = m.Serialize();
    Descriptor md = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of(bytes),
                                   static_cast<int64_t>(bytes.size()));
    plan.Add(md, {}, bytes);
    if (tag_names.empty()) plan.images.push_back({std::nullopt, md});
    for (const auto& t : tag_names) {
      auto ref = Reference::Parse(t);
      if (!ref) return ctx(ref.error());
      plan.images.push_back({*ref, md});
    }
  }
  return OkStatus();
}

Status CommitBlob(Store& store, const LoadPlan::Blob& b) {
  if (store.Has(b.desc.digest)) return OkStatus();
  if (b.file.empty()) {
    STRATA_ASSIGN_OR_RETURN(auto d, store.Put(b.inline_, b.desc.media_type));
    (void)d;
    return OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(b.file, O_RDONLY));
  STRATA_ASSIGN_OR_RETURN(auto w, store.Ingest());
  auto read = FileReader(fd.get(), b.file.string());
  std::vector<char> buf(kChunk);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
    if (n == 0) break;
    STRATA_RETURN_IF_ERROR(w.Write(buf.data(), n));
  }
  STRATA_ASSIGN_OR_RETURN(auto d, w.Commit(b.desc.media_type, b.desc.digest, b.desc.size));
  (void)d;
  return OkStatus();
}

// Records an untagged image in index.json (no ref.name) unless index.json
// already lists that digest, so prune keeps it and it resolves by digest.
Status AddUntagged(Store& store, const Descriptor& d) {
  return store.WithIndexLock([&]() -> Status {
    STRATA_ASSIGN_OR_RETURN(auto idx, store.ReadIndex());
    for (const auto& m : idx.manifests) {
      if (m.digest == d.digest) return OkStatus();
    }
    idx.manifests.push_back(d);
    return store.WriteIndex(idx);
  });
}

}  // namespace

Result<std::vector<LoadedImage>> Load(Store& store, const fs::path& path) {
  auto ctx = [&](const Error& e) {
    return Unexpected(e.Wrap(fmt::format("load {}", path.string())));
  };
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return MakeError(ErrorCode::kNotFound, "load {}: no such file or directory", path.string());
  }
  auto src = fs::is_directory(status) ? LoadSource::FromDirectory(path)
                                      : LoadSource::Extract(path, store.IngestDir());
  if (!src) return ctx(src.error());

  LoadPlan plan;
  Status planned;
  if (src->Exists("index.json")) {
    planned = PlanOciLayout(*src, plan);
  } else if (src->Exists("manifest.json")) {
    planned = PlanDockerArchive(*src, plan);
  } else {
    planned = MakeError(ErrorCode::kInvalidArgument,
                        "neither an OCI layout (index.json) nor a docker-archive (manifest.json)");
  }
  if (!planned) return ctx(planned.error());

  // Everything is verified; only now does the store change.
  for (const auto& b : plan.blobs) {
    if (auto s = CommitBlob(store, b); !s) return ctx(s.error());
  }
  for (const auto& img : plan.images) {
    auto s = img.ref ? store.Tag(*img.ref, img.descriptor) : AddUntagged(store, img.descriptor);
    if (!s) return ctx(s.error());
  }
  return plan.images;
}

}  // namespace strata::oci
