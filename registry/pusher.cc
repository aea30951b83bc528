#include "registry/pusher.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "oci/blob_sources.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"
#include "registry/puller.h"

namespace strata::registry {

namespace mt = oci::media_type;

// What a push has hashed of a local blob's bytes while sending them: bytes
// [0, upto) went through `hasher`; `actual` is set once all `size` did. Shared
// by every request body of one blob (PATCH chunks, resends), which only feed
// bytes beyond `upto`, so a resend from an earlier offset hashes nothing twice.
struct SendHash {
  SendHash(oci::Digest expected, int64_t size)
      : expected(std::move(expected)), size(size), hasher(this->expected.algorithm()) {}
  oci::Digest expected;
  int64_t size;
  oci::Digester hasher;
  int64_t upto = 0;
  std::optional<oci::Digest> actual;

  // Feeds `n` bytes read at `pos`; once all bytes are in, DataLoss if they do
  // not hash to `expected`.
  Status Feed(const char* buf, size_t n, int64_t pos) {
    const int64_t end = pos + static_cast<int64_t>(n);
    if (pos <= upto && end > upto) {
      hasher.Update(buf + (upto - pos), static_cast<size_t>(end - upto));
      upto = end;
    }
    if (upto >= size && !actual) actual = hasher.Finish();
    return Check();
  }
  Status Check() const {
    if (actual && *actual != expected)
      return MakeError(ErrorCode::kDataLoss,
                       "local blob {} is corrupt: digest mismatch: expected {}, actual {}",
                       expected, expected, *actual);
    return OkStatus();
  }
  // Hashes what was not sent yet (e.g. the registry reported more bytes than
  // we sent) straight from the file, then Check().
  Status Finish(const std::filesystem::path& path) {
    if (!actual) {
      STRATA_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
      char buf[1 << 16];
      while (upto < size) {
        size_t want = static_cast<size_t>(std::min<int64_t>(sizeof(buf), size - upto));
        ssize_t r = pread(fd.get(), buf, want, upto);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ErrnoError(errno, "read " + path.string());
        if (r == 0)
          return MakeError(ErrorCode::kDataLoss,
                           "local blob {} is corrupt: size mismatch: "
                           "expected {} bytes, actual {}",
                           expected, size, upto);
        hasher.Update(buf, static_cast<size_t>(r));
        upto += r;
      }
      actual = hasher.Finish();
    }
    return Check();
  }
};

namespace {

// A request body streaming bytes [offset, offset+len) of a file. With `hash`,
// every byte read goes through it, and the chunk that completes the blob is
// withheld if the blob does not match its digest: the request then fails
// before its body is complete, so the registry never finalizes such an upload.
std::function<Result<BodyReader>()> FileSlice(std::filesystem::path path, int64_t offset,
                                              int64_t len,
                                              std::shared_ptr<SendHash> hash = nullptr) {
  return [path = std::move(path), offset, len, hash]() -> Result<BodyReader> {
    STRATA_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
    auto file = std::make_shared<UniqueFd>(std::move(fd));
    auto pos = std::make_shared<int64_t>(offset);
    const int64_t end = offset + len;
    return BodyReader([file, pos, end, path, hash](char* buf, size_t n) -> Result<size_t> {
      size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), end - *pos));
      if (want == 0) return size_t{0};
      for (;;) {
        ssize_t r = pread(file->get(), buf, want, *pos);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ErrnoError(errno, "read " + path.string());
        if (r == 0)
          return MakeError(ErrorCode::kDataLoss, "{} is shorter than its size", path.string());
        if (hash) STRATA_RETURN_IF_ERROR(hash->Feed(buf, static_cast<size_t>(r), *pos));
        *pos += r;
        return static_cast<size_t>(r);
      }
    });
  };
}

// Whether a failed upload attempt may be repeated in a new upload session
// (see pusher.h).
bool Restartable(const RegistryError& e) {
  using P = ProtocolCode;
  if (e.code() == ErrorCode::kUnavailable) return true;
  if (e.Has(P::kBlobUploadUnknown) || e.Has(P::kBlobUploadInvalid) || e.Has(P::kDigestInvalid) ||
      e.Has(P::kSizeInvalid))
    return true;
  return e.http_status() == 416 || (e.http_status() == 404 && !e.HasProtocolCodes());
}

// Whether a failed mount means "not from there" (try the next source, then
// upload) rather than a failure an upload would meet as well.
bool MountRefused(const RegistryError& e) {
  return e.http_status() >= 400 && e.http_status() < 500 && e.http_status() != 429 &&
         !e.Has(ProtocolCode::kTooManyRequests);
}

}  // namespace

