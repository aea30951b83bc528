#include "tools/strata/reproducible_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "builder/engine/step_progress.h"
#include "oci/blob_store.h"
#include "oci/json_util.h"
#include "oci/layer_reader.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "tools/strata/registry_cli.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

// Copies the image `digest` names (manifest, config, layers) from `from`
// into `to` and tags it `ref` there.
Status CopyImage(const Context& ctx, oci::Store& from, oci::Store& to, const std::string& ref,
                 const oci::Digest& digest) {
  const std::string what = fmt::format("copy {} ({}) into the second build's store", ref, digest);
  STRATA_RETURN_IF_ERROR(FetchLazyLayers(ctx, from, digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto top, from.Resolve(digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto img, from.LoadImage(top));
  std::vector<oci::Descriptor> blobs = img.manifest.layers;
  blobs.push_back(img.manifest.config);
  for (const auto& b : blobs) {
    if (to.Has(b.digest)) continue;
    STRATA_ASSIGN_OR_RETURN(auto reader, from.Open(b.digest));
    oci::BlobSource src(&reader);
    auto put = oci::IngestFrom(to.blobs(), src, b.media_type, b.digest, b.size);
    if (!put) return Unexpected(put.error().Wrap(what));
  }
  STRATA_ASSIGN_OR_RETURN(auto m, to.Put(img.manifest_bytes, img.descriptor.media_type));
  STRATA_ASSIGN_OR_RETURN(auto parsed, oci::Reference::Parse(ref));
  return to.Tag(parsed, m);
}

// First differing top-level config field (history, created, ...).
std::string ConfigDifference(const std::string& a, const std::string& b) {
  auto ja = oci::ParseJson(a, "config");
  auto jb = oci::ParseJson(b, "config");
  if (!ja || !jb || !ja->is_object() || !jb->is_object()) return "config differs";
  for (auto it = ja->begin(); it != ja->end(); ++it) {
    if (!jb->contains(it.key()) || (*jb)[it.key()] != it.value()) {
      if (it.value().is_object() && jb->contains(it.key()) && (*jb)[it.key()].is_object()) {
        for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) {
          if (!(*jb)[it.key()].contains(jt.key()) || (*jb)[it.key()][jt.key()] != jt.value()) {
            return fmt::format("config field {}.{} differs", it.key(), jt.key());
          }
        }
      }
      return fmt::format("config field {} differs", it.key());
    }
  }
  for (auto it = jb->begin(); it != jb->end(); ++it) {
    if (!ja->contains(it.key())) return fmt::format("config field {} differs", it.key());
  }
  return "config bytes differ";
}

class NoProgress : public builder::ProgressSink {
 public:
  void StepStart(int, std::string_view) override {}
  void StepDone(int, bool, double) override {}
  void Warning(std::string_view) override {}
  void StepOutput(int, builder::OutputStream, std::string_view) override {}
};

}  // namespace

Result<ReproducibleReport> CheckReproducible(const Context& ctx, oci::Store& store,
                                             builder::CommandRunner& runner,
                                             const builder::BuildOptions& options,
                                             const builder::BuildResult& first) {
  STRATA_ASSIGN_OR_RETURN(auto tmp, ScopedTempDir::Create(store.IngestDir(), "repro-"));
  ReproducibleReport report;
  {
    STRATA_ASSIGN_OR_RETURN(auto second_store, oci::Store::Open(tmp.path() / "store"));
    for (const auto& in : first.inputs) {
      if (in.kind != builder::ResolvedInput::Kind::kImage) continue;
      STRATA_RETURN_IF_ERROR(CopyImage(ctx, store, *second_store, in.ref, in.digest));
    }
    builder::BuildOptions o = options;
    o.tags.clear();
    o.no_cache = true;
    o.resolver = nullptr;  // only the copied inputs
    o.metadata_resolver = nullptr;
    o.blob_fetcher = nullptr;
    o.pull_always = false;
    NoProgress quiet;
    builder::Executor exec(*second_store, runner, quiet);
    auto r2 = exec.Build(o);
    if (!r2) return Unexpected(r2.error().Wrap("second build (--check-reproducible)"));
    report.second = r2->manifest.digest;
    if (r2->manifest.digest == first.manifest.digest) {
      report.reproducible = true;
      return report;
    }
    STRATA_ASSIGN_OR_RETURN(auto a, store.LoadImage(first.manifest));
    STRATA_ASSIGN_OR_RETURN(auto b, second_store->LoadImage(r2->manifest));
    const size_t n = std::max(a.manifest.layers.size(), b.manifest.layers.size());
    for (size_t i = 0; i < n; ++i) {
      if (i >= a.manifest.layers.size() || i >= b.manifest.layers.size()) {
        report.difference = fmt::format("the builds have {} and {} layers",
                                        a.manifest.layers.size(), b.manifest.layers.size());
        return report;
      }
      if (a.manifest.layers[i].digest == b.manifest.layers[i].digest) continue;
      oci::ApplyOptions ao;
      ao.form = oci::ApplyForm::kOverlay;
      ao.allow_devices = true;
      ao.preserve_owners = ::geteuid() == 0;
      STRATA_ASSIGN_OR_RETURN(ao.max_uncompressed_bytes, ctx.MaxLayerBytes());
      const fs::path da = tmp.path() / fmt::format("a{}", i);
      const fs::path db = tmp.path() / fmt::format("b{}", i);
      STRATA_RETURN_IF_ERROR(MakeDirs(da));
      STRATA_RETURN_IF_ERROR(MakeDirs(db));
      STRATA_RETURN_IF_ERROR(
          oci::ApplyLayer(store, a.manifest.layers[i], a.config.diff_ids[i], da, ao));
      STRATA_RETURN_IF_ERROR(
          oci::ApplyLayer(*second_store, b.manifest.layers[i], b.config.diff_ids[i], db, ao));
      STRATA_ASSIGN_OR_RETURN(auto ta, ScanTree(da));
      STRATA_ASSIGN_OR_RETURN(auto tb, ScanTree(db));
      auto diff = FirstDifference(ta, tb);
      report.difference = fmt::format(
          "layer {} ({} vs {}): {}", i, a.manifest.layers[i].digest, b.manifest.layers[i].digest,
          diff ? *diff : "same files, different tar bytes (order or headers)");
      return report;
    }
    report.difference = a.config_bytes != b.config_bytes
                            ? ConfigDifference(a.config_bytes, b.config_bytes)
                            : "the manifests differ (annotations)";
  }
  return report;
}

}  // namespace strata::cli
