#include "oci/referrers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "oci/json_util.h"
#include "oci/media_types.h"
#include "oci/store.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"

namespace strata::oci {
namespace fs = std::filesystem;

namespace {

fs::path ReferrersDir(const Store& store) { return store.root() / "referrers"; }

fs::path RecordPath(const Store& store, const Digest& d) {
  return ReferrersDir(store) / std::string(d.algorithm_name()) / d.hex();
}

// ROOT/referrers/.lock held exclusively: one read-modify-write at a time.
Result<UniqueFd> LockReferrers(const Store& store) {
  STRATA_RETURN_IF_ERROR(MakeDirs(ReferrersDir(store)));
  const fs::path path = ReferrersDir(store) / ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path.string()));
  UniqueFd owner(fd);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError(errno, fmt::format("lock {}", path.string()));
  }
  return owner;
}

void SortUnique(std::vector<Descriptor>& v) {
  std::stable_sort(v.begin(), v.end(), [](const Descriptor& a, const Descriptor& b) {
    return a.digest.ToString() < b.digest.ToString();
  });
  v.erase(
      std::unique(v.begin(), v.end(),
                  [](const Descriptor& a, const Descriptor& b) { return a.digest == b.digest; }),
      v.end());
}

}  // namespace

Descriptor EmptyJsonDescriptor() {
  return Descriptor::Of(std::string(media_type::kEmptyJson), Digest::Of(kEmptyJsonBytes),
                        static_cast<int64_t>(kEmptyJsonBytes.size()));
}

std::string AttestationManifest(const Descriptor& subject, const Descriptor& statement,
                                std::string_view artifact_type, std::string_view predicate_type,
                                std::string_view created) {
  Manifest m;
  m.media_type = std::string(media_type::kImageManifest);
  m.artifact_type = std::string(artifact_type);
  m.config = EmptyJsonDescriptor();
  Descriptor layer = statement;
  layer.media_type = std::string(kInTotoMediaType);
  layer.annotations[std::string(kAnnotationPredicateType)] = std::string(predicate_type);
  m.layers.push_back(std::move(layer));
  // The subject as the spec wants it: media type, digest, size only.
  m.subject = Descriptor::Of(subject.media_type, subject.digest, subject.size);
  m.annotations[std::string(kAnnotationPredicateType)] = std::string(predicate_type);
  if (!created.empty()) m.annotations[std::string(kAnnotationCreated)] = std::string(created);
  return m.Serialize();
}

Result<Descriptor> PutAttestation(Store& store, const Descriptor& subject,
                                  std::string_view statement, std::string_view artifact_type,
                                  std::string_view predicate_type, std::string_view created) {
  if (!store.Has(subject.digest)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "attestation for {}: the manifest is not in the store", subject.digest);
  }
  if (subject.media_type.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "attestation for {}: subject has no media type",
                     subject.digest);
  }
  STRATA_ASSIGN_OR_RETURN(auto stmt, store.Put(statement, std::string(kInTotoMediaType)));
  STRATA_ASSIGN_OR_RETURN(auto cfg,
                          store.Put(kEmptyJsonBytes, std::string(media_type::kEmptyJson)));
  (void)cfg;
  const std::string bytes =
      AttestationManifest(subject, stmt, artifact_type, predicate_type, created);
  STRATA_ASSIGN_OR_RETURN(auto desc, store.Put(bytes, std::string(media_type::kImageManifest)));
  desc.artifact_type = std::string(artifact_type);
  desc.annotations[std::string(kAnnotationPredicateType)] = std::string(predicate_type);
  if (!created.empty()) desc.annotations[std::string(kAnnotationCreated)] = std::string(created);
  STRATA_RETURN_IF_ERROR(AddReferrer(store, subject.digest, desc));
  return desc;
}

Result<std::vector<Descriptor>> ListReferrers(const Store& store, const Digest& subject) {
  const fs::path path = RecordPath(store, subject);
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::vector<Descriptor>{};
    return Unexpected(text.error());
  }
  auto idx = Index::Parse(*text);
  if (!idx) {
    return MakeError(ErrorCode::kDataLoss, "referrers record {}: {}", path.string(),
                     idx.error().message());
  }
  SortUnique(idx->manifests);
  return idx->manifests;
}

Status AddReferrer(const Store& store, const Digest& subject, const Descriptor& referrer) {
  STRATA_ASSIGN_OR_RETURN(UniqueFd lock, LockReferrers(store));
  STRATA_ASSIGN_OR_RETURN(auto list, ListReferrers(store, subject));
  for (const auto& r : list) {
    if (r.digest == referrer.digest) return OkStatus();
  }
  list.push_back(referrer);
  const fs::path path = RecordPath(store, subject);
  STRATA_RETURN_IF_ERROR(MakeDirs(path.parent_path()));
  return WriteFileAtomic(path, ReferrersIndex(std::move(list)).Serialize());
}

Index ReferrersIndex(std::vector<Descriptor> referrers) {
  SortUnique(referrers);
  Index idx;
  idx.media_type = std::string(media_type::kImageIndex);
  idx.manifests = std::move(referrers);
  return idx;
}

