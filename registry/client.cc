#include "registry/client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/file_util.h"
#include "registry/curl_transport.h"
#include "registry/errors.h"

namespace strata::registry {
namespace {

namespace mt = oci::media_type;

constexpr int64_t kMaxManifestBytes = 4 << 20;
constexpr int64_t kProgressStep = 1 << 20;

void Emit(ProgressSink* sink, ProgressEvent::Kind kind, const oci::Digest& d, int64_t size,
          int64_t bytes = 0, std::string detail = "") {
  if (sink == nullptr) return;
  sink->OnEvent(ProgressEvent{kind, d, size, bytes, std::move(detail)});
}

bool IsLocalhost(std::string_view authority) {
  std::string_view host = authority;
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

// Runs fn(0..n-1) on up to `jobs` threads; stops handing out work after the
// first error, which it returns.
Status RunParallel(int jobs, size_t n, const std::function<Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first;
  auto worker = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      Status s = fn(i);
      if (!s) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = s.error();
        failed = true;
      }
    }
  };
  size_t threads = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), n);
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::jthread> pool;
    for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  }
  if (first) return std::unexpected(*first);
  return OkStatus();
}

}  // namespace

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

// "0-N" (Range of an upload status) -> N+1 bytes received; nullopt if absent.
std::optional<int64_t> UploadedBytes(std::string_view range) {
  if (range.starts_with("bytes=")) range.remove_prefix(6);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  int64_t end = 0;
  auto [p, ec] = std::from_chars(range.data() + dash + 1, range.data() + range.size(), end);
  if (ec != std::errc()) return std::nullopt;
  (void)p;
  return end == 0 ? 0 : end + 1;
}

std::string StripParams(std::string s) {
  s = s.substr(0, s.find(';'));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Result<oci::Digest> DigestOfAlg(std::string_view bytes, oci::DigestAlgorithm alg) {
  oci::Digester h(alg);
  h.Update(bytes);
  return h.Finish();
}

}  // namespace

struct Client::Session {
  std::string domain;  // as in the reference (credentials, messages)
  std::string base;    // scheme://authority
  std::string repo;
  std::shared_ptr<Transport> transport;
  std::string Where() const { return domain + "/" + repo; }
  std::string RepoUrl() const { return base + "/v2/" + repo; }
};

void ClientOptions::AddInsecureFromEnvironment() {
  const char* v = std::getenv("STRATA_INSECURE_REGISTRIES");
  if (v == nullptr) return;
  std::string_view s(v);
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) insecure_registries.insert(std::string(item));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

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

Client::Client(std::shared_ptr<Transport> base, std::shared_ptr<const CredentialStore> credentials,
               ClientOptions options, std::shared_ptr<Clock> clock)
    : base_(std::move(base)),
      credentials_(std::move(credentials)),
      options_(std::move(options)),
      clock_(std::move(clock)),
      tokens_(std::make_shared<TokenCache>()) {
  redirect_ = std::make_shared<RedirectTransport>(base_);
  retrying_ = std::make_shared<RetryTransport>(redirect_, options_.retry, clock_);
}

std::unique_ptr<Client> Client::Create(std::shared_ptr<const CredentialStore> credentials,
                                       ClientOptions options) {
  CurlTransportOptions topts;
  topts.certs_dirs = options.certs_dirs;
  topts.low_speed_limit = options.low_speed_limit;
  topts.low_speed_time = options.low_speed_time;
  topts.tls_verify = options.tls_verify;
  for (const auto& h : options.insecure_registries) {
    topts.insecure_hosts.insert(h);
    topts.insecure_hosts.insert(RegistryApiHost(h));
  }
  topts.user_agent = options.user_agent;
  auto curl = std::make_shared<CurlTransport>(std::move(topts));
  return std::make_unique<Client>(std::move(curl), std::move(credentials), std::move(options));
}

bool Client::IsInsecure(const std::string& host) const {
  return !options_.tls_verify || options_.insecure_registries.contains(host);
}

