// Image archives: moving images between the store and single files, in the
// two formats other tools exchange.
//
// oci-archive: a tar of an OCI image layout (image-spec image-layout.md):
//   oci-layout                  {"imageLayoutVersion":"1.0.0"}
//   index.json                  one descriptor per saved image, annotated
//                               org.opencontainers.image.ref.name = familiar
//                               ref ("hello:latest") and
//                               io.containerd.image.name = the full name;
//                               untagged images carry no annotation
//   blobs/sha256/<hex>          manifests (and indexes), configs, layers as
//                               stored: byte-identical, digests unchanged
//
// docker-archive: what `docker save` writes (moby image/spec v1.2, read by
// `docker load`, `podman load` and containers/image):
//   manifest.json               [{"Config":"<config hex>.json",
//                                 "RepoTags":["hello:latest"],
//                                 "Layers":["<diffID hex>/layer.tar",...]}]
//   repositories                {"hello":{"latest":"<top layer dir>"}}
//   <config hex>.json           the image config, byte-identical (its digest
//                               is the image ID)
//   <diffID hex>/layer.tar      each layer uncompressed; its sha256 is the
//                               config's rootfs.diff_ids[i] (verified while
//                               written)
//
// Load accepts either archive (tar, or tar compressed with gzip, zstd, xz,
// bzip2 or lz4), or an OCI layout directory. Archives are
// extracted into a staging dir under ROOT/ingest/ accepting only regular files
// and directories with relative paths that stay inside it; symlinks and hard
// links are never created, only remembered so that paths in manifest.json
// that go through them (containers/image writes `<id>/layer.tar ->
// ../<hex>.tar`) resolve, and only if they resolve inside the archive.
// Everything is verified before the store changes: each blob's size and digest,
// each manifest's config and layers, and for a docker-archive each layer's
// uncompressed sha256 against the config's diff_id. On any error blobs/ and
// index.json are exactly as before.
//
// docker-archive layers become OCI layers stored as the archive holds them:
// an uncompressed layer.tar is stored as application/vnd.oci.image.layer.v1.tar
// (its digest is its diff_id), a gzip/zstd one as tar+gzip/tar+zstd. Storing
// the bytes we were given, not recompressing, keeps load a copy (no CPU-bound
// gzip pass over every layer) and keeps the digests reproducible; a later push
// may still compress.
//
// Thread-safety: the functions share no state; they are as safe as the Store.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "oci/descriptor.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci {

enum class ArchiveFormat { kDockerArchive, kOciArchive };

// "docker-archive" / "oci-archive"; InvalidArgument for anything else.
Result<ArchiveFormat> ParseArchiveFormat(std::string_view s);

// Writes the images named by `refs` (anything Store::Resolve accepts: tags,
// name@digest, manifest digests, ID prefixes) to `out` as an oci-archive.
// Names that are tags are recorded as ref.name annotations; digests and IDs
// are saved untagged. Blobs are streamed from the store and verified as they
// are read; `out` appears (atomically) only if every blob was good.
// NotFound for an unknown ref, DataLoss for a corrupt blob (named).
Status SaveOciArchive(const Store& store, const std::vector<std::string>& refs,
                      const std::filesystem::path& out);

// Same as SaveOciArchive, in docker-archive format. An image tagged through
// an index is saved as its manifest for `platform` (default: the host's; a
// docker-archive holds one platform per image). Images that share
// a config share one manifest.json entry with several RepoTags. Each layer is
// decompressed twice (once to learn its size and check its diff_id, once to
// write it), so nothing is spooled to disk. FailedPrecondition if a layer's
// content does not match its diff_id.
Status SaveDockerArchive(const Store& store, const std::vector<std::string>& refs,
                         const std::filesystem::path& out,
                         const std::optional<Platform>& platform = std::nullopt);

// The same content as SaveOciArchive, as an OCI layout directory `dir`
// (created if missing): oci-layout, index.json, blobs/sha256/<hex>, each
// file written atomically. An existing layout is added to: blobs already
// there are kept, index.json entries with the same ref.name (or, untagged,
// the same digest) are replaced, others stay. `ref_name`, when not empty,
// is the ref.name of every saved entry instead of the refs' own names (a
// layout tag such as "latest", as BuildKit's local cache writes).
// FailedPrecondition if `dir` is a non-empty directory without index.json;
// errors as SaveOciArchive's otherwise.
Status SaveOciLayout(const Store& store, const std::vector<std::string>& refs,
                     const std::filesystem::path& dir, std::string_view ref_name = {});

// `platform`: docker-archive only (see SaveDockerArchive); an oci-archive
// keeps whole indexes.
Status SaveArchive(const Store& store, const std::vector<std::string>& refs,
                   const std::filesystem::path& out, ArchiveFormat format,
                   const std::optional<Platform>& platform = std::nullopt);

struct LoadedImage {
  std::optional<Reference> ref;  // nullopt: loaded untagged (kept by digest)
  Descriptor descriptor;         // the manifest or index the ref points at
};

// Loads an oci-archive, a docker-archive (either possibly compressed) or an
// OCI layout directory at `path` into `store`, tagging each image as the
// archive names it. Untagged images get an index.json entry without a
// ref.name so they stay resolvable by digest and survive prune.
// Errors (the store is unchanged): NotFound if `path` does not exist;
// InvalidArgument for an unreadable or unrecognized archive, a path that
// escapes it, or an entry that is neither file nor directory (named);
// FailedPrecondition for a blob whose size or digest does not match (digest
// named), a missing blob, or a layer whose diff_id does not match.
Result<std::vector<LoadedImage>> Load(Store& store, const std::filesystem::path& path);

}  // namespace strata::oci
