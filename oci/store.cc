#include "oci/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <unordered_set>

#include "oci/json_util.h"
#include "oci/media_types.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"

namespace strata::oci {
namespace fs = std::filesystem;

namespace {

// exists() that reports unreadable paths as absent instead of throwing.
bool PathExists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

constexpr std::string_view kAnnotationImageName = "io.containerd.image.name";

std::string RandomName() {
  std::random_device rd;
  static constexpr char kChars[] = "0123456789abcdef";
  std::string s(16, '0');
  for (auto& c : s) c = kChars[rd() % 16];
  return s;
}

// Holds an flock until destroyed.
class FileLock {
 public:
  static Result<FileLock> Acquire(const fs::path& path, int op) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path.string()));
    UniqueFd owner(fd);
    while (::flock(fd, op) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return MakeError(ErrorCode::kUnavailable,
                         "store {} is in use by another strata process; retry when it finishes",
                         path.parent_path().string());
      }
      return ErrnoError(errno, fmt::format("lock {}", path.string()));
    }
    return FileLock(std::move(owner));
  }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

Result<Reference> RefFromAnnotations(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kAnnotationImageName));
  if (it != d.annotations.end()) {
    if (auto r = Reference::Parse(it->second)) return *r;
  }
  it = d.annotations.find(std::string(kAnnotationRefName));
  if (it == d.annotations.end()) {
    return MakeError(ErrorCode::kNotFound, "no ref.name annotation");
  }
  return Reference::Parse(it->second);
}