std::vector<Descriptor> MergeReferrers(std::vector<Descriptor> referrers,
                                       const std::vector<Descriptor>& more) {
  referrers.insert(referrers.end(), more.begin(), more.end());
  SortUnique(referrers);  // stable: ours win over `more` for the same digest
  return referrers;
}

std::string ReferrersTag(const Digest& subject) {
  return std::string(subject.algorithm_name()) + "-" + subject.hex();
}

Result<bool> ReferrerIsKind(const Descriptor& referrer, std::string_view kind) {
  std::string_view predicate, artifact;
  if (kind == "sbom") {
    predicate = kSpdxPredicateType;
    artifact = kSbomArtifactType;
  } else if (kind == "provenance") {
    predicate = kSlsaProvenanceV1PredicateType;
    artifact = kProvenanceArtifactType;
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "attestation type {}: want sbom or provenance",
                     kind);
  }
  auto it = referrer.annotations.find(std::string(kAnnotationPredicateType));
  if (it != referrer.annotations.end()) return it->second == predicate;
  return referrer.artifact_type == artifact;
}

Status MarkReferrers(const Store& store, GcMarks& marks) {
  std::error_code ec;
  if (!fs::exists(ReferrersDir(store), ec)) return OkStatus();
  STRATA_ASSIGN_OR_RETURN(UniqueFd lock, LockReferrers(store));
  // Subjects with a record, found once; each round marks the referrers of
  // the subjects that became live. At most one round per record.
  std::vector<Digest> subjects;
  std::vector<fs::path> stale;
  for (fs::directory_iterator alg(ReferrersDir(store), ec), end; !ec && alg != end;
       alg.increment(ec)) {
    if (!alg->is_directory(ec)) continue;
    std::error_code ec2;
    for (fs::directory_iterator it(alg->path(), ec2); !ec2 && it != end; it.increment(ec2)) {
      auto d =
          Digest::Parse(alg->path().filename().string() + ":" + it->path().filename().string());
      if (d) {
        subjects.push_back(*d);
      } else {
        stale.push_back(it->path());  // a killed writer's temp file
      }
    }
    if (ec2) return ErrnoError(ec2.value(), fmt::format("list {}", alg->path().string()));
  }
  if (ec) return ErrnoError(ec.value(), fmt::format("list {}", ReferrersDir(store).string()));
  std::unordered_set<Digest> done;
  for (size_t round = 0; round <= subjects.size(); ++round) {
    bool progressed = false;
    for (const auto& s : subjects) {
      if (done.count(s) || !marks.live.count(s)) continue;
      done.insert(s);
      progressed = true;
      STRATA_ASSIGN_OR_RETURN(auto list, ListReferrers(store, s));
      for (const auto& r : list) {
        MarkReachable(
            store.blobs(), r, marks, [](std::string) {}, [](std::string) {});
      }
    }
    if (!progressed) break;
  }
  for (const auto& s : subjects) {
    if (!done.count(s)) stale.push_back(RecordPath(store, s));
  }
  for (const auto& p : stale) ::unlink(p.c_str());
  return OkStatus();
}

}  // namespace strata::oci

namespace strata::oci {

Result<Descriptor> PutBuildkitAttestationIndex(Store& store, const Descriptor& image,
                                               const Platform& platform,
                                               const std::vector<Statement>& statements) {
  Manifest att;
  att.media_type = std::string(media_type::kImageManifest);
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const auto& s : statements) {
    STRATA_ASSIGN_OR_RETURN(auto d, store.Put(s.bytes, std::string(kInTotoMediaType)));
    d.annotations[std::string(kAnnotationPredicateType)] = s.predicate_type;
    diff_ids.push_back(d.digest.ToString());
    att.layers.push_back(std::move(d));
  }
  const nlohmann::json cfg = {{"architecture", "unknown"},
                              {"os", "unknown"},
                              {"config", nlohmann::json::object()},
                              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  STRATA_ASSIGN_OR_RETURN(att.config,
                          store.Put(DumpJson(cfg), std::string(media_type::kImageConfig)));
  STRATA_ASSIGN_OR_RETURN(auto att_desc,
                          store.Put(att.Serialize(), std::string(media_type::kImageManifest)));
  att_desc.annotations[std::string(kAnnotationReferenceDigest)] = image.digest.ToString();
  att_desc.annotations[std::string(kAnnotationReferenceType)] =
      std::string(kReferenceTypeAttestation);
  Platform unknown;
  unknown.os = "unknown";
  unknown.architecture = "unknown";
  att_desc.platform = unknown;
  Descriptor img = Descriptor::Of(image.media_type, image.digest, image.size);
  img.platform = platform;
  Index idx;
  idx.media_type = std::string(media_type::kImageIndex);
  idx.manifests = {img, att_desc};
  return store.Put(idx.Serialize(), std::string(media_type::kImageIndex));
}

std::vector<Descriptor> BuildkitAttestations(const Index& index, const Digest& image) {
  std::vector<Descriptor> out;
  for (const auto& m : index.manifests) {
    auto t = m.annotations.find(std::string(kAnnotationReferenceType));
    auto d = m.annotations.find(std::string(kAnnotationReferenceDigest));
    if (t == m.annotations.end() || t->second != kReferenceTypeAttestation) continue;
    if (d == m.annotations.end() || d->second != image.ToString()) continue;
    out.push_back(m);
  }
  return out;
}

}  // namespace strata::oci