Result<std::shared_ptr<Client::Session>> Client::OpenSession(
    const std::string& domain, const std::string& repo, std::vector<std::string> scopes,
    const std::optional<AuthConfig>& auth_override) {
  const std::string authority = RegistryApiHost(domain);
  const bool may_use_http = IsInsecure(domain) || IsInsecure(authority) || IsLocalhost(authority);

  auto ping = [&](Transport& t, const std::string& scheme) {
    Request req;
    req.url = scheme + "://" + authority + "/v2/";
    req.max_body = 1 << 20;
    return t.RoundTrip(req);
  };
  std::string scheme = "https";
  Result<Response> pong = ping(*redirect_, scheme);
  if (!pong && pong.error().code() == ErrorCode::kUnavailable) {
    if (may_use_http) scheme = "http";
    pong = ping(*retrying_, scheme);
  }
  if (!pong) return std::unexpected(pong.error().Wrap(fmt::format("registry {}", domain)));
  std::vector<Challenge> challenges;
  if (pong->status == 401) {
    challenges = ChallengesFrom(*pong);
  } else if (pong->status != 200) {
    return Unexpected(ResponseError(fmt::format("registry {}: ping", domain), *pong));
  }

  AuthConfig creds;
  if (auth_override) {
    creds = *auth_override;
  } else if (credentials_) {
    STRATA_ASSIGN_OR_RETURN(creds, credentials_->Lookup(domain, repo));
  }
  auto authenticator =
      std::make_shared<Authenticator>(retrying_, domain, std::move(creds), clock_, tokens_);
  auto session = std::make_shared<Session>();
  session->domain = domain;
  session->base = scheme + "://" + authority;
  session->repo = repo;
  session->transport = std::make_shared<AuthTransport>(
      retrying_, std::move(authenticator), authority, std::move(scopes), std::move(challenges));
  return session;
}