bool IsHexPrefix(std::string_view s) {
  if (s.size() < 4 || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string RefNameAnnotation(const Reference& ref) { return ref.Familiar(); }

Status CheckLayersMatchDiffIds(const Image& image) {
  if (image.manifest.layers.size() != image.config.diff_ids.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "image {}: manifest has {} layers but the config lists {} diff_ids",
                     image.descriptor.digest, image.manifest.layers.size(),
                     image.config.diff_ids.size());
  }
  return OkStatus();
}

// ---------------------------------------------------------------- BlobWriter

BlobWriter::BlobWriter(fs::path root, fs::path tmp, UniqueFd fd)
    : root_(std::move(root)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : root_(std::move(o.root_)),
      tmp_(std::move(o.tmp_)),
      fd_(std::move(o.fd_)),
      hasher_(std::move(o.hasher_)),
      done_(o.done_) {
  o.done_ = true;
}

BlobWriter::~BlobWriter() {
  if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

Status BlobWriter::Write(const void* data, size_t size) {
  if (done_) return MakeError(ErrorCode::kFailedPrecondition, "write after commit");
  hasher_.Update(data, size);
  auto s = WriteAll(fd_.get(), data, size);
  if (!s) return Unexpected(s.error().Wrap(fmt::format("ingest {}", tmp_.string())));
  // Start writeback of every full window as soon as it is written, so the
  // disk works while we hash the next bytes and Commit's fsync only waits
  // for the tail (durable ingest ~ max(hash, disk) instead of their sum).
  uint64_t written = hasher_.bytes();
  if (written - synced_ >= kWritebackWindow) {
    uint64_t end = written - written % kWritebackWindow;
    ::sync_file_range(fd_.get(), static_cast<off64_t>(synced_), static_cast<off64_t>(end - synced_),
                      SYNC_FILE_RANGE_WRITE);
    synced_ = end;
  }
  return OkStatus();
}

Result<Descriptor> BlobWriter::Commit(std::string media_type, std::optional<Digest> expected,
                                      int64_t expected_size) {
  if (done_) return MakeError(ErrorCode::kFailedPrecondition, "blob already committed");
  done_ = true;
  auto fail = [&](Error e) -> Result<Descriptor> {
    ::unlink(tmp_.c_str());
    return Unexpected(std::move(e));
  };
  int64_t size = static_cast<int64_t>(hasher_.bytes());
  Digest actual = hasher_.Finish();
  if (expected_size >= 0 && size != expected_size) {
    return fail(Error(
        ErrorCode::kFailedPrecondition,
        fmt::format("blob {}: size mismatch: expected {} bytes, got {}",
                    expected ? expected->ToString() : actual.ToString(), expected_size, size)));
  }
  if (expected && *expected != actual) {
    return fail(Error(ErrorCode::kFailedPrecondition,
                      fmt::format("digest mismatch: expected {}, got {}", expected->ToString(),
                                  actual.ToString())));
  }
  Descriptor d;
  d.media_type = std::move(media_type);
  d.digest = actual;
  d.size = size;
  fs::path final_path = root_ / "blobs" / std::string(actual.algorithm_name()) / actual.hex();
  struct stat st;
  if (::stat(final_path.c_str(), &st) == 0) {
    ::unlink(tmp_.c_str());
    return d;  // content-addressed: already present is success
  }
  if (::fchmod(fd_.get(), 0444) != 0 || ::fsync(fd_.get()) != 0) {
    return fail(ErrnoError(errno, fmt::format("fsync {}", tmp_.string())).error());
  }
  fd_.Reset();
  if (auto s = MakeDirs(final_path.parent_path()); !s) return fail(s.error());
  // link() never replaces an existing file: a blob is never rewritten, even
  // when two processes commit the same content at once.
  if (::link(tmp_.c_str(), final_path.c_str()) != 0 && errno != EEXIST) {
    int err = errno;
    return fail(ErrnoError(err, fmt::format("commit {}", actual.ToString())).error());
  }
  ::unlink(tmp_.c_str());
  if (auto s = FsyncDir(final_path.parent_path()); !s) return Unexpected(s.error());
  return d;
}

// ---------------------------------------------------------------- BlobReader

Result<size_t> BlobReader::Read(void* buf, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read blob {}", digest_.ToString()));
    }
    if (n > 0) {
      hasher_.Update(buf, static_cast<size_t>(n));
      if (static_cast<int64_t>(hasher_.bytes()) > size_) {
        return MakeError(ErrorCode::kDataLoss, "blob {} is corrupt: longer than {} bytes",
                         digest_.ToString(), size_);
      }
      return static_cast<size_t>(n);
    }
    if (!verified_) {
      Digest actual = hasher_.Finish();
      if (actual != digest_) {
        return MakeError(ErrorCode::kDataLoss, "blob {} is corrupt: content hashes to {}",
                         digest_.ToString(), actual.ToString());
      }
      verified_ = true;
    }
    return 0;
  }
}

// ---------------------------------------------------------------- Store

fs::path Store::DefaultRoot() {
  if (const char* r = std::getenv("STRATA_ROOT"); r && *r) return r;
  if (::geteuid() == 0) return "/var/lib/strata";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "strata";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local/share/strata";
  return "/var/lib/strata";
}

Result<std::unique_ptr<Store>> Store::Open(const fs::path& root_in) {
  std::error_code abs_ec;
  fs::path root = fs::absolute(root_in, abs_ec);
  if (abs_ec) root = root_in;
  for (const char* sub : {"blobs/sha256", "ingest", "snapshots", "cache"}) {
    STRATA_RETURN_IF_ERROR(MakeDirs(root / sub));
  }
  auto layout = root / "oci-layout";
  if (!PathExists(layout)) {
    STRATA_RETURN_IF_ERROR(WriteFileAtomic(layout, R"({"imageLayoutVersion":"1.0.0"})"));
  } else {
    STRATA_ASSIGN_OR_RETURN(auto text, ReadFile(layout));
    auto j = ParseJson(text, (root / "oci-layout").string());
    if (!j || !j->is_object() || !j->contains("imageLayoutVersion")) {
      return MakeError(ErrorCode::kInvalidArgument, "{}: not an OCI image layout", layout.string());
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto lock, OpenFile(root / "lock", O_RDWR | O_CREAT, 0644));
  while (::flock(lock.get(), LOCK_SH) != 0) {
    if (errno != EINTR) return ErrnoError(errno, "lock store");
  }
  auto store = std::unique_ptr<Store>(new Store(root, std::move(lock)));
  if (!PathExists(root / "index.json")) {
    STRATA_RETURN_IF_ERROR(store->WithIndexLock([&]() -> Status {
      if (PathExists(root / "index.json")) return OkStatus();
      Index idx;
      idx.media_type = std::string(media_type::kImageIndex);
      return store->WriteIndex(idx);
    }));
  }
  return store;
}

fs::path Store::BlobPath(const Digest& d) const {
  return root_ / "blobs" / std::string(d.algorithm_name()) / d.hex();
}

bool Store::Has(const Digest& d) const {
  struct stat st;
  return ::stat(BlobPath(d).c_str(), &st) == 0;
}

Result<int64_t> Store::Size(const Digest& d) const {
  struct stat st;
  if (::stat(BlobPath(d).c_str(), &st) != 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
    return ErrnoError(errno, fmt::format("stat blob {}", d.ToString()));
  }
  return static_cast<int64_t>(st.st_size);
}

Result<BlobWriter> Store::Ingest() {
  fs::path tmp = IngestDir() / RandomName();
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  return BlobWriter(root_, tmp, std::move(fd));
}

Result<Descriptor> Store::Put(std::string_view data, std::string media_type) {
  Digest d = Digest::Of(data);
  if (Has(d)) {
    // Content-addressed: present means done (fsck and every read verify).
    return Descriptor::Of(std::move(media_type), d, static_cast<int64_t>(data.size()));
  }
  STRATA_ASSIGN_OR_RETURN(auto w, Ingest());
  STRATA_RETURN_IF_ERROR(w.Write(data));
  return w.Commit(std::move(media_type), d, static_cast<int64_t>(data.size()));
}

Result<BlobReader> Store::Open(const Digest& d) const {
  auto path = BlobPath(d);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "blob {} not found", d.ToString());
    return ErrnoError(errno, fmt::format("open blob {}", d.ToString()));
  }
  UniqueFd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, fmt::format("stat blob {}", d.ToString()));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return BlobReader(d, std::move(owner), st.st_size);
}

