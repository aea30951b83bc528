#include "tools/curl/curl_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "oci/util/file_util.h"

namespace strata::registry {
namespace {

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// State shared with the libcurl callbacks of one transfer.
struct Transfer {
  CURL* curl = nullptr;
  const Request* req = nullptr;
  Response resp;
  std::optional<Error> sink_error;
  // Request body.
  BodyReader reader;
  size_t body_pos = 0;
  bool status_reported = false;
  // Minimum-rate check (see XferInfoCallback).
  int64_t low_speed_limit = 0;
  std::chrono::steady_clock::duration low_speed_time{};
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> samples;
  bool too_slow = false;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// Aborts the transfer once fewer than low_speed_limit bytes/s moved (both
// directions) over the last low_speed_time. Keeps a sample every 250 ms, so
// the window holds at most 4 samples per second of it.
int XferInfoCallback(void* user, curl_off_t /*dltotal*/, curl_off_t dlnow, curl_off_t /*ultotal*/,
                     curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->low_speed_limit <= 0 || t->low_speed_time <= std::chrono::steady_clock::duration::zero())
    return 0;
  using std::chrono::steady_clock;
  const auto now = steady_clock::now();
  const int64_t bytes = static_cast<int64_t>(dlnow) + static_cast<int64_t>(ulnow);
  if (t->samples.empty() || now - t->samples.back().first >= std::chrono::milliseconds(250))
    t->samples.emplace_back(now, bytes);
  const auto cutoff = now - t->low_speed_time;
  // Keep exactly one sample at or before the window's start.
  while (t->samples.size() > 1 && t->samples[1].first <= cutoff) t->samples.pop_front();
  const auto& [since, bytes_then] = t->samples.front();
  if (since > cutoff) return 0;  // not running for a whole window yet
  const double secs = std::chrono::duration<double>(now - since).count();
  if (static_cast<double>(bytes - bytes_then) < static_cast<double>(t->low_speed_limit) * secs) {
    t->too_slow = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

std::string UrlForMessage(std::string_view url) {
  // Query strings carry upload state, never useful in an error.
  return std::string(url.substr(0, url.find('?')));
}

size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t->resp.headers.clear();  // a new response (after 100 Continue, proxies)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  t->resp.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  return size * n;
}

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300 && t->req->on_body) {
    Status s = OkStatus();
    if (!t->status_reported && t->req->on_status) s = t->req->on_status(static_cast<int>(status));
    t->status_reported = true;
    if (s) s = t->req->on_body(std::string_view(data, len));
    if (!s) {
      t->sink_error = s.error();
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->resp.streamed_bytes += static_cast<int64_t>(len);
    return len;
  }
  if (static_cast<int64_t>(t->resp.body.size() + len) > t->req->max_body) {
    t->sink_error =
        Error(ErrorCode::kDataLoss, fmt::format("response body from {} exceeds {} bytes",
                                                UrlForMessage(t->req->url), t->req->max_body));
    return 0;
  }
  t->resp.body.append(data, len);
  return len;
}

size_t ReadCallback(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t cap = size * n;
  if (t->reader) {
    Result<size_t> got = t->reader(buf, cap);
    if (!got) {
      t->sink_error = got.error();
      return CURL_READFUNC_ABORT;
    }
    return *got;
  }
  const std::string& body = t->req->body;
  size_t take = std::min(cap, body.size() - t->body_pos);
  memcpy(buf, body.data() + t->body_pos, take);
  t->body_pos += take;
  return take;
}

bool IsTlsVerificationError(CURLcode c) {
  return c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CACERT_BADFILE ||
         c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_INVALIDCERTSTATUS;
}

bool IsConnectionError(CURLcode c) {
  switch (c) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return false;
    default:
      return true;
  }
}

// Concatenates the system CA bundle with extra PEM files.
std::string SystemCaBundle() {
  for (const char* p : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                        "/etc/ssl/cert.pem"}) {
    if (auto s = ReadFile(p)) return *s;
  }
  return "";
}

}  // namespace

void CurlTransport::CurlDeleter::operator()(void* h) const {
  curl_easy_cleanup(static_cast<CURL*>(h));
}

CurlTransport::CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {}
CurlTransport::~CurlTransport() = default;

CurlTransport::CurlPtr CurlTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      CurlPtr h = std::move(pool_.back());
      pool_.pop_back();
      return h;
    }
  }
  return CurlPtr(curl_easy_init());
}

void CurlTransport::Release(CurlPtr h) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pool_.size() < 16) pool_.push_back(std::move(h));
}

