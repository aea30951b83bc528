#include "registry/puller.h"

#include <algorithm>

#include "oci/blob_sources.h"
#include "oci/media_types.h"

namespace strata::registry {
namespace {

namespace mt = oci::media_type;

constexpr int64_t kProgressStep = 1 << 20;

std::string StripParams(std::string s) {
  s = s.substr(0, s.find(';'));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

oci::Digest DigestOfAlg(std::string_view bytes, oci::DigestAlgorithm alg) {
  oci::Digester h(alg);
  h.Update(bytes);
  return h.Finish();
}

}  // namespace

Result<size_t> SelectPlatform(const oci::Index& index, const oci::Platform& platform) {
  std::string offered;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const auto& m = index.manifests[i];
    if (!m.platform) continue;
    if (m.platform->Matches(platform)) return i;
    offered += (offered.empty() ? "" : ", ") + m.platform->ToString();
  }
  return MakeError(ErrorCode::kNotFound, "no manifest for platform {} (offered: {})",
                   platform.ToString(), offered.empty() ? "none" : offered);
}

Result<bool> HaveIntactLocalCopy(oci::Store& store, const oci::Descriptor& d,
                                 ProgressSink* progress) {
  if (!store.Has(d.digest)) return false;
  // Never skip on the strength of a name alone: re-hash what is there.
  auto verified = store.VerifyBlob(d.digest);
  if (verified) return true;
  if (verified.error().code() == ErrorCode::kNotFound) return false;  // removed meanwhile
  if (verified.error().code() != ErrorCode::kDataLoss) return Unexpected(verified.error());
  STRATA_ASSIGN_OR_RETURN(std::filesystem::path moved, store.QuarantineBlob(d.digest));
  if (moved.empty()) return store.Has(d.digest);  // a good copy was committed meanwhile
  Emit(progress, ProgressEvent::Kind::kBlobQuarantined, d.digest, d.size, 0, moved.string());
  return false;
}

RegistryResult<Resolved> Puller::FetchManifest(const Session& s, const std::string& reference,
                                               const std::optional<oci::Digest>& expect) {
  const std::string what = "resolve " + s.Named(reference);
  Request req;
  req.url = s.RepoUrl() + "/manifests/" + reference;
  req.SetHeader("Accept", ManifestAccept());
  req.max_body = kMaxManifestBytes;
  STRATA_ASSIGN_OR_RETURN(Response resp, s.Send(req, what, {200}));

  Resolved r;
  r.bytes = std::move(resp.body);
  std::string media_type = StripParams(resp.GetHeader("Content-Type"));
  if (!mt::IsManifest(media_type) && !mt::IsIndex(media_type)) {
    auto detected = oci::DetectManifestMediaType(r.bytes);
    if (!detected) return std::unexpected(detected.error().Wrap(what));
    media_type = *detected;
  }
  if (!mt::IsManifest(media_type) && !mt::IsIndex(media_type))
    return MakeError(ErrorCode::kUnimplemented, "{}: unsupported manifest type {}", what,
                     media_type);
  oci::Digest actual = oci::Digest::Of(r.bytes);
  if (expect) {
    oci::Digest got = DigestOfAlg(r.bytes, expect->algorithm());
    if (got != *expect)
      return MakeError(ErrorCode::kFailedPrecondition, "{}: digest mismatch: expected {}, got {}",
                       what, *expect, got);
    actual = got;
  }
  if (auto header = oci::Digest::Parse(resp.GetHeader("Docker-Content-Digest"));
      header && header->algorithm() == actual.algorithm() && *header != actual) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "{}: digest mismatch: the registry says {}, the content hashes to {}", what,
                     *header, actual);
  }
  r.descriptor.media_type = media_type;
  r.descriptor.digest = actual;
  r.descriptor.size = static_cast<int64_t>(r.bytes.size());
  return r;
}

RegistryResult<Resolved> Puller::Resolve(const oci::Reference& ref) {
  STRATA_ASSIGN_OR_RETURN(
      auto s, sessions_.Open(ref.domain(), ref.path(), {RepositoryScope(ref.path(), "pull")},
                             std::nullopt));
  std::string reference = ref.digest() ? ref.digest()->ToString() : ref.tag();
  return FetchManifest(*s, reference, ref.digest());
}