std::optional<int64_t> UploadedBytes(std::string_view range) {
  if (range.starts_with("bytes=")) range.remove_prefix(6);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  int64_t end = 0;
  auto [p, ec] = std::from_chars(range.data() + dash + 1, range.data() + range.size(), end);
  if (ec != std::errc() || p != range.data() + range.size()) return std::nullopt;
  return end == 0 ? 0 : end + 1;
}

RegistryResult<bool> HasBlob(const Session& s, const oci::Descriptor& d, const std::string& what) {
  Request head;
  head.method = "HEAD";
  head.url = s.RepoUrl() + "/blobs/" + d.digest.ToString();
  STRATA_ASSIGN_OR_RETURN(Response resp, s.Send(head, what, {200, 404}));
  return resp.status == 200;
}

bool HasManifest(const Session& s, const std::string& reference, const std::string& media_type,
                 const oci::Digest& digest) {
  Request req;
  req.method = "HEAD";
  req.url = s.RepoUrl() + "/manifests/" + reference;
  req.SetHeader("Accept", ManifestAccept(media_type));
  auto resp = s.transport->RoundTrip(req);
  if (!resp || resp->status != 200) return false;
  if (reference == digest.ToString()) return true;  // content-addressed
  if (auto header = oci::Digest::Parse(resp->GetHeader("Docker-Content-Digest")))
    return *header == digest;
  req.method = "GET";
  req.max_body = kMaxManifestBytes;
  resp = s.transport->RoundTrip(req);
  return resp && resp->status == 200 && oci::Digest::Of(resp->body) == digest;
}

RegistryResult<std::string> Pusher::StartUpload(const Session& s, const oci::Descriptor& d,
                                                const std::string& from, const std::string& what) {
  Request post;
  post.method = "POST";
  post.url = s.RepoUrl() + "/blobs/uploads/";
  if (!from.empty()) {
    post.url = AppendQuery(post.url, "mount", d.digest.ToString());
    post.url = AppendQuery(post.url, "from", from);
  }
  const std::string step = from.empty() ? what + ": start upload" : what + ": mount from " + from;
  STRATA_ASSIGN_OR_RETURN(
      Response resp, from.empty() ? s.Send(post, step, {202}) : s.Send(post, step, {201, 202}));
  if (resp.status == 201) return std::string();
  std::string loc = resp.GetHeader("Location");
  if (loc.empty())
    return MakeError(ErrorCode::kInternal, "{}: registry returned no upload location", step);
  STRATA_ASSIGN_OR_RETURN(std::string abs, ResolveLocation(post.url, loc));
  return abs;
}

RegistryResult<void> Pusher::UploadChunked(const Session& s, oci::Store& store,
                                           const oci::Descriptor& d, std::string location,
                                           const std::shared_ptr<SendHash>& hash,
                                           const PushOptions& opts) {
  const std::string what = fmt::format("upload blob {} to {}", d.digest, s.Where());
  const auto path = store.BlobPath(d.digest);
  int64_t offset = 0;
  int failures = 0;
  while (offset < d.size) {
    const int64_t len = std::min<int64_t>(std::max<int64_t>(opts.chunk_size, 1), d.size - offset);
    Request req;
    req.method = "PATCH";
    req.url = location;
    req.SetHeader("Content-Range", fmt::format("{}-{}", offset, offset + len - 1));
    req.SetHeader("Content-Type", "application/octet-stream");
    req.open_body = FileSlice(path, offset, len, hash);
    req.body_size = len;
    auto resp = s.Send(req, what, {202});
    if (resp) {
      if (auto loc = resp->GetHeader("Location"); !loc.empty()) {
        STRATA_ASSIGN_OR_RETURN(location, ResolveLocation(location, loc));
      }
      auto got = UploadedBytes(resp->GetHeader("Range"));
      offset = got && *got > offset ? *got : offset + len;
      Emit(opts.progress, ProgressEvent::Kind::kBlobBytes, d.digest, d.size, offset);
      continue;
    }
    const RegistryError& err = resp.error();
    const bool transient = err.http_status() == 0
                               ? err.code() == ErrorCode::kUnavailable
                               : IsRetryableStatus(err.http_status()) || err.http_status() == 416 ||
                                     err.Has(ProtocolCode::kTooManyRequests);
    if (!transient || ++failures > opts.max_resumes) return std::unexpected(err);
    // Ask the registry how much it has and continue from there.
    s.Backoff(failures);
    Request status_req;
    status_req.url = location;
    STRATA_ASSIGN_OR_RETURN(Response st, s.Send(status_req, what + ": upload status", {204, 200}));
    if (auto loc = st.GetHeader("Location"); !loc.empty()) {
      STRATA_ASSIGN_OR_RETURN(location, ResolveLocation(location, loc));
    }
    offset = UploadedBytes(st.GetHeader("Range")).value_or(0);
    Emit(opts.progress, ProgressEvent::Kind::kBlobRetrying, d.digest, d.size, offset,
         "resuming upload");
  }
  // Every byte was hashed on its way out (or now, from the file): never
  // finalize an upload whose bytes do not match the digest we claim.
  if (auto ok = hash->Finish(path); !ok) return Unexpected(ok.error().Wrap(what));
  Request put;
  put.method = "PUT";
  put.url = AppendQuery(location, "digest", d.digest.ToString());
  put.replayable = false;  // the registry may apply it and lose the response
  STRATA_RETURN_IF_ERROR(s.Send(put, what, {201, 204, 200}));
  return {};
}

