// Named build contexts (`--build-context NAME=VALUE`, BuildKit's syntax): a
// NAME that FROM, COPY --from or RUN --mount from= use resolves to VALUE
// instead of the stage or image of that name (a stage of that name is not
// built: it is overwritten, as in BuildKit).
//
//   NAME=DIR                  a local directory, as a one-layer filesystem
//                             (its .dockerignore is not applied)
//   NAME=docker-image://REF   an image: the store, else pulled through the
//                             executor's injected resolver, as FROM REF
//   NAME=oci-layout://DIR[@DIGEST|:TAG]
//                             an image of the OCI layout DIR: the entry with
//                             that manifest digest or ref.name tag (the only
//                             entry when neither is given); its blobs are
//                             copied into the store (verified, untagged)
//   NAME=https://.../x.tar    a tarball (plain or compressed) downloaded
//                             through the executor's injected UrlFetcher,
//                             extracted safely (oci/layer_reader.h) and used
//                             as a directory; a git URL is refused
//   NAME=<git source>         a git repository (git_source.h forms:
//                             https://h/r.git#REF:SUBDIR, ssh://, git@h:r)
//                             through the executor's injected GitClient:
//                             the commit's tree (or SUBDIR) as a directory
//   NAME=other URLs           refused (Unimplemented) by name
// The executor consults the overrides at the top of ResolveSource (and for
// FROM of an image and for a stage of that name); the resolution is here.
// Pure parsing plus a resolver over the store; thread-compatible.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::builder {

struct NamedContext {
  enum class Kind { kDir, kImage, kOciLayout, kUrl, kGit };
  Kind kind = Kind::kDir;
  std::string value;  // as given
  std::string dir;    // kDir: the directory (absolute)
  std::string image;  // kImage: the reference after docker-image://
  std::string url;    // kUrl, kGit
  // kOciLayout: the layout directory (absolute) and the selector.
  std::string layout;
  std::string layout_digest;  // "sha256:..." or empty
  std::string layout_tag;     // or empty
};

struct NamedContextFlag {
  std::string name;
  NamedContext context;
};

// Parses one `--build-context NAME=VALUE`. InvalidArgument naming the value
// for a missing '=' or NAME, a bad image reference, a directory that does
// not exist; Unimplemented naming the forms strata does not support.
Result<NamedContextFlag> ParseNamedContext(std::string_view flag);

// The override for `name` (as written in FROM / --from: exact, else a
// case-insensitive match as stage names are), or nullptr.
const NamedContext* FindNamedContext(const std::map<std::string, NamedContext>& contexts,
                                     std::string_view name);

struct ResolvedSource;
struct BuildOptions;
struct ResolvedInput;
struct GitRef;

// Resolves `nc`: a kDir commits the directory as a layer into `store` (its
// diffID is the source's cache key); a kImage goes to `resolve_image`; a
// kOciLayout copies the selected image's blobs into `store` (NotFound for a
// missing entry or blob, FailedPrecondition for a blob that does not match
// its digest) and loads it for the build's target platform.
// A git context's commit goes to `resolved` (BuildResult::inputs, --locked).
Result<ResolvedSource> ResolveNamedContext(
    oci::Store& store, const BuildOptions& opts, const NamedContext& nc,
    const std::function<Result<ResolvedSource>(const std::string& image)>& resolve_image,
    const std::function<Status(ResolvedInput)>& resolved = {});

// The input a git source resolved to `commit` is recorded as (provenance,
// strata.lock): keyed by the remote (password redacted), ref and subdir.
ResolvedInput GitInput(const GitRef& g, const std::string& commit);

}  // namespace strata::builder