Result<std::string> Store::ReadBlob(const Digest& d) const {
  STRATA_ASSIGN_OR_RETURN(auto r, Open(d));
  std::string out;
  out.resize(static_cast<size_t>(r.size()));
  size_t off = 0;
  for (;;) {
    char buf[65536];
    STRATA_ASSIGN_OR_RETURN(size_t n, r.Read(buf, sizeof(buf)));
    if (n == 0) break;
    if (off + n > out.size()) out.resize(off + n);
    std::memcpy(out.data() + off, buf, n);
    off += n;
  }
  out.resize(off);
  return out;
}

Result<std::vector<Digest>> Store::ListBlobs() const {
  std::vector<Digest> out;
  std::error_code ec;
  for (const char* alg : {"sha256", "sha512"}) {
    fs::path dir = root_ / "blobs" / alg;
    if (!PathExists(dir)) continue;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      auto d = Digest::Parse(fmt::format("{}:{}", alg, it->path().filename().string()));
      if (d) out.push_back(*d);
    }
    if (ec) return MakeError(ErrorCode::kInternal, "list {}: {}", dir.string(), ec.message());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------- index.json

Status Store::WithIndexLock(const std::function<Status()>& fn) const {
  STRATA_ASSIGN_OR_RETURN(auto lock, FileLock::Acquire(root_ / "index.lock", LOCK_EX));
  return fn();
}

Result<Index> Store::ReadIndex() const {
  const fs::path path = root_ / "index.json";
  auto text = ReadFile(path);
  if (!text) return Unexpected(text.error());
  auto idx = Index::Parse(*text);
  if (!idx) {
    // Never "not found": callers would pull over the user's tags.
    return MakeError(ErrorCode::kDataLoss, "{} is corrupt: {}", path.string(),
                     idx.error().message());
  }
  return idx;
}

Status Store::WriteIndex(const Index& index) const {
  return WriteFileAtomic(root_ / "index.json", DumpJson(index.ToJson(), 2) + "\n");
}

Result<std::vector<TaggedImage>> Store::ListImages() const {
  STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
  std::vector<TaggedImage> out;
  for (const auto& m : idx.manifests) {
    auto ref = RefFromAnnotations(m);
    if (!ref) continue;  // untagged entries written by other tools
    out.push_back({*ref, m});
  }
  return out;
}

Result<Descriptor> Store::Resolve(const Reference& ref) const {
  STRATA_ASSIGN_OR_RETURN(auto images, ListImages());
  if (ref.digest()) {
    for (const auto& t : images) {
      if (t.descriptor.digest == *ref.digest()) return t.descriptor;
    }
    if (Has(*ref.digest())) {
      STRATA_ASSIGN_OR_RETURN(auto bytes, ReadBlob(*ref.digest()));
      STRATA_ASSIGN_OR_RETURN(auto mt, DetectManifestMediaType(bytes));
      return Descriptor::Of(mt, *ref.digest(), static_cast<int64_t>(bytes.size()));
    }
    return MakeError(ErrorCode::kNotFound, "image {} not found in the store", ref.Familiar());
  }
  for (const auto& t : images) {
    if (t.ref.name() == ref.name() && t.ref.tag() == ref.tag() && !t.ref.digest()) {
      return t.descriptor;
    }
  }
  return MakeError(ErrorCode::kNotFound, "image {} not found in the store", ref.Familiar());
}

Result<Descriptor> Store::Resolve(std::string_view s) const {
  if (s.starts_with("sha256:") || s.starts_with("sha512:")) {
    STRATA_ASSIGN_OR_RETURN(auto d, Digest::Parse(s));
    if (!Has(d)) return MakeError(ErrorCode::kNotFound, "image {} not found in the store", s);
    STRATA_ASSIGN_OR_RETURN(auto bytes, ReadBlob(d));
    STRATA_ASSIGN_OR_RETURN(auto mt, DetectManifestMediaType(bytes));
    return Descriptor::Of(mt, d, static_cast<int64_t>(bytes.size()));
  }
  auto ref = Reference::Parse(s);
  if (ref) {
    auto r = Resolve(*ref);
    if (r || !IsHexPrefix(s)) return r;
  }
  if (IsHexPrefix(s)) {
    STRATA_ASSIGN_OR_RETURN(auto images, ListImages());
    std::optional<Descriptor> found;
    for (const auto& t : images) {
      if (t.descriptor.digest.hex().starts_with(s)) {
        if (found && found->digest != t.descriptor.digest) {
          return MakeError(ErrorCode::kInvalidArgument, "image ID prefix {} is ambiguous", s);
        }
        found = t.descriptor;
      }
    }
    if (found) return *found;
    return MakeError(ErrorCode::kNotFound, "image {} not found in the store", s);
  }
  return Unexpected(ref.error());
}

Status Store::Tag(const Reference& ref, const Descriptor& desc) {
  if (!Has(desc.digest)) {
    return MakeError(ErrorCode::kFailedPrecondition, "cannot tag {}: manifest {} not in the store",
                     ref.Familiar(), desc.digest.ToString());
  }
  return WithIndexLock([&]() -> Status {
    STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
    std::vector<Descriptor> kept;
    for (auto& m : idx.manifests) {
      auto r = RefFromAnnotations(m);
      if (r && *r == ref) continue;
      kept.push_back(std::move(m));
    }
    Descriptor entry;
    entry.media_type = desc.media_type;
    entry.digest = desc.digest;
    entry.size = desc.size;
    entry.platform = desc.platform;
    entry.annotations[std::string(kAnnotationRefName)] = RefNameAnnotation(ref);
    entry.annotations[std::string(kAnnotationImageName)] = ref.ToString();
    kept.push_back(std::move(entry));
    idx.manifests = std::move(kept);
    return WriteIndex(idx);
  });
}

Status Store::Untag(const Reference& ref) {
  return WithIndexLock([&]() -> Status {
    STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
    std::vector<Descriptor> kept;
    bool found = false;
    for (auto& m : idx.manifests) {
      auto r = RefFromAnnotations(m);
      if (r && *r == ref) {
        found = true;
        continue;
      }
      kept.push_back(std::move(m));
    }
    if (!found) {
      return MakeError(ErrorCode::kNotFound, "image {} not found in the store", ref.Familiar());
    }
    idx.manifests = std::move(kept);
    return WriteIndex(idx);
  });
}

// ---------------------------------------------------------------- images

Result<Image> Store::LoadImage(const Descriptor& desc_in, const Platform& platform) const {
  Descriptor desc = desc_in;
  std::optional<Descriptor> index_desc;
  STRATA_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(desc.digest));
  STRATA_ASSIGN_OR_RETURN(std::string mt, DetectManifestMediaType(bytes));
  if (media_type::IsIndex(mt)) {
    auto idx = Index::Parse(bytes);
    if (!idx) return Unexpected(idx.error().Wrap(desc.digest.ToString()));
    std::optional<Descriptor> pick;
    for (const auto& m : idx->manifests) {
      if (!media_type::IsManifest(m.media_type)) continue;
      if (!m.platform || m.platform->Matches(platform)) {
        if (!Has(m.digest)) continue;
        pick = m;
        break;
      }
    }
    if (!pick) {
      return MakeError(ErrorCode::kNotFound, "index {} has no manifest for {} in the store",
                       desc.digest.ToString(), platform.ToString());
    }
    index_desc = desc;
    desc = *pick;
    STRATA_ASSIGN_OR_RETURN(bytes, ReadBlob(desc.digest));
  }
  Image img;
  img.descriptor = desc;
  img.descriptor.media_type = mt == media_type::kDockerManifestList
                                  ? std::string(media_type::kDockerManifest)
                                  : (media_type::IsIndex(mt) ? desc.media_type : mt);
  img.index = index_desc;
  auto m = Manifest::Parse(bytes);
  if (!m) return Unexpected(m.error().Wrap(desc.digest.ToString()));
  img.manifest = std::move(*m);
  img.manifest_bytes = std::move(bytes);
  auto cfg = ReadBlob(img.manifest.config.digest);
  if (!cfg)
    return Unexpected(cfg.error().Wrap(fmt::format("image {} config", desc.digest.ToString())));
  img.config_bytes = std::move(*cfg);
  auto c = ImageConfig::Parse(img.config_bytes);
  if (!c) return Unexpected(c.error().Wrap(img.manifest.config.digest.ToString()));
  img.config = std::move(*c);
  STRATA_RETURN_IF_ERROR(CheckLayersMatchDiffIds(img));
  for (const auto& l : img.manifest.layers) {
    if (!Has(l.digest)) {
      return MakeError(ErrorCode::kNotFound, "image {}: layer {} missing from the store",
                       desc.digest.ToString(), l.digest.ToString());
    }
  }
  return img;
}

