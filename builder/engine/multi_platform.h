// Multi-platform builds: the pieces of Executor::BuildPlatforms.
//
// `build --platform linux/amd64,linux/arm64` runs the whole build once per
// platform (each its own image: config os/architecture/variant, the
// predefined TARGET* ARGs, cache keys that name the stage's platform) and
// then writes an OCI image index whose descriptors carry each platform, as
// BuildKit's image exporter does. The index is what the tags name; the
// children stay reachable from it (prune walks indexes) and by digest.
//
// Platforms run on their own threads (bounded): a native platform and an
// emulated one overlap, and independent RUN steps share the cores. Their
// progress goes through PlatformProgress, which prefixes each step with its
// platform and keeps step ids unique across the platforms.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "builder/engine/step_progress.h"
#include "oci/descriptor.h"
#include "oci/store.h"

namespace strata::builder {

// Forwards to a shared sink, step names prefixed "[linux/arm64] " and ids
// renumbered from a counter shared by every platform of the build.
// Thread-safe: calls are serialized on `mu`, shared by all the platforms.
class PlatformProgress : public ProgressSink {
 public:
  PlatformProgress(ProgressSink& inner, std::string platform, int& next_id, std::mutex& mu)
      : inner_(inner), prefix_(Prefix(platform)), next_id_(next_id), mu_(mu) {}
  void StepStart(int id, std::string_view name) override;
  void StepDone(int id, bool cached, double seconds) override;
  void StepOutput(int id, OutputStream stream, std::string_view line) override;
  void Warning(std::string_view text) override;

 private:
  static std::string Prefix(const std::string& platform);
  int Map(int id);  // REQUIRES: mu_ held
  ProgressSink& inner_;
  std::string prefix_;
  int& next_id_;
  std::mutex& mu_;
  std::map<int, int> ids_;
};

// Writes an OCI image index of `images` (each descriptor given the platform
// it was built for) with `annotations` into the store and returns its
// descriptor. InvalidArgument when `images` is empty or names a platform
// twice.
Result<oci::Descriptor> WriteImageIndex(
    oci::Store& store, const std::vector<std::pair<oci::Platform, oci::Descriptor>>& images,
    const std::map<std::string, std::string>& annotations);

// `--platform linux/amd64,linux/arm64/v8`: the platforms in order, each
// parsed and normalized (arm64/v8 = arm64), duplicates dropped, every one a
// linux platform whose architecture strata knows. InvalidArgument naming the
// bad entry.
Result<std::vector<oci::Platform>> ParsePlatformList(std::string_view text);

// The most platforms built at once.
inline constexpr size_t kMaxParallelPlatforms = 4;

}  // namespace strata::builder