RegistryResult<void> Pusher::UploadMonolithic(const Session& s, oci::Store& store,
                                              const oci::Descriptor& d, const std::string& location,
                                              const std::shared_ptr<SendHash>& hash) {
  const std::string what = fmt::format("upload blob {} to {}", d.digest, s.Where());
  Request put;
  put.method = "PUT";
  put.url = AppendQuery(location, "digest", d.digest.ToString());
  put.SetHeader("Content-Type", "application/octet-stream");
  put.open_body = FileSlice(store.BlobPath(d.digest), 0, d.size, hash);
  put.body_size = d.size;
  put.replayable = false;  // the registry may apply it and lose the response
  STRATA_RETURN_IF_ERROR(s.Send(put, what, {201, 204, 200}));
  return {};
}

RegistryResult<void> Pusher::PushBlob(const Session& s, oci::Store& store, const oci::Descriptor& d,
                                      const std::vector<std::string>& mount_from,
                                      const PushOptions& opts, PushResult& result) {
  const std::string what = fmt::format("push blob {} to {}", d.digest, s.Where());
  // The blob is in the destination repository now: remember it there (a hint
  // for later pushes; a failure to write it costs only a future mount).
  auto record = [&] { (void)oci::RecordBlobSource(store, d.digest, {s.domain, s.repo}); };
  STRATA_ASSIGN_OR_RETURN(bool present, HasBlob(s, d, what));
  if (present) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++result.blobs_skipped;
    }
    Emit(opts.progress, ProgressEvent::Kind::kBlobSkipped, d.digest, d.size);
    record();
    return {};
  }
  // A blob the store does not have (a lazy base layer) can still be
  // mounted; if no mount works it is fetched from its recorded source first.
  const bool local = store.Has(d.digest);
  std::string location;
  std::vector<std::string> sources;
  for (const auto& from : mount_from)
    if (from != s.repo) sources.push_back(from);
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string& from = sources[i];
    auto r = StartUpload(s, d, from, what);
    if (r && r->empty()) {
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++result.blobs_mounted;
      }
      Emit(opts.progress, ProgressEvent::Kind::kBlobMounted, d.digest, d.size, 0, from);
      record();
      return {};
    }
    if (r && i + 1 < sources.size()) {
      // 202: not mounted (the source does not have it: a stale record); as
      // docker does, drop the session and try the next source.
      Request cancel;
      cancel.method = "DELETE";
      cancel.url = *r;
      (void)s.transport->RoundTrip(cancel);
      continue;
    }
    if (r) {  // 202 from the last source: not mounted, but a session to use
      location = *r;
      break;
    }
    // Mounting is an optimization: a refusal tries the next source; anything
    // else (the registry is struggling) goes straight to a plain upload.
    if (!MountRefused(r.error())) break;
  }
  if (!local) {
    // Fetched into the store, then uploaded (not streamed through): the
    // bytes are verified before any of them is sent.
    PullOptions po;
    po.max_resumes = opts.max_resumes;
    po.progress = opts.progress;
    auto fetched = FetchRecordedBlob(sessions_, store, d, po);
    if (!fetched) {
      if (!location.empty()) {
        Request cancel;
        cancel.method = "DELETE";
        cancel.url = location;
        (void)s.transport->RoundTrip(cancel);
      }
      return std::unexpected(fetched.error().Wrap(what));
    }
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result.blobs_fetched;
    result.bytes_fetched += d.size;
  }

  Emit(opts.progress, ProgressEvent::Kind::kBlobStarted, d.digest, d.size);
  auto hash = std::make_shared<SendHash>(d.digest, d.size);
  for (int attempt = 0;; ++attempt) {
    if (location.empty()) {
      STRATA_ASSIGN_OR_RETURN(location, StartUpload(s, d, "", what));
    }
    RegistryResult<void> sent = d.size > opts.monolithic_max
                                    ? UploadChunked(s, store, d, location, hash, opts)
                                    : UploadMonolithic(s, store, d, location, hash);
    if (sent) break;
    RegistryError err = sent.error();
    if (!hash->Check()) {
      // The local copy is corrupt. The upload was cut before it could be
      // finalized; drop the session too (best effort).
      Request cancel;
      cancel.method = "DELETE";
      cancel.url = location;
      (void)s.transport->RoundTrip(cancel);
      if (err.code() == ErrorCode::kDataLoss) return std::unexpected(err);
      return Unexpected(hash->Check().error().Wrap(what));
    }
    // The request that finishes the upload may have been applied with its
    // response lost (then a resend finds the session closed: 404
    // BLOB_UPLOAD_UNKNOWN). Ask the registry before uploading again.
    if (auto there = HasBlob(s, d, what); there && *there) break;
    if (!Restartable(err) || attempt >= opts.max_resumes) return std::unexpected(err);
    Emit(opts.progress, ProgressEvent::Kind::kBlobRetrying, d.digest, d.size, 0,
         "restarting upload in a new session");
    location.clear();
    s.Backoff(attempt + 1);
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result.blobs_uploaded;
    result.bytes_uploaded += d.size;
  }
  Emit(opts.progress, ProgressEvent::Kind::kBlobDone, d.digest, d.size, d.size);
  record();
  return {};
}