Result<Image> Store::LoadImage(std::string_view ref) const {
  STRATA_ASSIGN_OR_RETURN(auto d, Resolve(ref));
  return LoadImage(d);
}

// ---------------------------------------------------------------- fsck / prune

namespace {

// Adds to `live` every blob reachable from `d` (manifest, index, config,
// layers). Missing or unreadable blobs are reported through `problem`; a
// manifest or index that cannot be read or parsed (so that what it reaches is
// unknown) through `unreadable` as well.
void Mark(const Store& store, const Descriptor& d, std::unordered_set<Digest>& live,
          const std::function<void(std::string)>& problem,
          const std::function<void(std::string)>& unreadable, int depth = 0,
          std::unordered_set<Digest>* configs = nullptr) {
  if (!live.insert(d.digest).second) return;
  auto fail = [&](std::string msg) {
    problem(msg);
    unreadable(std::move(msg));
  };
  if (depth > 8) {
    fail(fmt::format("{}: index nesting too deep", d.digest.ToString()));
    return;
  }
  if (!media_type::IsManifest(d.media_type) && !media_type::IsIndex(d.media_type)) return;
  auto bytes = store.ReadBlob(d.digest);
  if (!bytes) {
    fail(fmt::format("{}: {}", d.digest.ToString(), bytes.error().message()));
    return;
  }
  auto mt = DetectManifestMediaType(*bytes);
  if (mt && media_type::IsIndex(*mt)) {
    auto idx = Index::Parse(*bytes);
    if (!idx) {
      fail(fmt::format("{}: {}", d.digest.ToString(), idx.error().message()));
      return;
    }
    for (const auto& m : idx->manifests) {
      if (!store.Has(m.digest)) continue;  // partial multi-platform pulls are allowed
      Mark(store, m, live, problem, unreadable, depth + 1, configs);
    }
    return;
  }
  auto m = Manifest::Parse(*bytes);
  if (!m) {
    fail(fmt::format("{}: {}", d.digest.ToString(), m.error().message()));
    return;
  }
  if (configs) configs->insert(m->config.digest);
  std::vector<Descriptor> refs = m->layers;
  refs.push_back(m->config);
  for (const auto& r : refs) {
    live.insert(r.digest);
    auto size = store.Size(r.digest);
    if (!size) {
      problem(fmt::format("manifest {}: references missing blob {}", d.digest.ToString(),
                          r.digest.ToString()));
    } else if (*size != r.size) {
      problem(fmt::format("manifest {}: blob {} has size {}, manifest says {}", d.digest.ToString(),
                          r.digest.ToString(), *size, r.size));
    }
  }
}

// Digests named in a cache record's "blobs" array.
std::vector<Digest> CacheRecordBlobs(const fs::path& record) {
  std::vector<Digest> out;
  auto text = ReadFile(record);
  if (!text) return out;
  auto j = ParseJson(*text, record.string());
  if (!j || !j->is_object()) return out;
  auto list = GetStringList(*j, "blobs", "cache record");
  if (!list) return out;
  for (const auto& s : *list) {
    if (auto d = Digest::Parse(s)) out.push_back(*d);
  }
  return out;
}

// The name a tag entry of index.json is shown by.
std::string EntryName(const Descriptor& m) {
  auto it = m.annotations.find(std::string(kAnnotationRefName));
  return it != m.annotations.end() ? it->second : m.digest.ToString();
}

}  // namespace