RegistryResult<void> Puller::FetchBlob(const Session& s, oci::Store& store,
                                       const oci::Descriptor& d, const PullOptions& opts,
                                       PullResult& result) {
  STRATA_ASSIGN_OR_RETURN(bool fetched, FetchBlobToStore(s, store, d, opts));
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (fetched) {
    ++result.blobs_fetched;
    result.bytes_fetched += d.size;
  } else {
    ++result.blobs_skipped;
  }
  return {};
}

RegistryResult<bool> FetchBlobToStore(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                      const PullOptions& opts) {
  const std::string what = fmt::format("fetch blob {} from {}", d.digest, s.Where());
  auto have = HaveIntactLocalCopy(store, d, opts.progress);
  if (!have) return Unexpected(have.error().Wrap(what));
  if (*have) {
    Emit(opts.progress, ProgressEvent::Kind::kBlobSkipped, d.digest, d.size);
    return false;
  }
  Emit(opts.progress, ProgressEvent::Kind::kBlobStarted, d.digest, d.size);
  std::optional<oci::BlobWriter> writer;
  auto restart = [&]() -> Status {
    STRATA_ASSIGN_OR_RETURN(oci::BlobWriter w, store.Ingest());
    writer.reset();
    writer.emplace(std::move(w));
    return OkStatus();
  };
  STRATA_RETURN_IF_ERROR(restart());
  int64_t next_report = kProgressStep;
  for (int attempt = 0;; ++attempt) {
    const int64_t offset = static_cast<int64_t>(writer->written());
    Request req;
    req.url = s.RepoUrl() + "/blobs/" + d.digest.ToString();
    if (offset > 0) req.SetHeader("Range", fmt::format("bytes={}-", offset));
    req.on_status = [&](int status) -> Status {
      // The registry ignored Range and sends the whole blob: start over.
      if (offset > 0 && status != 206) return restart();
      return OkStatus();
    };
    req.on_body = [&](std::string_view chunk) -> Status {
      const int64_t total = static_cast<int64_t>(writer->written() + chunk.size());
      if (d.size >= 0 && total > d.size)
        return MakeError(ErrorCode::kFailedPrecondition,
                         "{}: size mismatch: expected {} bytes, the registry sent more", what,
                         d.size);
      STRATA_RETURN_IF_ERROR(writer->Write(chunk));
      if (total >= next_report) {
        next_report = total + kProgressStep;
        Emit(opts.progress, ProgressEvent::Kind::kBlobBytes, d.digest, d.size, total);
      }
      return OkStatus();
    };
    auto resp = s.transport->RoundTrip(req);
    std::string why;
    if (!resp) {
      if (resp.error().code() != ErrorCode::kUnavailable)
        return std::unexpected(resp.error().Wrap(what));
      why = resp.error().message();
    } else if (resp->status == 416 && offset > 0) {
      STRATA_RETURN_IF_ERROR(restart());
      why = "registry refused the range";
    } else if (resp->status != 200 && resp->status != 206) {
      return std::unexpected(RegistryError(what, *resp));
    } else if (d.size >= 0 && static_cast<int64_t>(writer->written()) < d.size) {
      why = "short body";  // the body ended early without a connection error
    }
    if (why.empty()) break;
    if (attempt >= opts.max_resumes) {
      if (!resp) return std::unexpected(resp.error().Wrap(what));
      return MakeError(ErrorCode::kUnavailable, "{}: giving up after {} attempts: {}", what,
                       attempt + 1, why);
    }
    Emit(opts.progress, ProgressEvent::Kind::kBlobRetrying, d.digest, d.size,
         static_cast<int64_t>(writer->written()), "resuming");
    s.Backoff(attempt + 1);
  }
  auto committed = writer->Commit(d.media_type, d.digest, d.size);
  if (!committed) return std::unexpected(committed.error().Wrap(what));
  Emit(opts.progress, ProgressEvent::Kind::kBlobDone, d.digest, d.size, d.size);
  return true;
}

