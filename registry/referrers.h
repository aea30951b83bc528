// Referrers on a registry (distribution-spec v1.1 "Listing Referrers"):
// pushing the attestations recorded in the store for an image (oci/referrers.h)
// and reading them back.
//
// Listing: GET /v2/<name>/referrers/<digest>. A registry with the API
// answers 200 with an image index (and indexes a pushed manifest's `subject`
// itself); one without answers 404 (CNCF Distribution 2.8), and the client
// keeps the list under the referrers tag schema: the index tagged
// "<alg>-<hex>" of the subject, read (404: no referrers yet), merged and PUT
// again by every client that adds a referrer.
//
// Thread-safety: as the Client.
#pragma once

#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "registry/client.h"
#include "registry/pusher.h"

namespace strata::registry {

struct ReferrersPushResult {
  int pushed = 0;           // artifact manifests pushed
  bool tag_schema = false;  // the registry has no referrers API: the tag was updated
};

// Pushes every referrer of `subject` recorded in `store` (each artifact
// manifest by digest, with its blobs) to dest's repository, then, on a
// registry without the referrers API, merges them into the tag-schema index
// (PUT only if it changed). Nothing to do (pushed = 0) without referrers.
Result<ReferrersPushResult> PushReferrers(Client& client, oci::Store& store,
                                          const oci::Digest& subject, const oci::Reference& dest,
                                          const PushOptions& opts);

struct RemoteReferrers {
  std::vector<oci::Descriptor> referrers;  // sorted by digest
  bool tag_schema = false;                 // read through the tag schema
};
// The referrers of `subject` in repo's repository (repo's tag/digest are
// ignored): the referrers API, else the tag schema; empty if none.
Result<RemoteReferrers> ListRemoteReferrers(Client& client, const oci::Reference& repo,
                                            const oci::Digest& subject);

// Fetches the small blob (or manifest, when `manifest`) `d` from repo's
// repository, verified against its digest; at most 16 MiB.
Result<std::string> FetchSmallBlob(Client& client, const oci::Reference& repo,
                                   const oci::Descriptor& d, bool manifest);

}  // namespace strata::registry