FsckReport Store::Fsck() const {
  FsckReport report;
  auto problem = [&](std::string p) { report.problems.push_back(std::move(p)); };
  auto blobs = ListBlobs();
  if (!blobs) {
    problem(blobs.error().message());
    return report;
  }
  for (const auto& d : *blobs) {
    ++report.blobs_checked;
    auto r = Open(d);
    if (!r) {
      problem(fmt::format("{}: {}", d.ToString(), r.error().message()));
      continue;
    }
    char buf[1 << 16];
    for (;;) {
      auto n = r->Read(buf, sizeof(buf));
      if (!n) {
        problem(n.error().message());
        break;
      }
      if (*n == 0) break;
    }
  }
  auto idx = ReadIndex();
  if (!idx) {
    problem(fmt::format("index.json: {}", idx.error().message()));
    return report;
  }
  std::unordered_set<Digest> live;
  for (const auto& m : idx->manifests) {
    ++report.images_checked;
    std::string name = EntryName(m);
    auto size = Size(m.digest);
    if (!size) {
      problem(fmt::format("{}: manifest {} is missing", name, m.digest.ToString()));
      continue;
    }
    if (*size != m.size) {
      problem(fmt::format("{}: manifest {} has size {}, index.json says {}", name,
                          m.digest.ToString(), *size, m.size));
    }
    Mark(
        *this, m, live, [&](std::string p) { problem(fmt::format("{}: {}", name, p)); },
        [](std::string) {});
  }
  SnapshotCheck snaps = CheckSnapshots(*this);
  for (auto& p : snaps.problems) problem(std::move(p));
  report.leftovers = std::move(snaps.leftovers);
  return report;
}

