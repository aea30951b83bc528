// ProgressSink: how the registry client reports what it is doing. The CLI
// renders events; library code never prints. Events never carry credentials,
// tokens or URLs with query strings.
// Thread-safety: OnEvent is called from the client's worker threads
// concurrently; implementations must be thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "oci/digest.h"

namespace strata::registry {

struct ProgressEvent {
  enum class Kind {
    kResolved,         // manifest resolved: digest of the manifest (or index)
    kBlobStarted,      // transfer of `digest` (size bytes) begins
    kBlobBytes,        // `bytes` of `size` transferred so far
    kBlobDone,         // transfer finished and verified
    kBlobSkipped,      // already present (locally for pull, remotely for push)
    kBlobMounted,      // cross-repository mount from `detail`
    kBlobRetrying,     // a broken transfer resumes at `bytes`; detail says why
    kManifestPushed,   // manifest `digest` pushed as `detail` (tag or digest)
    kBlobQuarantined,  // the local copy of `digest` was corrupt and was moved to
                       // `detail` (a path under ROOT/quarantine); pull fetches it again
  };
  Kind kind;
  oci::Digest digest;
  int64_t size = 0;
  int64_t bytes = 0;
  std::string detail;
};

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void OnEvent(const ProgressEvent& event) = 0;
};

}  // namespace strata::registry