RegistryResult<oci::Digest> Pusher::PutManifest(const Session& s, const std::string& reference,
                                                const std::string& media_type,
                                                const std::string& bytes, const PushOptions& opts) {
  const oci::Digest digest = oci::Digest::Of(bytes);
  const std::string what = fmt::format("push manifest {} to {}", digest, s.Named(reference));
  for (int attempt = 0;; ++attempt) {
    Request put;
    put.method = "PUT";
    put.url = s.RepoUrl() + "/manifests/" + reference;
    put.SetHeader("Content-Type", media_type);
    put.body = bytes;
    put.replayable = false;  // applied with a lost response: HEAD tells
    auto resp = s.Send(put, what, {201, 200, 202});
    if (resp) {
      if (auto header = oci::Digest::Parse(resp->GetHeader("Docker-Content-Digest"));
          header && *header != digest) {
        return MakeError(ErrorCode::kDataLoss,
                         "{}: digest mismatch: expected {}, the registry stored {}", what, digest,
                         *header);
      }
      break;
    }
    if (resp.error().code() != ErrorCode::kUnavailable) return std::unexpected(resp.error());
    // A lost response or a gateway error: the registry may have stored it.
    if (HasManifest(s, reference, media_type, digest)) break;
    if (attempt >= opts.max_resumes) return std::unexpected(resp.error());
    s.Backoff(attempt + 1);
  }
  Emit(opts.progress, ProgressEvent::Kind::kManifestPushed, digest,
       static_cast<int64_t>(bytes.size()), 0, reference);
  return digest;
}