RegistryResult<bool> FetchRecordedBlob(SessionFactory& sessions, oci::Store& store,
                                       const oci::Descriptor& d, const PullOptions& opts) {
  if (store.Has(d.digest)) return false;
  auto sources = oci::ReadBlobSources(store, d.digest);
  if (!sources) return Unexpected(sources.error().Wrap(fmt::format("fetch blob {}", d.digest)));
  if (sources->empty())
    return MakeError(ErrorCode::kNotFound,
                     "blob {} is not in the store and no registry is recorded as its source",
                     d.digest);
  std::optional<RegistryError> last;
  std::string tried;
  for (const auto& src : *sources) {
    tried += (tried.empty() ? "" : ", ") + src.registry + "/" + src.repository;
    auto s = sessions.Open(src.registry, src.repository, {RepositoryScope(src.repository, "pull")},
                           std::nullopt);
    if (!s) {
      last = s.error();
      continue;
    }
    auto fetched = FetchBlobToStore(**s, store, d, opts);
    if (fetched) return fetched;
    last = fetched.error();
    // A blob whose bytes do not match its digest is not tried elsewhere
    // silently: that is a broken source, and the error says which.
    if (last->code() == ErrorCode::kFailedPrecondition) break;
  }
  return std::unexpected(last->Wrap(
      fmt::format("blob {} is not in the store; fetching it from its recorded source ({}) failed",
                  d.digest, tried)));
}

RegistryResult<bool> FetchRecordedManifest(SessionFactory& sessions, oci::Store& store,
                                           const oci::Descriptor& d) {
  if (store.Has(d.digest)) return false;
  const std::string what = fmt::format("fetch manifest {}", d.digest);
  auto sources = oci::ReadBlobSources(store, d.digest);
  if (!sources) return Unexpected(sources.error().Wrap(what));
  if (sources->empty())
    return MakeError(ErrorCode::kNotFound,
                     "manifest {} is not in the store and no registry is recorded as its source",
                     d.digest);
  std::optional<RegistryError> last;
  std::string tried;
  for (const auto& src : *sources) {
    tried += (tried.empty() ? "" : ", ") + src.registry + "/" + src.repository;
    auto s = sessions.Open(src.registry, src.repository, {RepositoryScope(src.repository, "pull")},
                           std::nullopt);
    if (!s) {
      last = s.error();
      continue;
    }
    auto got = Puller::FetchManifest(**s, d.digest.ToString(), d.digest);
    if (!got) {
      last = got.error();
      if (last->code() == ErrorCode::kFailedPrecondition) break;
      continue;
    }
    auto m = oci::Manifest::Parse(got->bytes);
    if (!m) return std::unexpected(m.error().Wrap(what));
    for (const auto& b : BlobsOf(*m)) (void)oci::RecordBlobSource(store, b.digest, src);
    auto put = store.Put(got->bytes, got->descriptor.media_type);
    if (!put) return std::unexpected(put.error().Wrap(what));
    return true;
  }
  return std::unexpected(last->Wrap(
      fmt::format("manifest {} is not in the store; fetching it from its recorded source ({}) "
                  "failed",
                  d.digest, tried)));
}

RegistryResult<void> Puller::FetchImageBlobs(const Session& s, oci::Store& store,
                                             const Resolved& image, const PullOptions& opts,
                                             PullResult& result, const std::string& what,
                                             bool put) {
  auto manifest = oci::Manifest::Parse(image.bytes);
  if (!manifest) return std::unexpected(manifest.error().Wrap(what));
  const std::vector<oci::Descriptor> blobs = BlobsOf(*manifest);
  // Without layers: the config only (a lazy base, see PullOptions::layers).
  const std::vector<oci::Descriptor> fetch =
      opts.layers ? blobs : std::vector<oci::Descriptor>{manifest->config};
  STRATA_RETURN_IF_ERROR(RunParallel(opts.jobs, fetch.size(), [&](size_t i) {
    return FetchBlob(s, store, fetch[i], opts, result);
  }));
  // Where these blobs live, for a later push's cross-repository mounts: a
  // hint, so a record that cannot be written does not fail the pull.
  for (const auto& b : blobs) (void)oci::RecordBlobSource(store, b.digest, {s.domain, s.repo});
  if (!put) return {};
  auto have = HaveIntactLocalCopy(store, image.descriptor, opts.progress);
  if (!have) return Unexpected(have.error().Wrap(what));
  auto stored = store.Put(image.bytes, image.descriptor.media_type);
  if (!stored) return std::unexpected(stored.error().Wrap(what));
  return {};
}