Result<Resolved> Client::FetchManifest(Session& s, const std::string& reference,
                                       const std::optional<oci::Digest>& expect) {
  const std::string what =
      fmt::format("resolve {}{}{}", s.Where(), reference.starts_with("sha") ? "@" : ":", reference);
  Request req;
  req.url = s.RepoUrl() + "/manifests/" + reference;
  req.SetHeader("Accept", fmt::format("{}, {}, {}, {}", mt::kImageManifest, mt::kImageIndex,
                                      mt::kDockerManifest, mt::kDockerManifestList));
  req.max_body = kMaxManifestBytes;
  auto resp = s.transport->RoundTrip(req);
  if (!resp) return std::unexpected(resp.error().Wrap(what));
  if (resp->status != 200) return Unexpected(ResponseError(what, *resp));

  Resolved r;
  r.bytes = std::move(resp->body);
  std::string media_type = StripParams(resp->GetHeader("Content-Type"));
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
    STRATA_ASSIGN_OR_RETURN(oci::Digest got, DigestOfAlg(r.bytes, expect->algorithm()));
    if (got != *expect)
      return MakeError(ErrorCode::kFailedPrecondition, "{}: digest mismatch: expected {}, got {}",
                       what, *expect, got);
    actual = got;
  }
  if (auto header = oci::Digest::Parse(resp->GetHeader("Docker-Content-Digest"));
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

Result<Resolved> Client::Resolve(const oci::Reference& ref) {
  STRATA_ASSIGN_OR_RETURN(auto s, OpenSession(ref.domain(), ref.path(),
                                              {RepositoryScope(ref.path(), "pull")}, std::nullopt));
  std::string reference = ref.digest() ? ref.digest()->ToString() : ref.tag();
  return FetchManifest(*s, reference, ref.digest());
}

Result<bool> Client::HaveIntactLocalCopy(oci::Store& store, const oci::Descriptor& d,
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

Status Client::FetchBlob(Session& s, oci::Store& store, const oci::Descriptor& d,
                         const PullOptions& opts, PullResult& result) {
  const std::string what = fmt::format("fetch blob {} from {}", d.digest, s.Where());
  auto have = HaveIntactLocalCopy(store, d, opts.progress);
  if (!have) return Unexpected(have.error().Wrap(what));
  if (*have) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++result.blobs_skipped;
    }
    Emit(opts.progress, ProgressEvent::Kind::kBlobSkipped, d.digest, d.size);
    return OkStatus();
  }
  Emit(opts.progress, ProgressEvent::Kind::kBlobStarted, d.digest, d.size);
  std::optional<oci::BlobWriter> writer;
  {
    STRATA_ASSIGN_OR_RETURN(oci::BlobWriter w, store.Ingest());
    writer.emplace(std::move(w));
  }
  int64_t next_report = kProgressStep;
  for (int attempt = 0;; ++attempt) {
    const int64_t offset = static_cast<int64_t>(writer->written());
    Request req;
    req.url = s.RepoUrl() + "/blobs/" + d.digest.ToString();
    if (offset > 0) req.SetHeader("Range", fmt::format("bytes={}-", offset));
    req.on_status = [&](int status) -> Status {
      if (offset > 0 && status != 206) {
        // The registry ignored Range and sends the whole blob: start over.
        STRATA_ASSIGN_OR_RETURN(oci::BlobWriter w, store.Ingest());
        writer.reset();
        writer.emplace(std::move(w));
      }
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
    bool retry = false;
    std::string why;
    if (!resp) {
      if (resp.error().code() != ErrorCode::kUnavailable)
        return std::unexpected(resp.error().Wrap(what));
      retry = true;
      why = resp.error().message();
    } else if (resp->status == 416 && offset > 0) {
      STRATA_ASSIGN_OR_RETURN(oci::BlobWriter w, store.Ingest());
      writer.reset();
      writer.emplace(std::move(w));
      retry = true;
      why = "registry refused the range";
    } else if (resp->status != 200 && resp->status != 206) {
      return Unexpected(ResponseError(what, *resp));
    } else if (d.size >= 0 && static_cast<int64_t>(writer->written()) < d.size) {
      retry = true;  // the body ended early without a connection error
      why = "short body";
    }
    if (!retry) break;
    if (attempt >= opts.max_resumes) {
      if (!resp) return std::unexpected(resp.error().Wrap(what));
      return MakeError(ErrorCode::kUnavailable, "{}: giving up after {} attempts: {}", what,
                       attempt + 1, why);
    }
    Emit(opts.progress, ProgressEvent::Kind::kBlobRetrying, d.digest, d.size,
         static_cast<int64_t>(writer->written()), "resuming");
    clock_->Sleep(options_.retry.BackoffFor(attempt + 1));
  }
  auto committed = writer->Commit(d.media_type, d.digest, d.size);
  if (!committed) return std::unexpected(committed.error().Wrap(what));
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result.blobs_fetched;
    result.bytes_fetched += d.size;
  }
  Emit(opts.progress, ProgressEvent::Kind::kBlobDone, d.digest, d.size, d.size);
  return OkStatus();
}

