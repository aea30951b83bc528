#include "builder/engine/executor.h"

#include <charconv>

#include "builder/engine/build.h"
#include "builder/engine/overlay_snapshotter.h"

namespace strata::builder {

Executor::Executor(oci::Store& store, CommandRunner& runner, ProgressSink& progress)
    : store_(store),
      runner_(runner),
      progress_(progress),
      own_snapshotter_(std::make_unique<OverlaySnapshotter>()),
      own_clock_(std::make_unique<SystemClock>()),
      snapshotter_(*own_snapshotter_),
      clock_(*own_clock_) {}

Result<BuildResult> Executor::Build(const BuildOptions& options) {
  // `--build-arg SOURCE_DATE_EPOCH=N` is BuildKit's documented way to set
  // the epoch; it acts as the environment variable does (and wins over it).
  BuildOptions o = options;
  if (auto it = o.build_args.find("SOURCE_DATE_EPOCH"); it != o.build_args.end()) {
    int64_t v = -1;
    const std::string& t = it->second;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--build-arg SOURCE_DATE_EPOCH={}: not a unix time", t);
    }
    o.source_date_epoch = v;
  }
  Snapshotter& snapshotter = o.snapshotter != nullptr ? *o.snapshotter : snapshotter_;
  class Build b(store_, runner_, progress_, snapshotter, clock_, o);
  return b.Run();
}

}  // namespace strata::builder