Status Store::LockExclusive() {
  // Converting our shared lock to exclusive fails at once while any other
  // strata process holds the store.
  while (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return MakeError(ErrorCode::kUnavailable,
                       "store {} is in use by another strata process; retry when it finishes",
                       root_.string());
    }
    return ErrnoError(errno, "lock store");
  }
  return OkStatus();
}

void Store::UnlockExclusive() {
  while (::flock(lock_.get(), LOCK_SH) != 0 && errno == EINTR) {
  }
}

Result<PruneReport> Store::Prune(const PruneOptions& opts) {
  // No other strata process may hold the store while we sweep: with the
  // exclusive lock, every temp dir and ingest file belongs to a dead process.
  STRATA_RETURN_IF_ERROR(LockExclusive());
  struct Downgrade {
    Store* store;
    ~Downgrade() { store->UnlockExclusive(); }
  } downgrade{this};
  PruneReport report;
  STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
  std::unordered_set<Digest> live;
  // A tagged image whose manifest, index or config cannot be read keeps an
  // unknown set of blobs (or snapshots) alive: stop before deleting anything.
  std::vector<std::string> unreadable;
  std::unordered_set<std::string> live_chains;  // of tagged images' snapshots
  for (const auto& m : idx.manifests) {
    const std::string image = fmt::format("image {} ({})", EntryName(m), m.digest.ToString());
    std::unordered_set<Digest> configs;
    Mark(
        *this, m, live, [](std::string) {},
        [&](std::string p) { unreadable.push_back(fmt::format("{}: {}", image, p)); }, 0, &configs);
    for (const auto& d : configs) {
      auto bytes = ReadBlob(d);
      if (!bytes && bytes.error().code() == ErrorCode::kNotFound) continue;  // nothing to lose
      auto cfg =
          bytes ? ImageConfig::Parse(*bytes) : Result<ImageConfig>(Unexpected(bytes.error()));
      if (!cfg) {
        unreadable.push_back(
            fmt::format("{}: config {}: {}", image, d.ToString(), cfg.error().message()));
        continue;
      }
      if (cfg->diff_ids.empty()) continue;
      for (const auto& chain : ChainIds(cfg->diff_ids)) live_chains.insert(chain.hex());
    }
  }
  if (!unreadable.empty()) {
    std::string msg;
    for (const auto& u : unreadable) msg += (msg.empty() ? "" : "; ") + u;
    return MakeError(ErrorCode::kDataLoss,
                     "prune stopped, nothing was deleted: {} (run strata fsck; remove the tag "
                     "with strata rmi to let prune reclaim its blobs)",
                     msg);
  }
  std::error_code ec;
  if (PathExists(CacheDir())) {
    for (fs::directory_iterator it(CacheDir(), ec), end; !ec && it != end; it.increment(ec)) {
      if (opts.all) {
        if (RemoveAll(it->path())) ++report.cache_records_removed;
        continue;
      }
      for (const auto& d : CacheRecordBlobs(it->path())) live.insert(d);
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto blobs, ListBlobs());
  for (const auto& d : blobs) {
    if (live.count(d)) continue;
    auto size = Size(d);
    if (::unlink(BlobPath(d).c_str()) == 0) {
      ++report.blobs_removed;
      report.bytes_freed += size ? *size : 0;
    }
  }
  for (fs::directory_iterator it(IngestDir(), ec), end; !ec && it != end; it.increment(ec)) {
    report.bytes_freed += TreeBytes(it->path()) +
                          (it->is_regular_file(ec) ? static_cast<int64_t>(it->file_size(ec)) : 0);
    if (RemoveAll(it->path())) ++report.ingest_removed;
  }
  // Snapshots are a cache of unpacked layers: keep the complete ones whose
  // chain a tagged image still uses, drop the rest (a cache-only layer is
  // unpacked again if a build needs it), and every leftover temp/trash dir.
  STRATA_ASSIGN_OR_RETURN(auto sweep, SweepSnapshots(*this, &live_chains));
  report.snapshots_removed = sweep.removed;
  report.snapshot_leftovers_removed = sweep.leftovers;
  report.bytes_freed += sweep.bytes;
  return report;
}

// ---------------------------------------------------------------- quarantine

Status Store::VerifyBlob(const Digest& d) const {
  STRATA_ASSIGN_OR_RETURN(auto reader, Open(d));
  char buf[1 << 16];
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, reader.Read(buf, sizeof(buf)));
    if (n == 0) return OkStatus();
  }
}