Result<PullResult> Client::Pull(oci::Store& store, const oci::Reference& ref,
                                const PullOptions& opts) {
  const std::string what = fmt::format("pull {}", ref.ToString());
  STRATA_ASSIGN_OR_RETURN(auto s, OpenSession(ref.domain(), ref.path(),
                                              {RepositoryScope(ref.path(), "pull")}, std::nullopt));
  const std::string reference = ref.digest() ? ref.digest()->ToString() : ref.tag();
  STRATA_ASSIGN_OR_RETURN(Resolved top, FetchManifest(*s, reference, ref.digest()));
  Emit(opts.progress, ProgressEvent::Kind::kResolved, top.descriptor.digest, top.descriptor.size, 0,
       top.descriptor.media_type);

  PullResult result;
  result.ref = ref;
  Resolved image = top;
  std::optional<oci::Platform> platform;
  if (mt::IsIndex(top.descriptor.media_type)) {
    auto index = oci::Index::Parse(top.bytes);
    if (!index) return std::unexpected(index.error().Wrap(what));
    auto i = SelectPlatform(*index, opts.platform);
    if (!i) return std::unexpected(i.error().Wrap(what));
    const oci::Descriptor& child = index->manifests[*i];
    STRATA_ASSIGN_OR_RETURN(image, FetchManifest(*s, child.digest.ToString(), child.digest));
    if (!mt::IsManifest(image.descriptor.media_type))
      return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                       child.digest);
    platform = child.platform;
    result.index = top.descriptor;
  }
  auto manifest = oci::Manifest::Parse(image.bytes);
  if (!manifest) return std::unexpected(manifest.error().Wrap(what));

  std::vector<oci::Descriptor> blobs;
  blobs.push_back(manifest->config);
  for (const auto& l : manifest->layers) {
    bool dup = std::any_of(blobs.begin(), blobs.end(),
                           [&](const oci::Descriptor& b) { return b.digest == l.digest; });
    if (!dup) blobs.push_back(l);
  }
  STRATA_RETURN_IF_ERROR(RunParallel(opts.jobs, blobs.size(), [&](size_t i) {
    return FetchBlob(*s, store, blobs[i], opts, result);
  }));

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
  STRATA_RETURN_IF_ERROR(store.Tag(ref, result.manifest));
  return result;
}

Status Client::UploadChunked(Session& s, oci::Store& store, const oci::Descriptor& d,
                             std::string location, const std::shared_ptr<SendHash>& hash,
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
    auto resp = s.transport->RoundTrip(req);
    if (resp && resp->status == 202) {
      if (auto loc = resp->GetHeader("Location"); !loc.empty()) {
        STRATA_ASSIGN_OR_RETURN(location, ResolveLocation(location, loc));
      }
      auto got = UploadedBytes(resp->GetHeader("Range"));
      offset = got && *got > offset ? *got : offset + len;
      Emit(opts.progress, ProgressEvent::Kind::kBlobBytes, d.digest, d.size, offset);
      continue;
    }
    if (resp && !IsRetryableStatus(resp->status) && resp->status != 416)
      return Unexpected(ResponseError(what, *resp));
    if (!resp && resp.error().code() != ErrorCode::kUnavailable)
      return std::unexpected(resp.error().Wrap(what));
    if (++failures > opts.max_resumes) {
      if (!resp) return std::unexpected(resp.error().Wrap(what));
      return Unexpected(ResponseError(what, *resp));
    }
    // Ask the registry how much it has and continue from there.
    clock_->Sleep(options_.retry.BackoffFor(failures));
    Request status_req;
    status_req.url = location;
    auto st = s.transport->RoundTrip(status_req);
    if (!st) return std::unexpected(st.error().Wrap(what + ": upload status"));
    if (st->status != 204 && st->status != 200)
      return Unexpected(ResponseError(what + ": upload status", *st));
    if (auto loc = st->GetHeader("Location"); !loc.empty()) {
      STRATA_ASSIGN_OR_RETURN(location, ResolveLocation(location, loc));
    }
    offset = UploadedBytes(st->GetHeader("Range")).value_or(0);
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
  auto resp = s.transport->RoundTrip(put);
  if (!resp) return std::unexpected(resp.error().Wrap(what));
  if (resp->status != 201 && resp->status != 204 && resp->status != 200)
    return Unexpected(ResponseError(what, *resp));
  return OkStatus();
}