RegistryResult<PushResult> Pusher::Push(oci::Store& store, std::string_view source,
                                        const oci::Reference& dest, const PushOptions& opts) {
  const std::string what = fmt::format("push {} to {}", source, dest.ToString());
  auto desc = store.Resolve(source);
  if (!desc) return std::unexpected(desc.error().Wrap(what));
  std::string media_type = desc->media_type;
  std::string top_bytes;
  if (media_type.empty() || mt::IsIndex(media_type)) {
    STRATA_ASSIGN_OR_RETURN(top_bytes, store.ReadBlob(desc->digest));
    if (media_type.empty()) {
      STRATA_ASSIGN_OR_RETURN(media_type, oci::DetectManifestMediaType(top_bytes));
    }
  }
  const std::string reference = !dest.tag().empty() ? dest.tag() : dest.digest()->ToString();

  // The manifests to push (an index's children, then the index; or one
  // manifest under `reference`), read before the session opens: the blobs'
  // recorded sources decide the token's scopes.
  struct ImageToPush {
    oci::Descriptor descriptor;
    std::string reference;  // tag or digest it is PUT as
    std::string bytes;
    std::vector<oci::Descriptor> blobs;
  };
  std::vector<ImageToPush> images;
  auto add_image = [&](const oci::Descriptor& m,
                       std::string ref_or_digest) -> RegistryResult<void> {
    ImageToPush img{m, std::move(ref_or_digest), "", {}};
    STRATA_ASSIGN_OR_RETURN(img.bytes, store.ReadBlob(m.digest));
    auto manifest = oci::Manifest::Parse(img.bytes);
    if (!manifest) return std::unexpected(manifest.error().Wrap(what));
    img.blobs = BlobsOf(*manifest);
    if (img.descriptor.media_type.empty()) {
      STRATA_ASSIGN_OR_RETURN(img.descriptor.media_type, oci::DetectManifestMediaType(img.bytes));
    }
    images.push_back(std::move(img));
    return {};
  };
  std::optional<oci::Index> index;
  if (mt::IsIndex(media_type)) {
    auto parsed = oci::Index::Parse(top_bytes);
    if (!parsed) return std::unexpected(parsed.error().Wrap(what));
    index = std::move(*parsed);
    for (const auto& m : index->manifests) {
      // A remote child (the other platforms of an index pulled for one):
      // fetched, verified, from its recorded source; its blobs are then
      // mounted or fetched like lazy layers. Never a partial index.
      if (!store.Has(m.digest)) {
        auto fetched = FetchRecordedManifest(sessions_, store, m);
        if (!fetched)
          return std::unexpected(fetched.error().Wrap(fmt::format(
              "{}: index lists manifest {} which is not in the store", what, m.digest)));
      }
      if (!mt::IsManifest(m.media_type))
        return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                         m.digest);
      STRATA_RETURN_IF_ERROR(add_image(m, m.digest.ToString()));
    }
  } else {
    oci::Descriptor m = *desc;
    m.media_type = media_type;
    STRATA_RETURN_IF_ERROR(add_image(m, reference));
  }

  // Mount sources per blob: the caller's, then the recorded repositories on
  // this registry. Each repository tried needs pull in the token's scope.
  std::vector<std::string> scopes = {RepositoryScope(dest.path(), "pull,push")};
  std::vector<std::string> scoped;  // repositories given a pull scope
  auto add_scope = [&](const std::string& repo, bool bounded) {
    if (repo == dest.path() || std::find(scoped.begin(), scoped.end(), repo) != scoped.end())
      return true;
    if (bounded &&
        static_cast<int>(scoped.size()) >=
            std::max<int>(opts.max_mount_scopes, static_cast<int>(opts.mount_from.size())))
      return false;
    scoped.push_back(repo);
    scopes.push_back(RepositoryScope(repo, "pull"));
    return true;
  };
  for (const auto& from : opts.mount_from) add_scope(from, false);
  std::unordered_map<oci::Digest, std::vector<std::string>> mounts;
  for (const auto& img : images) {
    for (const auto& b : img.blobs) {
      if (mounts.count(b.digest)) continue;
      std::vector<std::string>& from = mounts[b.digest];
      from = opts.mount_from;
      if (!opts.mount_recorded) continue;
      auto recorded = oci::ReadBlobSources(store, b.digest);
      if (!recorded) continue;  // a hint: without it the blob is uploaded
      int taken = 0;
      for (const auto& src : *recorded) {
        if (taken >= opts.max_recorded_mounts) break;
        if (src.registry != dest.domain() || src.repository == dest.path()) continue;
        if (std::find(from.begin(), from.end(), src.repository) != from.end()) continue;
        if (!add_scope(src.repository, true)) continue;
        from.push_back(src.repository);
        ++taken;
      }
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto s, sessions_.Open(dest.domain(), dest.path(), scopes, std::nullopt));

  PushResult result;
  result.ref = dest;
  for (const auto& img : images) {
    STRATA_RETURN_IF_ERROR(RunParallel(opts.jobs, img.blobs.size(), [&](size_t i) {
      return PushBlob(*s, store, img.blobs[i], mounts.at(img.blobs[i].digest), opts, result);
    }));
    STRATA_ASSIGN_OR_RETURN(
        oci::Digest d, PutManifest(*s, img.reference, img.descriptor.media_type, img.bytes, opts));
    if (!index) {
      result.descriptor = img.descriptor;
      result.descriptor.digest = d;
    }
  }
  if (index) {
    STRATA_ASSIGN_OR_RETURN(oci::Digest d, PutManifest(*s, reference, media_type, top_bytes, opts));
    result.descriptor = *desc;
    result.descriptor.media_type = media_type;
    result.descriptor.digest = d;
  }
  return result;
}

}  // namespace strata::registry