const CurlTransport::HostTls& CurlTransport::TlsFor(const std::string& authority) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = host_tls_.find(authority);
  if (it != host_tls_.end()) return it->second;
  HostTls tls;
  std::string extra;
  for (const auto& certs_dir : options_.certs_dirs) {
    std::error_code ec;
    std::filesystem::path dir = certs_dir / authority;
    if (certs_dir.empty() || !std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (f.extension() == ".crt") {
        if (auto s = ReadFile(f)) extra += *s + "\n";
      } else if (f.extension() == ".cert" && tls.client_cert.empty()) {
        auto key = f;
        key.replace_extension(".key");
        if (std::filesystem::exists(key, ec)) {
          tls.client_cert = f.string();
          tls.client_key = key.string();
        }
      }
    }
  }
  if (!extra.empty()) tls.ca_blob = SystemCaBundle() + "\n" + extra;
  return host_tls_.emplace(authority, std::move(tls)).first->second;
}

std::string CurlTransport::TlsHelp(const std::string& authority) const {
  std::string dirs;
  for (const auto& d : options_.certs_dirs) {
    if (d.empty()) continue;
    dirs += fmt::format("{}/{}/*.crt, ", d.string(), authority);
  }
  return fmt::format(
      "CA certificates for {0} are looked up in {1}and the system store "
      "(/etc/ssl/certs/ca-certificates.crt); to skip verification (insecure) use "
      "--tls-verify=false or STRATA_INSECURE_REGISTRIES={0}",
      authority, dirs);
}

Result<Response> CurlTransport::RoundTrip(const Request& req) {
  STRATA_ASSIGN_OR_RETURN(Url url, Url::Parse(req.url));
  CurlPtr handle = Acquire();
  if (!handle) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* c = static_cast<CURL*>(handle.get());
  curl_easy_reset(c);

  Transfer t;
  t.curl = c;
  t.req = &req;
  if (req.open_body) {
    STRATA_ASSIGN_OR_RETURN(t.reader, req.open_body());
  }

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // RedirectTransport decides
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t.error_buffer);
  t.low_speed_limit = options_.low_speed_limit;
  t.low_speed_time = options_.low_speed_time;
  t.samples.emplace_back(std::chrono::steady_clock::now(), 0);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &XferInfoCallback);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  const bool has_body = req.open_body || !req.body.empty() || req.method == "PUT" ||
                        req.method == "POST" || req.method == "PATCH";
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    curl_off_t size = req.open_body ? req.body_size : static_cast<curl_off_t>(req.body.size());
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadCallback);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  SlistPtr headers;
  auto add = [&headers](const std::string& line) {
    curl_slist* n = curl_slist_append(headers.get(), line.c_str());
    if (n != nullptr) {
      (void)headers.release();
      headers.reset(n);
    }
  };
  for (const auto& h : req.headers) add(h.name + ": " + h.value);
  add("Expect:");  // no 100-continue round trip
  if (has_body && req.GetHeader("Content-Type").empty())
    add("Content-Type: application/octet-stream");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  if (url.scheme == "https") {
    std::string host = url.authority;
    const bool verify = options_.tls_verify && !options_.insecure_hosts.contains(host);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    const HostTls& tls = TlsFor(host);
    curl_blob blob{};
    if (!tls.ca_blob.empty()) {
      blob.data = const_cast<char*>(tls.ca_blob.data());
      blob.len = tls.ca_blob.size();
      blob.flags = CURL_BLOB_NOCOPY;
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!tls.client_cert.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, tls.client_key.c_str());
    }
  }

  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (t.sink_error) {
    // The handle may hold a half-read connection; do not pool it.
    return std::unexpected(*t.sink_error);
  }
  if (rc != CURLE_OK) {
    const std::string reason = t.error_buffer[0] != '\0' ? std::string(t.error_buffer)
                                                         : std::string(curl_easy_strerror(rc));
    if (t.too_slow) {
      return MakeError(ErrorCode::kUnavailable,
                       "{} {}: transfer too slow: less than {} bytes/s for {} ms", req.method,
                       UrlForMessage(req.url), options_.low_speed_limit,
                       options_.low_speed_time.count());
    }
    if (IsTlsVerificationError(rc)) {
      return MakeError(ErrorCode::kFailedPrecondition, "TLS verification failed for {}: {}; {}",
                       url.authority, reason, TlsHelp(url.authority));
    }
    ErrorCode code = IsConnectionError(rc) ? ErrorCode::kUnavailable : ErrorCode::kInvalidArgument;
    return MakeError(code, "{} {}: {}", req.method, UrlForMessage(req.url), reason);
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  t.resp.status = static_cast<int>(status);
  Release(std::move(handle));
  return std::move(t.resp);
}

CurlTransportOptions CurlOptionsFor(const ClientOptions& options) {
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
  return topts;
}

std::unique_ptr<Client> MakeCurlClient(std::shared_ptr<const CredentialStore> credentials,
                                       ClientOptions options) {
  auto curl = std::make_shared<CurlTransport>(CurlOptionsFor(options));
  return std::make_unique<Client>(std::move(curl), std::move(credentials), std::move(options));
}

}  // namespace strata::registry
