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

#include "oci/blob_sources.h"
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

Status WriteIndexFile(const fs::path& root, const Index& index) {
  return WriteFileAtomic(root / "index.json", DumpJson(index.ToJson(), 2) + "\n");
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
  STRATA_ASSIGN_OR_RETURN(auto blobs, LocalBlobStore::Open(root));
  STRATA_RETURN_IF_ERROR(InitSnapshotsDir(root));
  // The builder's cache records live here; Store never reads them.
  STRATA_RETURN_IF_ERROR(MakeDirs(root / "cache"));
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
  auto store = std::unique_ptr<Store>(new Store(root, std::move(lock), std::move(blobs)));
  if (!PathExists(root / "index.json")) {
    STRATA_ASSIGN_OR_RETURN(auto index_lock, FileLock::Acquire(root / "index.lock", LOCK_EX));
    if (!PathExists(root / "index.json")) {
      Index idx;
      idx.media_type = std::string(media_type::kImageIndex);
      STRATA_RETURN_IF_ERROR(WriteIndexFile(root, idx));
    }
  }
  return store;
}

Result<int64_t> Store::Size(const Digest& d) const {
  STRATA_ASSIGN_OR_RETURN(auto info, blobs_->Stat(d));
  return info.size;
}

// ---------------------------------------------------------------- index.json

Status Store::UpdateIndex(const std::function<Status(Index&)>& fn) const {
  STRATA_ASSIGN_OR_RETURN(auto lock, FileLock::Acquire(root_ / "index.lock", LOCK_EX));
  STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
  STRATA_RETURN_IF_ERROR(fn(idx));
  return WriteIndexFile(root_, idx);
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
  return UpdateIndex([&](Index& idx) -> Status {
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
    return OkStatus();
  });
}

Status Store::Untag(const Reference& ref) {
  return UpdateIndex([&](Index& idx) -> Status {
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
    return OkStatus();
  });
}

Status Store::AddUntagged(const Descriptor& desc) {
  if (!Has(desc.digest)) {
    return MakeError(ErrorCode::kFailedPrecondition, "cannot list {}: not in the store",
                     desc.digest.ToString());
  }
  return UpdateIndex([&](Index& idx) -> Status {
    for (const auto& m : idx.manifests) {
      if (m.digest == desc.digest) return OkStatus();
    }
    idx.manifests.push_back(desc);
    return OkStatus();
  });
}

// ---------------------------------------------------------------- images

Result<Image> Store::LoadImage(const Descriptor& desc_in, const Platform& platform) const {
  STRATA_ASSIGN_OR_RETURN(Image img, LoadImageMetadata(desc_in, platform));
  for (const auto& l : img.manifest.layers) {
    if (Has(l.digest)) continue;
    auto sources = ReadBlobSources(*this, l.digest);
    if (sources && !sources->empty()) {
      const BlobLocation& src = sources->front();
      return MakeError(ErrorCode::kFailedPrecondition,
                       "image {}: layer {} is not in the store: it was left at its source, "
                       "{}/{} (a lazy base layer); fetch it with `strata pull {}/{}@<that "
                       "image's digest>` or push the image, which mounts or fetches it",
                       img.descriptor.digest.ToString(), l.digest.ToString(), src.registry,
                       src.repository, src.registry, src.repository);
    }
    return MakeError(ErrorCode::kNotFound, "image {}: layer {} missing from the store",
                     img.descriptor.digest.ToString(), l.digest.ToString());
  }
  return img;
}

Result<Image> Store::LoadImageMetadata(const Descriptor& desc_in, const Platform& platform) const {
  Descriptor desc = desc_in;
  std::optional<Descriptor> index_desc;
  STRATA_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(desc.digest));
  STRATA_ASSIGN_OR_RETURN(std::string mt, DetectManifestMediaType(bytes));
  if (media_type::IsIndex(mt)) {
    auto idx = Index::Parse(bytes);
    if (!idx) return Unexpected(idx.error().Wrap(desc.digest.ToString()));
    auto pick = SelectManifest(
        *idx,
        {.platform = platform, .accept_unplatformed = true, .usable = [&](const Descriptor& m) {
           return media_type::IsManifest(m.media_type) && Has(m.digest);
         }});
    if (!pick) {
      return MakeError(ErrorCode::kNotFound, "index {} has no manifest for {} in the store",
                       desc.digest.ToString(), platform.ToString());
    }
    index_desc = desc;
    desc = idx->manifests[*pick];
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
  return img;
}

Result<Image> Store::LoadImage(std::string_view ref) const {
  STRATA_ASSIGN_OR_RETURN(auto d, Resolve(ref));
  return LoadImage(d);
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
  const fs::path dst = dir / fmt::format("{}-{}.{}", d.algorithm_name(), d.hex(), RandomSuffix(16));
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

}  // namespace strata::oci
