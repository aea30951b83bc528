// Referrers: attestations (and any other OCI 1.1 artifact) attached to an
// image manifest through the manifest's `subject` field, kept in the local
// store, and the two ways a registry lists them (distribution-spec v1.1
// "Listing Referrers": the referrers API, or the referrers tag schema
// `<alg>-<hex>`, an image index the client maintains itself).
//
// An attestation here is an in-toto statement (SBOM, SLSA provenance) stored
// as an artifact manifest:
//
//   {"schemaVersion":2, "mediaType":"application/vnd.oci.image.manifest.v1+json",
//    "artifactType": <kSbomArtifactType | kProvenanceArtifactType>,
//    "config": <the empty descriptor, application/vnd.oci.empty.v1+json, "{}">,
//    "layers": [{"mediaType":"application/vnd.in-toto+json", ...,
//                "annotations":{"in-toto.io/predicate-type": <predicate type>}}],
//    "subject": <the image manifest's descriptor>,
//    "annotations": {"in-toto.io/predicate-type": <predicate type>,
//                    "org.opencontainers.image.created": <time, when given>}}
//
// On disk (design block):
//
//   ROOT/referrers/<alg>/<hex>   the referrers of manifest <alg>:<hex>, as
//       the referrers API answers: an OCI image index whose `manifests` are
//       the artifact manifests' descriptors (mediaType, digest, size,
//       artifactType, annotations), sorted by digest, each digest once.
//       Written with WriteFileAtomic under ROOT/referrers/.lock (flock,
//       exclusive) so two writers never lose each other's entry.
//   ROOT/referrers/.lock         that flock; never deleted.
//
// GC: a referrer lives as long as its subject does. Store::Prune marks from
// index.json, then MarkReferrers adds every referrer of every live manifest
// (repeatedly: a referrer may have referrers of its own) and drops the
// records of subjects it does not keep. An attestation is never a root by
// itself: `strata rmi` of its image lets prune reclaim it.
//
// Thread-safety: safe from several threads and processes (the lock file).
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "oci/descriptor.h"
#include "oci/digest.h"
#include "oci/gc.h"
#include "oci/manifest.h"
#include "oci/util/error.h"

namespace strata::oci {

class Store;

inline constexpr std::string_view kInTotoMediaType = "application/vnd.in-toto+json";
inline constexpr std::string_view kAnnotationPredicateType = "in-toto.io/predicate-type";
inline constexpr std::string_view kAnnotationCreated = "org.opencontainers.image.created";
inline constexpr std::string_view kSpdxPredicateType = "https://spdx.dev/Document";
inline constexpr std::string_view kSlsaProvenanceV1PredicateType = "https://slsa.dev/provenance/v1";
// artifactType of the artifact manifests (what `?artifactType=` filters on).
inline constexpr std::string_view kSbomArtifactType = "application/spdx+json";
inline constexpr std::string_view kProvenanceArtifactType =
    "application/vnd.in-toto.provenance+json";
// BuildKit's in-index form (--attest-format buildkit).
inline constexpr std::string_view kAnnotationReferenceType = "vnd.docker.reference.type";
inline constexpr std::string_view kAnnotationReferenceDigest = "vnd.docker.reference.digest";
inline constexpr std::string_view kReferenceTypeAttestation = "attestation-manifest";

// The bytes of the empty JSON config ("{}") and its descriptor.
inline constexpr std::string_view kEmptyJsonBytes = "{}";
Descriptor EmptyJsonDescriptor();

// The artifact manifest (bytes as stored) that carries one in-toto
// statement whose blob is `statement` (kInTotoMediaType) about `subject`.
// `created` ("" for none) becomes the org.opencontainers.image.created
// annotation. Deterministic: the same arguments give the same bytes.
std::string AttestationManifest(const Descriptor& subject, const Descriptor& statement,
                                std::string_view artifact_type, std::string_view predicate_type,
                                std::string_view created);

// Writes the statement blob, the empty config and the artifact manifest
// into the store and records the manifest as a referrer of `subject`.
// Returns the artifact manifest's descriptor (with artifactType and the
// manifest's annotations, as a referrers index lists it).
// REQUIRES: subject's manifest is in the store (FailedPrecondition if not).
Result<Descriptor> PutAttestation(Store& store, const Descriptor& subject,
                                  std::string_view statement, std::string_view artifact_type,
                                  std::string_view predicate_type, std::string_view created);

// Records `referrer` (an artifact manifest in the store whose subject is
// `subject`) as a referrer of `subject`; a no-op if already recorded.
Status AddReferrer(const Store& store, const Digest& subject, const Descriptor& referrer);

// The recorded referrers of `subject`, sorted by digest; empty if none.
// DataLoss naming the record if it cannot be parsed.
Result<std::vector<Descriptor>> ListReferrers(const Store& store, const Digest& subject);

// The referrers index (distribution-spec v1.1): an OCI image index of
// `referrers`, sorted by digest, each digest once. Deterministic.
Index ReferrersIndex(std::vector<Descriptor> referrers);

// `referrers` with the entries of `more` whose digest it lacks added
// (sorted by digest): merging a registry's tag-schema index with ours.
std::vector<Descriptor> MergeReferrers(std::vector<Descriptor> referrers,
                                       const std::vector<Descriptor>& more);

// The referrers tag schema's tag of `subject`: "sha256-<hex>".
std::string ReferrersTag(const Digest& subject);

// Whether a referrer descriptor is of `kind`: "sbom" (kSpdxPredicateType)
// or "provenance" (kSlsaProvenanceV1PredicateType), judged by its
// predicate-type annotation, else its artifactType. InvalidArgument for
// any other kind, naming it.
Result<bool> ReferrerIsKind(const Descriptor& referrer, std::string_view kind);

// GC (see above): adds to `marks` every referrer (and what it reaches) of
// every manifest in marks.live, until nothing new is found, then deletes
// the records of subjects not in marks.live. Bounded: each round adds at
// least one new blob or stops.
Status MarkReferrers(const Store& store, GcMarks& marks);

}  // namespace strata::oci

namespace strata::oci {

// BuildKit's in-index form (--attest-format buildkit): one attestation
// manifest holding every statement as a layer (kInTotoMediaType, annotated
// with its predicate type), config {"architecture":"unknown","os":"unknown",
// ...}; and an image index listing `image` (with `platform`) and that
// manifest (platform unknown/unknown, annotations
// vnd.docker.reference.type=attestation-manifest and
// vnd.docker.reference.digest=<image digest>). Writes the blobs and returns
// the index's descriptor. Deterministic.
struct Statement {
  std::string bytes;
  std::string predicate_type;
};
Result<Descriptor> PutBuildkitAttestationIndex(Store& store, const Descriptor& image,
                                               const Platform& platform,
                                               const std::vector<Statement>& statements);

// The attestation manifests an index lists in BuildKit's form (entries
// annotated vnd.docker.reference.type=attestation-manifest) for `image`.
std::vector<Descriptor> BuildkitAttestations(const Index& index, const Digest& image);

}  // namespace strata::oci
