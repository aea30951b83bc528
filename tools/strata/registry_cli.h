// Helpers the registry verbs (pull, push, login, logout) share: building a
// registry::Client and a CredentialStore from the global flags, and a
// ProgressSink that prints blob progress to stderr.
#pragma once

#include <fmt/format.h>

#include <memory>
#include <mutex>

#include "oci/image_index.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "tools/curl/curl_transport.h"
#include "tools/strata/cli.h"

namespace strata::cli {

inline Result<std::shared_ptr<registry::CredentialStore>> MakeCredentialStore(const Context& ctx) {
  auto sources = registry::CredentialSources::FromEnvironment();
  sources.authfile = ctx.global.authfile;
  if (!ctx.global.creds.empty()) {
    STRATA_ASSIGN_OR_RETURN(auto creds, registry::ParseCredsFlag(ctx.global.creds));
    sources.creds = creds;
  }
  return std::make_shared<registry::CredentialStore>(std::move(sources), nullptr);
}

inline std::unique_ptr<registry::Client> MakeClient(
    const Context& ctx, std::shared_ptr<const registry::CredentialStore> creds) {
  registry::ClientOptions opts;
  opts.tls_verify = ctx.global.tls_verify;
  opts.AddInsecureFromEnvironment();
  return registry::MakeCurlClient(std::move(creds), std::move(opts));
}

// What a push did with the image's blobs, on stderr (stdout keeps only the
// digest): "Blobs: 1 uploaded (2.1 MB), 2 mounted, 0 already present".
inline void PrintPushSummary(const registry::PushResult& r, bool quiet) {
  if (quiet) return;
  fmt::print(stderr, "Blobs: {} uploaded ({}), {} mounted, {} already present\n", r.blobs_uploaded,
             HumanSize(r.bytes_uploaded), r.blobs_mounted, r.blobs_skipped);
  if (r.blobs_fetched > 0)
    fmt::print(stderr, "Fetched {} lazy base layers ({}) from their source registry first\n",
               r.blobs_fetched, HumanSize(r.bytes_fetched));
}

// "Copying blob sha256:abc123… done" lines on stderr, as podman prints them.
class StderrProgress : public registry::ProgressSink {
 public:
  explicit StderrProgress(bool quiet) : quiet_(quiet) {}
  void OnEvent(const registry::ProgressEvent& e) override {
    if (quiet_) return;
    using K = registry::ProgressEvent::Kind;
    std::lock_guard<std::mutex> lock(mu_);
    switch (e.kind) {
      case K::kBlobSkipped:
        fmt::print(stderr, "Copying blob {} skipped: already exists\n", e.digest.Short());
        break;
      case K::kBlobMounted:
        fmt::print(stderr, "Copying blob {} mounted from {}\n", e.digest.Short(), e.detail);
        break;
      case K::kBlobDone:
        fmt::print(stderr, "Copying blob {} done ({})\n", e.digest.Short(), HumanSize(e.size));
        break;
      case K::kBlobRetrying:
        fmt::print(stderr, "Copying blob {} retrying at {} ({})\n", e.digest.Short(),
                   HumanSize(e.bytes), e.detail);
        break;
      case K::kManifestPushed:
        fmt::print(stderr, "Writing manifest {}\n", e.detail);
        break;
      case K::kBlobQuarantined:
        fmt::print(stderr,
                   "Copying blob {}: the local copy is corrupt, moved to {}; fetching it again\n",
                   e.digest.Short(), e.detail);
        break;
      default:
        break;
    }
  }

 private:
  bool quiet_;
  std::mutex mu_;
};

// Fetches the lazy layers of the image `ref` names (absent from the store,
// left at their registry by a build that never read them, oci/blob_sources.h)
// from their recorded source, before a verb that reads the layers (unpack,
// save, diff). For an index: of the child `platform` picks
// (oci::PickIndexChild), or, with `all_children`, of every child in the store.
// OK when there are none, or when `ref` does not resolve (the verb itself
// reports that). Errors name the layer and the sources tried.
inline Status FetchLazyLayers(const Context& ctx, oci::Store& store, std::string_view ref,
                              const std::optional<oci::Platform>& platform = std::nullopt,
                              bool all_children = false) {
  auto desc = store.Resolve(ref);
  if (!desc) return OkStatus();
  std::vector<oci::Descriptor> images;
  auto view = oci::ReadIndexView(store, *desc);
  if (!view) return OkStatus();
  if (!*view) {
    images.push_back(*desc);
  } else if (all_children) {
    for (const auto& c : (*view)->children) {
      if (c.local) images.push_back(c.descriptor);
    }
  } else {
    auto pick = oci::PickIndexChild(**view, ref, platform);
    if (!pick) return OkStatus();
    images.push_back(*pick);
  }
  std::unique_ptr<registry::Client> client;
  StderrProgress progress(ctx.global.quiet);
  for (const auto& d : images) {
    auto img = store.LoadImageMetadata(d);
    if (!img) continue;
    for (const auto& l : img->manifest.layers) {
      if (store.Has(l.digest)) continue;
      if (!client) {
        STRATA_ASSIGN_OR_RETURN(auto creds, MakeCredentialStore(ctx));
        client = MakeClient(ctx, creds);
      }
      registry::PullOptions po;
      po.progress = &progress;
      STRATA_RETURN_IF_ERROR(client->FetchRecordedBlob(store, l, po));
    }
  }
  return OkStatus();
}

}  // namespace strata::cli