RegistryResult<PullResult> Puller::Pull(oci::Store& store, const oci::Reference& ref,
                                        const PullOptions& opts) {
  const std::string what = fmt::format("pull {}", ref.ToString());
  STRATA_ASSIGN_OR_RETURN(
      auto s, sessions_.Open(ref.domain(), ref.path(), {RepositoryScope(ref.path(), "pull")},
                             std::nullopt));
  const std::string reference = ref.digest() ? ref.digest()->ToString() : ref.tag();
  STRATA_ASSIGN_OR_RETURN(Resolved top, FetchManifest(*s, reference, ref.digest()));
  Emit(opts.progress, ProgressEvent::Kind::kResolved, top.descriptor.digest, top.descriptor.size, 0,
       top.descriptor.media_type);

  PullResult result;
  result.ref = ref;
  Resolved image = top;
  std::optional<oci::Platform> platform;
  std::optional<oci::Index> index;
  if (mt::IsIndex(top.descriptor.media_type)) {
    auto parsed = oci::Index::Parse(top.bytes);
    if (!parsed) return std::unexpected(parsed.error().Wrap(what));
    index = std::move(*parsed);
    // Every manifest the index lists is in this repository: recorded so that
    // fsck, prune and push know where the ones not fetched are.
    for (const auto& m : index->manifests)
      (void)oci::RecordBlobSource(store, m.digest, {s->domain, s->repo});
    result.index = top.descriptor;
  }
  if (index && opts.all_platforms) {
    for (const auto& child : index->manifests) {
      STRATA_ASSIGN_OR_RETURN(Resolved m, FetchManifest(*s, child.digest.ToString(), child.digest));
      if (!mt::IsManifest(m.descriptor.media_type))
        return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                         child.digest);
      STRATA_RETURN_IF_ERROR(FetchImageBlobs(*s, store, m, opts, result, what));
    }
    auto have = HaveIntactLocalCopy(store, top.descriptor, opts.progress);
    if (!have) return Unexpected(have.error().Wrap(what));
    auto put_index = store.Put(top.bytes, top.descriptor.media_type);
    if (!put_index) return std::unexpected(put_index.error().Wrap(what));
    result.manifest = top.descriptor;
    STRATA_RETURN_IF_ERROR(store.Tag(ref, result.manifest));
    return result;
  }
  if (index) {
    auto i = SelectPlatform(*index, opts.platform);
    if (!i) return std::unexpected(i.error().Wrap(what));
    const oci::Descriptor& child = index->manifests[*i];
    STRATA_ASSIGN_OR_RETURN(image, FetchManifest(*s, child.digest.ToString(), child.digest));
    if (!mt::IsManifest(image.descriptor.media_type))
      return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                       child.digest);
    platform = child.platform;
  }
  STRATA_RETURN_IF_ERROR(FetchImageBlobs(*s, store, image, opts, result, what, /*put=*/false));

  // Store::Put skips a digest it has; make sure what it has is intact.
  std::vector<oci::Descriptor> documents = {image.descriptor};
  if (result.index) documents.push_back(top.descriptor);
  for (const auto& doc : documents) {
    auto have = HaveIntactLocalCopy(store, doc, opts.progress);
    if (!have) return Unexpected(have.error().Wrap(what));
  }
  auto put = store.Put(image.bytes, image.descriptor.media_type);
  if (!put) return std::unexpected(put.error().Wrap(what));
  if (result.index) {
    auto put_index = store.Put(top.bytes, top.descriptor.media_type);
    if (!put_index) return std::unexpected(put_index.error().Wrap(what));
  }
  result.manifest = image.descriptor;
  result.manifest.platform = platform;
  // Tagged even without its layers: the next build finds it offline (a
  // cached rebuild never asks the registry), and whatever reads its layers
  // fetches them from the recorded source first (or names it in its error).
  STRATA_RETURN_IF_ERROR(store.Tag(ref, result.manifest));
  return result;
}

}  // namespace strata::registry
