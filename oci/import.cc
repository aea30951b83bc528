#include "oci/import.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "oci/compress.h"
#include "oci/image_config.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"

namespace strata::oci {

namespace fs = std::filesystem;

namespace {

class FdSource : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<size_t> Read(void* buf, size_t size) override {
    for (;;) {
      ssize_t n = ::read(fd_, buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, "read");
    }
  }

 private:
  int fd_;
};

// A POSIX/GNU tar header carries "ustar" at offset 257.
bool LooksLikeTar(std::string_view head) {
  return head.size() >= 262 && head.substr(257, 5) == "ustar";
}

Result<LayerInfo> CommitTarball(Store& store, const fs::path& file, const CompressOptions& copts) {
  STRATA_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(file, O_RDONLY));
  FdSource raw(fd.get());
  STRATA_ASSIGN_OR_RETURN(std::string magic, ReadUpTo(&raw, 4));
  Compression c = DetectCompression(magic);
  PrefixSource compressed(std::move(magic), &raw);
  STRATA_ASSIGN_OR_RETURN(auto decompressor, NewDecompressor(c, &compressed));
  STRATA_ASSIGN_OR_RETURN(std::string head, ReadUpTo(decompressor.get(), 512));
  if (!LooksLikeTar(head)) {
    return MakeError(ErrorCode::kInvalidArgument, "{} is not a tar archive ({} compressed)",
                     file.string(), CompressionName(c));
  }
  PrefixSource tar(std::move(head), decompressor.get());
  return CommitTarStream(store, &tar, copts);
}

}  // namespace

Result<ImportResult> ImportRootfs(Store& store, const fs::path& source, const ImportOptions& opts) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return ErrnoError(errno, "import " + source.string());
  ImportResult result;
  if (S_ISDIR(st.st_mode)) {
    STRATA_ASSIGN_OR_RETURN(result.layer, CommitLayer(store, source, opts.layer));
  } else {
    auto r = CommitTarball(store, source, opts.layer.compress);
    if (!r) return Unexpected(r.error().Wrap("import " + source.string()));
    result.layer = std::move(*r);
  }

  Platform platform = opts.platform.os.empty() ? Platform::Host() : opts.platform;
  int64_t created = opts.created;
  if (opts.layer.tar.source_date_epoch && created > *opts.layer.tar.source_date_epoch) {
    created = *opts.layer.tar.source_date_epoch;
  }
  ImageConfig config;
  config.created = FormatRfc3339(created);
  config.os = platform.os;
  config.architecture = platform.architecture;
  config.variant = platform.variant;
  config.config.env.push_back(std::string(kDefaultPathEnv));
  config.diff_ids.push_back(result.layer.diff_id);
  HistoryEntry h;
  h.created = config.created;
  h.created_by = opts.created_by;
  config.history.push_back(std::move(h));
  STRATA_ASSIGN_OR_RETURN(result.config,
                          store.Put(config.Serialize(), std::string(media_type::kImageConfig)));

  Manifest m;
  m.media_type = std::string(media_type::kImageManifest);
  m.config = result.config;
  m.layers.push_back(result.layer.descriptor);
  STRATA_ASSIGN_OR_RETURN(result.manifest,
                          store.Put(m.Serialize(), std::string(media_type::kImageManifest)));
  return result;
}

}  // namespace strata::oci