Status Client::UploadMonolithic(Session& s, oci::Store& store, const oci::Descriptor& d,
                                const std::string& location,
                                const std::shared_ptr<SendHash>& hash) {
  const std::string what = fmt::format("upload blob {} to {}", d.digest, s.Where());
  Request put;
  put.method = "PUT";
  put.url = AppendQuery(location, "digest", d.digest.ToString());
  put.SetHeader("Content-Type", "application/octet-stream");
  put.open_body = FileSlice(store.BlobPath(d.digest), 0, d.size, hash);
  put.body_size = d.size;
  put.replayable = false;  // the registry may apply it and lose the response
  auto resp = s.transport->RoundTrip(put);
  if (!resp) return std::unexpected(resp.error().Wrap(what));
  if (resp->status != 201 && resp->status != 204 && resp->status != 200)
    return Unexpected(ResponseError(what, *resp));
  return OkStatus();
}

Result<bool> Client::HasBlob(Session& s, const oci::Descriptor& d, const std::string& what) {
  Request head;
  head.method = "HEAD";
  head.url = s.RepoUrl() + "/blobs/" + d.digest.ToString();
  auto resp = s.transport->RoundTrip(head);
  if (!resp) return std::unexpected(resp.error().Wrap(what));
  if (resp->status == 200) return true;
  if (resp->status == 404) return false;
  return Unexpected(ResponseError(what, *resp));
}

Status Client::PushBlob(Session& s, oci::Store& store, const oci::Descriptor& d,
                        const PushOptions& opts, PushResult& result) {
  const std::string what = fmt::format("push blob {} to {}", d.digest, s.Where());
  STRATA_ASSIGN_OR_RETURN(bool present, HasBlob(s, d, what));
  if (present) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result.blobs_skipped;
    Emit(opts.progress, ProgressEvent::Kind::kBlobSkipped, d.digest, d.size);
    return OkStatus();
  }
  if (!store.Has(d.digest))
    return MakeError(ErrorCode::kNotFound, "{}: blob is not in the local store", what);

  auto start_upload = [&](const std::string& from) -> Result<std::pair<int, std::string>> {
    Request post;
    post.method = "POST";
    post.url = s.RepoUrl() + "/blobs/uploads/";
    if (!from.empty()) {
      post.url = AppendQuery(post.url, "mount", d.digest.ToString());
      post.url = AppendQuery(post.url, "from", from);
    }
    auto resp = s.transport->RoundTrip(post);
    if (!resp) return std::unexpected(resp.error().Wrap(what));
    if (resp->status == 201 && !from.empty()) return std::pair<int, std::string>{201, ""};
    if (resp->status != 202) return Unexpected(ResponseError(what + ": start upload", *resp));
    std::string loc = resp->GetHeader("Location");
    if (loc.empty())
      return MakeError(ErrorCode::kInternal, "{}: registry returned no upload location", what);
    STRATA_ASSIGN_OR_RETURN(std::string abs, ResolveLocation(post.url, loc));
    return std::pair<int, std::string>{202, abs};
  };

  std::string location;
  for (const auto& from : opts.mount_from) {
    if (from == s.repo) continue;
    auto r = start_upload(from);
    if (!r) continue;  // mounting is an optimization; fall back to uploading
    if (r->first == 201) {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++result.blobs_mounted;
      Emit(opts.progress, ProgressEvent::Kind::kBlobMounted, d.digest, d.size, 0, from);
      return OkStatus();
    }
    location = r->second;
    break;
  }

  Emit(opts.progress, ProgressEvent::Kind::kBlobStarted, d.digest, d.size);
  auto hash = std::make_shared<SendHash>(d.digest, d.size);
  for (int attempt = 0;; ++attempt) {
    if (location.empty()) {
      STRATA_ASSIGN_OR_RETURN(auto r, start_upload(""));
      location = r.second;
    }
    Status sent = d.size > opts.monolithic_max ? UploadChunked(s, store, d, location, hash, opts)
                                               : UploadMonolithic(s, store, d, location, hash);
    if (sent) break;
    Error err = sent.error();
    if (!hash->Check()) {
      // The local copy is corrupt. The upload was cut before it could be
      // finalized; drop the session too (best effort).
      Request cancel;
      cancel.method = "DELETE";
      cancel.url = location;
      (void)s.transport->RoundTrip(cancel);
      return Unexpected(err.code() == ErrorCode::kDataLoss ? err
                                                           : hash->Check().error().Wrap(what));
    }
    // The request that finishes the upload may have been applied with its
    // response lost (then a resend finds the session closed: 404
    // BLOB_UPLOAD_UNKNOWN). Ask the registry before uploading again.
    if (auto there = HasBlob(s, d, what); there && *there) break;
    const bool transient = err.code() == ErrorCode::kUnavailable ||
                           err.code() == ErrorCode::kFailedPrecondition ||
                           err.code() == ErrorCode::kNotFound;
    if (!transient || attempt >= opts.max_resumes) return Unexpected(err);
    Emit(opts.progress, ProgressEvent::Kind::kBlobRetrying, d.digest, d.size, 0,
         "restarting upload in a new session");
    location.clear();
    clock_->Sleep(options_.retry.BackoffFor(attempt + 1));
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result.blobs_uploaded;
    result.bytes_uploaded += d.size;
  }
  Emit(opts.progress, ProgressEvent::Kind::kBlobDone, d.digest, d.size, d.size);
  return OkStatus();
}

