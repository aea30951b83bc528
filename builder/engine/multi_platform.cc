#include "builder/engine/multi_platform.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/engine/executor.h"
#include "builder/runtime/binfmt.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/util/parallel.h"

namespace strata::builder {

std::string PlatformProgress::Prefix(const std::string& platform) {
  return fmt::format("[{}] ", platform);
}

int PlatformProgress::Map(int id) {
  auto [it, inserted] = ids_.emplace(id, 0);
  if (inserted) it->second = ++next_id_;
  return it->second;
}

void PlatformProgress::StepStart(int id, std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  inner_.StepStart(Map(id), fmt::format("{}{}", prefix_, name));
}

void PlatformProgress::StepDone(int id, bool cached, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  inner_.StepDone(Map(id), cached, seconds);
}

void PlatformProgress::StepOutput(int id, OutputStream stream, std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  inner_.StepOutput(Map(id), stream, line);
}

void PlatformProgress::Warning(std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  inner_.Warning(fmt::format("{}{}", prefix_, text));
}

Result<std::vector<oci::Platform>> ParsePlatformList(std::string_view text) {
  std::vector<oci::Platform> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view item = text.substr(i, j - i);
    i = j + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "--platform {}: empty entry", text);
    }
    auto p = oci::Platform::Parse(item);
    if (!p) return Unexpected(p.error().Wrap("--platform"));
    if (auto known = QemuArch(*p); !known) return Unexpected(known.error().Wrap("--platform"));
    if (std::find(out.begin(), out.end(), *p) == out.end()) out.push_back(std::move(*p));
  }
  return out;
}

Result<oci::Descriptor> WriteImageIndex(
    oci::Store& store, const std::vector<std::pair<oci::Platform, oci::Descriptor>>& images,
    const std::map<std::string, std::string>& annotations) {
  if (images.empty()) return MakeError(ErrorCode::kInvalidArgument, "image index: no images");
  oci::Index idx;
  idx.media_type = std::string(oci::media_type::kImageIndex);
  idx.annotations = annotations;
  for (const auto& [platform, desc] : images) {
    for (const auto& m : idx.manifests) {
      if (m.platform && *m.platform == platform) {
        return MakeError(ErrorCode::kInvalidArgument, "image index: platform {} given twice",
                         platform.ToString());
      }
    }
    oci::Descriptor d = oci::Descriptor::Of(desc.media_type, desc.digest, desc.size);
    d.platform = platform;
    idx.manifests.push_back(std::move(d));
  }
  return store.Put(idx.Serialize(), std::string(oci::media_type::kImageIndex));
}

Result<BuildResult> Executor::BuildPlatforms(const BuildOptions& options,
                                             const std::vector<oci::Platform>& platforms) {
  if (platforms.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "multi-platform build: no platforms");
  }
  std::vector<oci::Reference> tags;
  for (const auto& t : options.tags) {
    STRATA_ASSIGN_OR_RETURN(auto r, oci::Reference::Parse(t));
    tags.push_back(std::move(r));
  }
  std::mutex progress_mu;
  int next_id = 0;
  std::vector<std::optional<Result<BuildResult>>> results(platforms.size());
  std::vector<std::unique_ptr<PlatformProgress>> sinks;
  for (const auto& p : platforms) {
    sinks.push_back(
        std::make_unique<PlatformProgress>(progress_, p.ToString(), next_id, progress_mu));
  }
  // Each platform is a whole build of its own; the first failure (in
  // platform order) is the build's error once all have finished.
  Status all = ParallelFor(
      platforms.size(), static_cast<int>(std::min(platforms.size(), kMaxParallelPlatforms)),
      [&](size_t i) -> Status {
        BuildOptions o = options;
        o.platform = platforms[i];
        o.tags.clear();  // the tags name the index
        Executor one(store_, runner_, *sinks[i], snapshotter_, clock_);
        auto r = one.Build(o);
        if (!r) return Unexpected(r.error().Wrap(platforms[i].ToString()));
        results[i] = std::move(r);
        return OkStatus();
      },
      ParallelMode::kRunAll);
  if (!all) return Unexpected(all.error());
  BuildResult out;
  for (size_t i = 0; i < platforms.size(); ++i) {
    BuildResult& r = **results[i];
    out.platform_images.emplace_back(platforms[i], r.manifest);
    out.steps += r.steps;
    out.cached_steps += r.cached_steps;
    // A stage all platforms share (FROM --platform=$BUILDPLATFORM without
    // TARGET* ARGs) has the same keys in each: one record per key.
    for (auto& rec : r.cache_records) {
      bool seen = std::any_of(out.cache_records.begin(), out.cache_records.end(),
                              [&](const auto& kr) { return kr.first == rec.first; });
      if (!seen) out.cache_records.push_back(std::move(rec));
    }
    if (i == 0) out.config = r.config;
  }
  // --annotation K=V annotates the manifests (BuildKit's default type), not
  // the index.
  STRATA_ASSIGN_OR_RETURN(out.manifest, WriteImageIndex(store_, out.platform_images, {}));
  for (const auto& t : tags) STRATA_RETURN_IF_ERROR(store_.Tag(t, out.manifest));
  out.tags = std::move(tags);
  return out;
}

}  // namespace strata::builder
