#include "registry/client.h"

namespace strata::registry {

Client::Client(std::shared_ptr<Transport> base, std::shared_ptr<const CredentialStore> credentials,
               ClientOptions options, std::shared_ptr<Clock> clock)
    : sessions_(std::move(base), std::move(credentials), std::move(options), std::move(clock)),
      puller_(sessions_),
      pusher_(sessions_) {}

Result<PullResult> Client::Pull(oci::Store& store, const oci::Reference& ref,
                                const PullOptions& opts) {
  return ToResult(puller_.Pull(store, ref, opts));
}

Result<PushResult> Client::Push(oci::Store& store, std::string_view source,
                                const oci::Reference& dest, const PushOptions& opts) {
  return ToResult(pusher_.Push(store, source, dest, opts));
}

Result<Resolved> Client::Resolve(const oci::Reference& ref) {
  return ToResult(puller_.Resolve(ref));
}

Status Client::FetchRecordedBlob(oci::Store& store, const oci::Descriptor& d,
                                 const PullOptions& opts) {
  auto r = registry::FetchRecordedBlob(sessions_, store, d, opts);
  if (!r) return Unexpected(r.error().error());
  return OkStatus();
}

Status Client::CheckLogin(std::string_view registry, const AuthConfig& auth) {
  const std::string domain(registry);
  const std::string what = fmt::format("login to {}", domain);
  auto s = sessions_.Open(domain, "", {}, auth);
  if (!s) return Unexpected(s.error().error());
  Request req;
  req.url = (*s)->base + "/v2/";
  auto resp = (*s)->transport->RoundTrip(req);
  if (!resp) return std::unexpected(resp.error().Wrap(what));
  if (resp->status == 401)
    return MakeError(ErrorCode::kUnauthenticated, "{}: credentials rejected", what);
  if (resp->status != 200) return Unexpected(ResponseError(what, *resp));
  return OkStatus();
}

}  // namespace strata::registry