Result<fs::path> Store::QuarantineBlob(const Digest& d) {
  const fs::path src = BlobPath(d);
  const fs::path dir = root_ / "quarantine";
  STRATA_RETURN_IF_ERROR(MakeDirs(dir));
  const fs::path dst = dir / fmt::format("{}-{}.{}", d.algorithm_name(), d.hex(), RandomName());
  // rename(2) takes whatever is under the name at this instant, atomically;
  // the blob is never opened for writing.
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    if (errno == ENOENT) return fs::path();  // already gone
    return ErrnoError(errno, fmt::format("quarantine blob {}", d.ToString()));
  }
  STRATA_RETURN_IF_ERROR(FsyncDir(src.parent_path()));
  STRATA_RETURN_IF_ERROR(FsyncDir(dir));
  // If what we took is intact, another process committed a good copy after
  // our caller's check: put it back (link never replaces) and drop ours.
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(dst, O_RDONLY));
  Digester hasher(d.algorithm());
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, fmt::format("read {}", dst.string()));
    if (n == 0) break;
    hasher.Update(buf, static_cast<size_t>(n));
  }
  if (hasher.Finish() != d) return dst;
  if (::link(dst.c_str(), src.c_str()) != 0 && errno != EEXIST)
    return ErrnoError(errno, fmt::format("restore blob {}", d.ToString()));
  ::unlink(dst.c_str());
  STRATA_RETURN_IF_ERROR(FsyncDir(src.parent_path()));
  return fs::path();
}

Result<RepairReport> Store::RepairSnapshots() {
  STRATA_RETURN_IF_ERROR(LockExclusive());
  struct Downgrade {
    Store* store;
    ~Downgrade() { store->UnlockExclusive(); }
  } downgrade{this};
  STRATA_ASSIGN_OR_RETURN(auto sweep, SweepSnapshots(*this, nullptr));
  return RepairReport{sweep.removed, sweep.leftovers};
}

}  // namespace strata::oci
