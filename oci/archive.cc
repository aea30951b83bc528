// Shared parts of the archive formats (archive_internal.h), SaveArchive and
// Load. The formats themselves: archive_oci.cc, archive_docker.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "oci/archive_internal.h"
#include "oci/compress.h"
#include "oci/image_config.h"
#include "oci/json_util.h"
#include "oci/manifest.h"
#include "oci/media_types.h"

namespace strata::oci {
namespace archive_internal {

ReadFn FileReader(int fd, std::string path) {
  return [fd, path = std::move(path)](void* buf, size_t size) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, fmt::format("read {}", path));
    }
  };
}

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

Result<SaveTarget> ResolveForSave(const Store& store, const std::string& name) {
  if (!name.starts_with("sha256:") && !name.starts_with("sha512:")) {
    if (auto ref = Reference::Parse(name); ref && !ref->digest()) {
      if (auto d = store.Resolve(*ref)) return SaveTarget{*ref, *d};
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto d, store.Resolve(name));
  return SaveTarget{std::nullopt, d};
}

std::string BlobName(const Digest& d) {
  return fmt::format("blobs/{}/{}", d.algorithm_name(), d.hex());
}

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

}  // namespace archive_internal

using namespace archive_internal;

Result<ArchiveFormat> ParseArchiveFormat(std::string_view s) {
  if (s == "docker-archive") return ArchiveFormat::kDockerArchive;
  if (s == "oci-archive") return ArchiveFormat::kOciArchive;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown archive format \"{}\" (want oci-archive or docker-archive)", s);
}

Status SaveArchive(const Store& store, const std::vector<std::string>& refs, const fs::path& out,
                   ArchiveFormat format, const std::optional<Platform>& platform) {
  return format == ArchiveFormat::kOciArchive ? SaveOciArchive(store, refs, out)
                                              : SaveDockerArchive(store, refs, out, platform);
}

namespace {

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
    auto s = img.ref ? store.Tag(*img.ref, img.descriptor) : store.AddUntagged(img.descriptor);
    if (!s) return ctx(s.error());
  }
  return plan.images;
}

}  // namespace strata::oci