bool Client::HasManifest(Session& s, const std::string& reference, const std::string& media_type,
                         const oci::Digest& digest) {
  Request req;
  req.method = "HEAD";
  req.url = s.RepoUrl() + "/manifests/" + reference;
  req.SetHeader("Accept",
                fmt::format("{}, {}, {}, {}, {}", media_type, mt::kImageManifest, mt::kImageIndex,
                            mt::kDockerManifest, mt::kDockerManifestList));
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

Result<oci::Digest> Client::PutManifest(Session& s, const std::string& reference,
                                        const std::string& media_type, const std::string& bytes,
                                        const PushOptions& opts) {
  const oci::Digest digest = oci::Digest::Of(bytes);
  const std::string what = fmt::format("push manifest {} to {}{}{}", digest, s.Where(),
                                       reference.starts_with("sha") ? "@" : ":", reference);
  for (int attempt = 0;; ++attempt) {
    Request put;
    put.method = "PUT";
    put.url = s.RepoUrl() + "/manifests/" + reference;
    put.SetHeader("Content-Type", media_type);
    put.body = bytes;
    put.replayable = false;  // applied with a lost response: HEAD tells
    auto resp = s.transport->RoundTrip(put);
    if (resp && (resp->status == 201 || resp->status == 200 || resp->status == 202)) {
      if (auto header = oci::Digest::Parse(resp->GetHeader("Docker-Content-Digest"));
          header && *header != digest) {
        return MakeError(ErrorCode::kDataLoss,
                         "{}: digest mismatch: expected {}, the registry stored {}", what, digest,
                         *header);
      }
      break;
    }
    Error err = resp ? ResponseError(what, *resp) : resp.error().Wrap(what);
    if (err.code() != ErrorCode::kUnavailable) return Unexpected(err);
    // A lost response or a gateway error: the registry may have stored it.
    if (HasManifest(s, reference, media_type, digest)) break;
    if (attempt >= opts.max_resumes) return Unexpected(err);
    clock_->Sleep(options_.retry.BackoffFor(attempt + 1));
  }
  Emit(opts.progress, ProgressEvent::Kind::kManifestPushed, digest,
       static_cast<int64_t>(bytes.size()), 0, reference);
  return digest;
}

Result<PushResult> Client::Push(oci::Store& store, std::string_view source,
                                const oci::Reference& dest, const PushOptions& opts) {
  const std::string what = fmt::format("push {} to {}", source, dest.ToString());
  auto desc = store.Resolve(source);
  if (!desc) return std::unexpected(desc.error().Wrap(what));
  std::vector<std::string> scopes = {RepositoryScope(dest.path(), "pull,push")};
  for (const auto& from : opts.mount_from)
    if (from != dest.path()) scopes.push_back(RepositoryScope(from, "pull"));
  STRATA_ASSIGN_OR_RETURN(auto s, OpenSession(dest.domain(), dest.path(), scopes, std::nullopt));

  PushResult result;
  result.ref = dest;
  const std::string reference = !dest.tag().empty() ? dest.tag() : dest.digest()->ToString();

  auto push_image = [&](const oci::Descriptor& m,
                        const std::string& ref_or_digest) -> Result<oci::Digest> {
    STRATA_ASSIGN_OR_RETURN(std::string bytes, store.ReadBlob(m.digest));
    auto manifest = oci::Manifest::Parse(bytes);
    if (!manifest) return std::unexpected(manifest.error().Wrap(what));
    std::vector<oci::Descriptor> blobs = {manifest->config};
    for (const auto& l : manifest->layers) {
      bool dup = std::any_of(blobs.begin(), blobs.end(),
                             [&](const oci::Descriptor& b) { return b.digest == l.digest; });
      if (!dup) blobs.push_back(l);
    }
    STRATA_RETURN_IF_ERROR(RunParallel(opts.jobs, blobs.size(), [&](size_t i) {
      return PushBlob(*s, store, blobs[i], opts, result);
    }));
    std::string media_type = m.media_type;
    if (media_type.empty()) {
      STRATA_ASSIGN_OR_RETURN(media_type, oci::DetectManifestMediaType(bytes));
    }
    return PutManifest(*s, ref_or_digest, media_type, bytes, opts);
  };

  std::string media_type = desc->media_type;
  std::string top_bytes;
  if (media_type.empty() || mt::IsIndex(media_type)) {
    STRATA_ASSIGN_OR_RETURN(top_bytes, store.ReadBlob(desc->digest));
    if (media_type.empty()) {
      STRATA_ASSIGN_OR_RETURN(media_type, oci::DetectManifestMediaType(top_bytes));
    }
  }
  if (mt::IsIndex(media_type)) {
    auto index = oci::Index::Parse(top_bytes);
    if (!index) return std::unexpected(index.error().Wrap(what));
    for (const auto& m : index->manifests) {
      if (!store.Has(m.digest))
        return MakeError(ErrorCode::kNotFound,
                         "{}: index lists manifest {} which is not in the store", what, m.digest);
      if (!mt::IsManifest(m.media_type))
        return MakeError(ErrorCode::kUnimplemented, "{}: nested index {} is not supported", what,
                         m.digest);
      STRATA_ASSIGN_OR_RETURN(oci::Digest child, push_image(m, m.digest.ToString()));
      (void)child;
    }
    STRATA_ASSIGN_OR_RETURN(oci::Digest d, PutManifest(*s, reference, media_type, top_bytes, opts));
    result.descriptor = *desc;
    result.descriptor.media_type = media_type;
    result.descriptor.digest = d;
    return result;
  }
  oci::Descriptor m = *desc;
  m.media_type = media_type;
  STRATA_ASSIGN_OR_RETURN(oci::Digest d, push_image(m, reference));
  result.descriptor = m;
  result.descriptor.digest = d;
  return result;
}

Status Client::CheckLogin(std::string_view registry, const AuthConfig& auth) {
  const std::string domain(registry);
  STRATA_ASSIGN_OR_RETURN(auto s, OpenSession(domain, "", {}, auth));
  Request req;
  req.url = s->base + "/v2/";
  auto resp = s->transport->RoundTrip(req);
  if (!resp) return std::unexpected(resp.error().Wrap(fmt::format("login to {}", domain)));
  if (resp->status == 401)
    return MakeError(ErrorCode::kUnauthenticated, "login to {}: credentials rejected", domain);
  if (resp->status != 200)
    return Unexpected(ResponseError(fmt::format("login to {}", domain), *resp));
  return OkStatus();
}

}  // namespace strata::registry
