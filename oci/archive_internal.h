// Internals shared by the archive formats (oci/archive.h): the tar writer
// that saves, the source (an extracted archive or a layout directory) that
// loads, the load plan and the blob checks. Included only by oci/archive*.cc.
//
//   archive.cc         this header's shared parts, Load and SaveArchive
//   archive_source.cc  LoadSource: extraction, path normalization, links
//   archive_oci.cc     oci-archive / OCI layout: save, plan a load
//   archive_docker.cc  docker-archive: save, plan a load
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "oci/archive.h"
#include "oci/util/archive_handle.h"
#include "oci/util/file_util.h"

namespace strata::oci::archive_internal {

namespace fs = std::filesystem;

inline constexpr std::string_view kAnnotationImageName = "io.containerd.image.name";
inline constexpr size_t kChunk = 1 << 16;
// JSON documents are read whole; anything bigger is not a sane manifest,
// index or config and is refused rather than read into memory.
inline constexpr int64_t kMaxJsonSize = 16 << 20;

using ReadFn = std::function<Result<size_t>(void* buf, size_t size)>;
// Reads a file through an fd, for hashing and for copying into the store.
ReadFn FileReader(int fd, std::string path);

// ------------------------------------------------------------ save

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
Status WriteBlob(const Store& store, TarWriter& tar, const Digest& d, const std::string& name);

struct SaveTarget {
  std::optional<Reference> ref;  // set when the user named a tag
  Descriptor descriptor;
};

// Resolves one user-supplied name. A tag keeps its Reference so the archive
// can carry it; digests and ID prefixes are saved untagged, as docker does.
Result<SaveTarget> ResolveForSave(const Store& store, const std::string& name);

// "blobs/<alg>/<hex>": where a layout keeps a blob.
std::string BlobName(const Digest& d);

// ------------------------------------------------------------ load

struct SourceFile {
  fs::path path;
  int64_t size = 0;
  std::optional<Digest> sha256;  // computed while extracting, or on demand
};

// The files of what is being loaded: an archive extracted into a staging dir
// (removed when this goes away), or a directory read in place.
class LoadSource {
 public:
  static Result<LoadSource> FromDirectory(const fs::path& dir);

  static Result<LoadSource> Extract(const fs::path& file, const fs::path& ingest_dir);

  // The file at archive-relative `rel`, following remembered links. NotFound
  // if there is none; InvalidArgument if the path leaves the archive.
  Result<SourceFile*> Find(std::string_view rel);

  bool Exists(std::string_view rel) { return Find(rel).has_value(); }

  Result<Digest> Sha256(SourceFile& f);

  Result<std::string> ReadSmall(SourceFile& f, std::string_view what);

 private:
  Result<SourceFile*> FindInDirectory(const std::string& norm);

  Status ExtractAll(const fs::path& file);

  // One name, one meaning: a later entry must not silently replace (or,
  // as a link, redirect) what an earlier one said.
  Status CheckFresh(const std::string& norm) const;

  Status ExtractFile(archive* a, const std::string& norm, std::vector<char>& buf);

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
Result<SourceFile*> VerifyBlob(LoadSource& src, LoadPlan& plan, const Descriptor& d);

// Plan a load of an OCI layout (index.json) / a docker-archive
// (manifest.json): verify everything, add blobs and images to `plan`.
Status PlanOciLayout(LoadSource& src, LoadPlan& plan);
Status PlanDockerArchive(LoadSource& src, LoadPlan& plan);

}  // namespace strata::oci::archive_internal
