// LoadSource (archive_internal.h): the files of an archive being loaded,
// extracted into a staging dir, or of an OCI layout directory read in place.
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
#include "oci/util/path.h"

namespace strata::oci {
namespace archive_internal {

Result<LoadSource> LoadSource::FromDirectory(const fs::path& dir) {
  LoadSource s;
  s.dir_ = dir;
  return s;
}

Result<LoadSource> LoadSource::Extract(const fs::path& file, const fs::path& ingest_dir) {
  LoadSource s;
  STRATA_ASSIGN_OR_RETURN(s.staging_, ScopedTempDir::Create(ingest_dir, "load-"));
  s.dir_ = s.staging_.path();
  s.extracted_ = true;
  STRATA_RETURN_IF_ERROR(s.ExtractAll(file));
  return s;
}

Result<SourceFile*> LoadSource::Find(std::string_view rel) {
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

Result<Digest> LoadSource::Sha256(SourceFile& f) {
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

Result<std::string> LoadSource::ReadSmall(SourceFile& f, std::string_view what) {
  if (f.size > kMaxJsonSize) {
    return MakeError(ErrorCode::kInvalidArgument, "{} is {} bytes; refusing to read it", what,
                     f.size);
  }
  return ReadFile(f.path);
}

Result<SourceFile*> LoadSource::FindInDirectory(const std::string& norm) {
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

Status LoadSource::ExtractAll(const fs::path& file) {
  ArchiveReadPtr a(archive_read_new());
  if (!a) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
  SupportInProcessFilters(a.get());
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

Status LoadSource::CheckFresh(const std::string& norm) const {
  if (files_.count(norm) || links_.count(norm)) {
    return MakeError(ErrorCode::kInvalidArgument, "entry \"{}\" appears twice", norm);
  }
  return OkStatus();
}

Status LoadSource::ExtractFile(archive* a, const std::string& norm, std::vector<char>& buf) {
  STRATA_RETURN_IF_ERROR(CheckFresh(norm));
  fs::path p = dir_ / norm;
  STRATA_RETURN_IF_ERROR(MakeDirs(p.parent_path(), 0700));
  // Staging holds no symlinks (we never create them), so p stays inside.
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  Digester h;
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) {
      return MakeError(ErrorCode::kInvalidArgument, "entry \"{}\": {}", norm, ArchiveErrorText(a));
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    STRATA_RETURN_IF_ERROR(WriteAll(fd.get(), buf.data(), static_cast<size_t>(n)));
  }
  int64_t size = static_cast<int64_t>(h.bytes());
  files_.emplace(norm, SourceFile{p, size, h.Finish()});
  return OkStatus();
}

}  // namespace archive_internal
}  // namespace strata::oci
