// oci-archive and OCI layout directories (oci/archive.h): save, and plan a
// load from index.json.
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
#include "oci/image_walk.h"
#include "oci/json_util.h"
#include "oci/manifest.h"
#include "oci/media_types.h"

namespace strata::oci {

using namespace archive_internal;

namespace {

// Appends every blob reachable from `d` (index children present in the
// store, manifests, configs, layers) to `out`, each once.
Status CollectBlobs(const Store& store, const Descriptor& d, std::vector<Digest>& out,
                    std::unordered_set<Digest>& seen) {
  ImageWalker walker;
  walker.visit = [&](const Descriptor& r, WalkNode node, const Descriptor* parent) -> Result<bool> {
    if (node == WalkNode::kConfig || node == WalkNode::kLayer) {
      if (!store.Has(r.digest)) {
        return MakeError(ErrorCode::kNotFound, "image {}: blob {} missing from the store",
                         parent->digest, r.digest);
      }
      if (seen.insert(r.digest).second) out.push_back(r.digest);
      return false;
    }
    if (!seen.insert(r.digest).second) return false;
    out.push_back(r.digest);
    return true;
  };
  walker.on_unreadable = [](const Descriptor& r, const Error& e) -> Status {
    return Unexpected(e.Wrap(r.digest.ToString()));
  };
  return WalkImage(store.blobs(), d, walker);
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

}  // namespace

namespace {

// What an OCI layout of `refs` holds: index.json's entries and every blob
// they reach, in order. `ref_name`, when set, replaces each entry's
// annotations with that ref.name alone (a layout tag such as "latest").
struct OciSavePlan {
  Index index;
  std::vector<Digest> blobs;
};

Result<OciSavePlan> PlanOciSave(const Store& store, const std::vector<std::string>& refs,
                                std::string_view ref_name) {
  if (refs.empty()) return MakeError(ErrorCode::kInvalidArgument, "save: no image named");
  OciSavePlan plan;
  plan.index.media_type = std::string(media_type::kImageIndex);
  std::unordered_set<Digest> seen;
  for (const auto& name : refs) {
    STRATA_ASSIGN_OR_RETURN(auto target, ResolveForSave(store, name));
    auto s = CollectBlobs(store, target.descriptor, plan.blobs, seen);
    if (!s) return Unexpected(s.error().Wrap(fmt::format("save {}", name)));
    Descriptor entry = Descriptor::Of(target.descriptor.media_type, target.descriptor.digest,
                                      target.descriptor.size);
    entry.platform = target.descriptor.platform;
    if (!ref_name.empty()) {
      entry.annotations[std::string(kAnnotationRefName)] = std::string(ref_name);
    } else if (target.ref) {
      entry.annotations[std::string(kAnnotationRefName)] = RefNameAnnotation(*target.ref);
      entry.annotations[std::string(kAnnotationImageName)] = target.ref->ToString();
    }
    plan.index.manifests.push_back(std::move(entry));
  }
  return plan;
}

std::optional<std::string> RefNameOf(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kAnnotationRefName));
  if (it == d.annotations.end()) return std::nullopt;
  return it->second;
}

// Copies a stored blob to `path` (atomically; the reader verifies it).
Status CopyBlobToFile(const Store& store, const Digest& d, const fs::path& path) {
  STRATA_ASSIGN_OR_RETURN(auto reader, store.Open(d));
  STRATA_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(path));
  std::vector<char> buf(kChunk);
  int64_t total = 0;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
    if (n == 0) break;
    total += static_cast<int64_t>(n);
    STRATA_RETURN_IF_ERROR(out.Write(buf.data(), n));
  }
  if (total != reader.size()) {
    return MakeError(ErrorCode::kDataLoss, "blob {} changed size while being saved", d);
  }
  return out.Commit();
}

}  // namespace

Status SaveOciArchive(const Store& store, const std::vector<std::string>& refs,
                      const fs::path& out) {
  STRATA_ASSIGN_OR_RETURN(auto plan, PlanOciSave(store, refs, {}));
  STRATA_ASSIGN_OR_RETURN(auto output, AtomicFile::Create(out));
  STRATA_ASSIGN_OR_RETURN(auto tar, TarWriter::Open(output.fd(), out.string()));
  STRATA_RETURN_IF_ERROR(tar.AddFile("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  STRATA_RETURN_IF_ERROR(tar.AddDir("blobs"));
  std::set<std::string> dirs;
  for (const auto& d : plan.blobs) {
    std::string dir = fmt::format("blobs/{}", d.algorithm_name());
    if (dirs.insert(dir).second) STRATA_RETURN_IF_ERROR(tar.AddDir(dir));
    auto s = WriteBlob(store, tar, d, BlobName(d));
    if (!s) return Unexpected(s.error().Wrap(fmt::format("save {}", out.string())));
  }
  STRATA_RETURN_IF_ERROR(tar.AddFile("index.json", DumpJson(plan.index.ToJson()) + "\n"));
  STRATA_RETURN_IF_ERROR(tar.Close());
  return output.Commit();
}

Status SaveOciLayout(const Store& store, const std::vector<std::string>& refs, const fs::path& dir,
                     std::string_view ref_name) {
  STRATA_ASSIGN_OR_RETURN(auto plan, PlanOciSave(store, refs, ref_name));
  auto wrap = [&](const Error& e) {
    return Unexpected(e.Wrap(fmt::format("save {}", dir.string())));
  };
  // An existing layout keeps its blobs and the index entries this save does
  // not replace; anything else in a non-empty directory is refused.
  Index index;
  index.media_type = std::string(media_type::kImageIndex);
  std::error_code ec;
  if (fs::exists(dir / "index.json", ec)) {
    auto text = ReadFile(dir / "index.json");
    if (!text) return wrap(text.error());
    auto old = Index::Parse(*text);
    if (!old) return wrap(old.error().Wrap("index.json"));
    index = std::move(*old);
  } else if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "save {}: the directory is neither empty nor an OCI layout", dir.string());
  }
  if (auto s = MakeDirs(dir / "blobs" / "sha256"); !s) return wrap(s.error());
  for (const auto& d : plan.blobs) {
    fs::path path = dir / BlobName(d);
    if (d.algorithm_name() != "sha256") {
      if (auto s = MakeDirs(path.parent_path()); !s) return wrap(s.error());
    }
    // Content-addressed: a blob already there with its size is kept (the
    // layout's readers verify digests); a wrong size is rewritten.
    auto size = store.Size(d);
    if (size && fs::is_regular_file(path, ec) &&
        static_cast<int64_t>(fs::file_size(path, ec)) == *size) {
      continue;
    }
    if (auto s = CopyBlobToFile(store, d, path); !s) return wrap(s.error());
  }
  std::vector<Descriptor> kept;
  for (auto& e : index.manifests) {
    bool replaced = false;
    for (const auto& n : plan.index.manifests) {
      auto a = RefNameOf(e);
      auto b = RefNameOf(n);
      if ((a && b && *a == *b) || (!b && e.digest == n.digest)) replaced = true;
    }
    if (!replaced) kept.push_back(std::move(e));
  }
  for (auto& n : plan.index.manifests) kept.push_back(std::move(n));
  index.manifests = std::move(kept);
  if (auto s = WriteFileAtomic(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"); !s) {
    return wrap(s.error());
  }
  if (auto s = WriteFileAtomic(dir / "index.json", DumpJson(index.ToJson()) + "\n"); !s) {
    return wrap(s.error());
  }
  return OkStatus();
}

namespace archive_internal {

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

}  // namespace archive_internal
}  // namespace strata::oci
