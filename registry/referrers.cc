#include "registry/referrers.h"

#include <fmt/format.h>

#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/referrers.h"
#include "registry/auth.h"
#include "registry/puller.h"
#include "registry/session.h"

namespace strata::registry {
namespace {

constexpr int64_t kMaxSmallBlob = 16 << 20;

RegistryResult<std::shared_ptr<Session>> OpenSession(Client& client, const oci::Reference& repo,
                                                     bool push) {
  return client.sessions().Open(repo.domain(), repo.path(),
                                {RepositoryScope(repo.path(), push ? "pull,push" : "pull")},
                                std::nullopt);
}

// GET /referrers/<digest>: the list, or nullopt when the registry has no
// referrers API (404, or 400/405 from registries that reject the path).
RegistryResult<std::optional<std::vector<oci::Descriptor>>> ReferrersApi(
    const Session& s, const oci::Digest& subject) {
  const std::string what = fmt::format("list referrers of {}", s.Named(subject.ToString()));
  Request req;
  req.url = s.RepoUrl() + "/referrers/" + subject.ToString();
  req.SetHeader("Accept", std::string(oci::media_type::kImageIndex));
  req.max_body = kMaxManifestBytes;
  STRATA_ASSIGN_OR_RETURN(Response resp, s.Send(req, what, {200, 404, 400, 405}));
  if (resp.status != 200) return std::optional<std::vector<oci::Descriptor>>();
  auto idx = oci::Index::Parse(resp.body);
  if (!idx) return std::unexpected(RegistryError(idx.error().Wrap(what)));
  return std::optional<std::vector<oci::Descriptor>>(
      oci::ReferrersIndex(std::move(idx->manifests)).manifests);
}

// The tag-schema index's entries; empty when the tag does not exist.
RegistryResult<std::vector<oci::Descriptor>> TagSchemaList(const Session& s,
                                                           const oci::Digest& subject) {
  auto got = Puller::FetchManifest(s, oci::ReferrersTag(subject), std::nullopt);
  if (!got) {
    if (got.error().code() == ErrorCode::kNotFound) return std::vector<oci::Descriptor>{};
    return std::unexpected(got.error());
  }
  auto idx = oci::Index::Parse(got->bytes);
  if (!idx) {
    return std::unexpected(RegistryError(
        idx.error().Wrap(fmt::format("referrers tag {}", s.Named(oci::ReferrersTag(subject))))));
  }
  return oci::ReferrersIndex(std::move(idx->manifests)).manifests;
}

}  // namespace

Result<ReferrersPushResult> PushReferrers(Client& client, oci::Store& store,
                                          const oci::Digest& subject, const oci::Reference& dest,
                                          const PushOptions& opts) {
  ReferrersPushResult result;
  STRATA_ASSIGN_OR_RETURN(auto local, oci::ListReferrers(store, subject));
  if (local.empty()) return result;
  const std::string what =
      fmt::format("push referrers of {} to {}/{}", subject, dest.domain(), dest.path());
  for (const auto& r : local) {
    // By digest only: a reference that kept dest's tag would move the tag.
    auto by_digest = oci::Reference::Parse(
        fmt::format("{}/{}@{}", dest.domain(), dest.path(), r.digest.ToString()));
    if (!by_digest) return Unexpected(by_digest.error().Wrap(what));
    auto pushed = client.Push(store, r.digest.ToString(), *by_digest, opts);
    if (!pushed) return Unexpected(pushed.error().Wrap(what));
    ++result.pushed;
  }
  auto s = OpenSession(client, dest, true);
  if (!s) return Unexpected(s.error().error().Wrap(what));
  auto api = ReferrersApi(**s, subject);
  if (!api) return Unexpected(api.error().error().Wrap(what));
  if (*api) return result;  // the registry indexed the subjects itself
  result.tag_schema = true;
  auto remote = TagSchemaList(**s, subject);
  if (!remote) return Unexpected(remote.error().error().Wrap(what));
  auto merged = oci::MergeReferrers(*remote, local);
  if (merged == *remote) return result;
  const oci::Index idx = oci::ReferrersIndex(std::move(merged));
  const std::string bytes = idx.Serialize();
  Request put;
  put.method = "PUT";
  put.url = (*s)->RepoUrl() + "/manifests/" + oci::ReferrersTag(subject);
  put.SetHeader("Content-Type", std::string(oci::media_type::kImageIndex));
  put.body = bytes;
  auto resp = (*s)->Send(put, what + ": PUT " + oci::ReferrersTag(subject), {200, 201, 202});
  if (!resp) return Unexpected(resp.error().error());
  return result;
}

Result<RemoteReferrers> ListRemoteReferrers(Client& client, const oci::Reference& repo,
                                            const oci::Digest& subject) {
  auto s = OpenSession(client, repo, false);
  if (!s) return Unexpected(s.error().error());
  RemoteReferrers out;
  auto api = ReferrersApi(**s, subject);
  if (!api) return Unexpected(api.error().error());
  if (*api) {
    out.referrers = std::move(**api);
    return out;
  }
  out.tag_schema = true;
  auto list = TagSchemaList(**s, subject);
  if (!list) return Unexpected(list.error().error());
  out.referrers = std::move(*list);
  return out;
}

Result<std::string> FetchSmallBlob(Client& client, const oci::Reference& repo,
                                   const oci::Descriptor& d, bool manifest) {
  if (d.size > kMaxSmallBlob) {
    return MakeError(ErrorCode::kInvalidArgument, "{}: {} bytes, more than {}", d.digest, d.size,
                     kMaxSmallBlob);
  }
  auto s = OpenSession(client, repo, false);
  if (!s) return Unexpected(s.error().error());
  const std::string what = fmt::format("fetch {}", (*s)->Named(d.digest.ToString()));
  Request req;
  req.url = (*s)->RepoUrl() + (manifest ? "/manifests/" : "/blobs/") + d.digest.ToString();
  if (manifest) req.SetHeader("Accept", ManifestAccept(d.media_type));
  req.max_body = kMaxSmallBlob;
  auto resp = (*s)->Send(req, what, {200});
  if (!resp) return Unexpected(resp.error().error());
  if (oci::Digest::Of(resp->body) != d.digest) {
    return MakeError(ErrorCode::kDataLoss, "{}: content does not match its digest", what);
  }
  return std::move(resp->body);
}

}  // namespace strata::registry
