// EngineHarness: everything a hermetic test of the build engine needs.
//
//   a temp store          ROOT/store, opened fresh per harness
//   a build context       ROOT/context, files written by the test
//   base images           made from entries listed in the test (one layer
//                         each), committed with the real layer writer, put
//                         in the store and tagged
//   the executor          with NativeSnapshotter (no mounts, no privilege),
//                         a scripted FakeCommandRunner and a fixed clock
//   read-back helpers     the built image's config, history and files (its
//                         layers applied, flattened, into a temp dir)
//
// Nothing here needs root or a network; a harness lives for one test. Its
// files go to $STRATA_TEST_TMPDIR, else /dev/shm, else $TMPDIR: the store
// fsyncs every blob and tag, which a tmpfs makes free.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "builder/engine/clock.h"
#include "builder/engine/executor.h"
#include "builder/engine/native_snapshotter.h"
#include "builder/runtime/fake_command_runner.h"
#include "oci/image_config.h"
#include "oci/store.h"
#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata::builder::testing {

// One entry of a base image layer.
struct Entry {
  enum Kind { kFile, kDir, kSymlink, kWhiteout, kOpaque };
  Kind kind = kFile;
  std::string path;     // relative to the image root, no leading '/'
  std::string content;  // file content, or the link target
  mode_t mode = 0644;
  std::optional<uid_t> uid;  // chown (root only; tests that set it check IsRoot())
  std::optional<gid_t> gid;
};
Entry File(std::string path, std::string content, mode_t mode = 0644);
Entry Dir(std::string path, mode_t mode = 0755);
Entry Symlink(std::string path, std::string target);
Entry Whiteout(std::string path);
// The directory at `path`, marked opaque (needs root: trusted.* xattr).
Entry Opaque(std::string path);
using Layer = std::vector<Entry>;

// One entry of a hand-made tar: what a directory cannot hold (".." names,
// entries through links, devices without root).
struct RawEntry {
  std::string name;
  char type = '0';   // '0' file, '2' symlink, '3' char device, '5' dir
  std::string data;  // file content or link target
  mode_t mode = 0644;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
};
// A ustar archive of `entries`, with end-of-archive blocks.
std::string RawTar(const std::vector<RawEntry>& entries);

// Every ProgressSink call, for assertions.
class RecordingProgress : public ProgressSink {
 public:
  struct Step {
    int id = 0;
    std::string name;
    bool done = false;
    bool cached = false;
    std::vector<std::string> output;
  };
  void StepStart(int id, std::string_view name) override;
  void StepDone(int id, bool cached, double seconds) override;
  void StepOutput(int id, OutputStream stream, std::string_view line) override;
  void Warning(std::string_view text) override;

  const std::vector<Step>& steps() const { return steps_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Names of the steps reported cached / not cached (in start order), only
  // those whose name contains `filter`.
  std::vector<std::string> Cached(std::string_view filter = "") const;
  std::vector<std::string> Ran(std::string_view filter = "") const;
  void Clear() {
    steps_.clear();
    warnings_.clear();
  }

 private:
  Step* Find(int id);
  std::vector<Step> steps_;
  std::vector<std::string> warnings_;
};

// The fixed time every harness build stamps on history and config (unless
// SOURCE_DATE_EPOCH says otherwise): 2026-01-02T03:04:05Z.
inline constexpr int64_t kFixedNow = 1767323045;

bool IsRoot();

// A FixedClock a test can move between builds.
class SettableClock : public Clock {
 public:
  int64_t UnixSeconds() const override { return now_.load(); }
  void Set(int64_t t) { now_ = t; }

 private:
  std::atomic<int64_t> now_{kFixedNow};
};

class EngineHarness {
 public:
  EngineHarness();
  ~EngineHarness();

  const std::filesystem::path& root() const { return dir_.path(); }
  const std::filesystem::path& context() const { return context_; }
  oci::Store& store() { return *store_; }
  FakeCommandRunner& runner() { return runner_; }
  RecordingProgress& progress() { return progress_; }
  // The time the next builds see (kFixedNow until set).
  void SetNow(int64_t t) { clock_.Set(t); }
  // Options every Build starts from: context, tags {"out:latest"}.
  BuildOptions& options() { return options_; }

  // Writes a context file (parents made), mode as given, mtime fixed.
  void Context(const std::string& rel, std::string_view content, mode_t mode = 0644);
  void Dockerfile(std::string_view text) { Context("Dockerfile", text); }

  // Makes an image of `layers` (bottom first) with `config` (os/arch filled
  // in for the build platform when empty; diff_ids and history set here),
  // tags it `ref` and returns its manifest descriptor.
  Result<oci::Descriptor> MakeImage(const std::string& ref, const std::vector<Layer>& layers,
                                    oci::ImageConfig config = {});
  // The same from uncompressed tar streams (RawTar), one per layer.
  Result<oci::Descriptor> MakeImageFromTars(const std::string& ref,
                                            const std::vector<std::string>& tars,
                                            oci::ImageConfig config = {});
  // "base:latest": /bin/sh, /etc/passwd (root, app=1000), /etc/group,
  // /usr/bin dir, PATH env.
  Result<oci::Descriptor> MakeBase(const std::string& ref = "base:latest");

  // Runs the executor with options() (and `text` as the Dockerfile if
  // given). Each call builds with a fresh Executor over the same store.
  Result<BuildResult> Build(std::optional<std::string_view> text = std::nullopt);
  Result<BuildResult> Build(std::string_view text, const BuildOptions& options);
  // Executor::BuildPlatforms with options() (multi-platform: an index).
  Result<BuildResult> BuildPlatforms(const std::vector<oci::Platform>& platforms,
                                     std::optional<std::string_view> text = std::nullopt);

  // The image a ref names, loaded from the store.
  Result<oci::Image> Load(const std::string& ref = "out:latest");
  // The image's layers applied in order (flattened) into a fresh dir;
  // returns the dir, valid for the harness's lifetime.
  Result<std::filesystem::path> Flatten(const std::string& ref = "out:latest");
  // One file's content in the flattened image, or nullopt if absent.
  std::optional<std::string> ReadImageFile(const std::string& path,
                                           const std::string& ref = "out:latest");
  // Sorted "path kind" listing of the flattened image, as the snapshot
  // tests' dump: "a/b: file 644 content", "d: dir 755", "l: link -> t".
  std::string Listing(const std::string& ref = "out:latest");
  // The layer's entries of image `ref`, layer `index` (negative: from the
  // top), as "path" names in tar order (whiteouts as .wh. names).
  std::vector<std::string> LayerPaths(int index, const std::string& ref = "out:latest");
  // The same with the header fields.
  struct TarEntry {
    std::string name;
    char type = '0';  // '0' file, '5' dir, '2' symlink, '1' hardlink
    mode_t mode = 0;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string link;
    int64_t mtime = 0;
  };
  std::vector<TarEntry> LayerEntries(int index, const std::string& ref = "out:latest");
  // The entry `name` of that layer, or null.
  std::optional<TarEntry> LayerEntry(int index, const std::string& name,
                                     const std::string& ref = "out:latest");

  // Writes a tar (gzip-compressed when `gzip`) of `layer`'s entries into the
  // context at `rel`.
  void ContextTar(const std::string& rel, const Layer& layer, bool gzip = false);

 private:
  ScopedTempDir dir_;
  std::filesystem::path context_;
  std::unique_ptr<oci::Store> store_;
  FakeCommandRunner runner_;
  RecordingProgress progress_;
  NativeSnapshotter snapshotter_;
  SettableClock clock_;
  BuildOptions options_;
  std::vector<ScopedTempDir> flattened_;
};

// "path: kind ..." listing of a directory (see Listing).
std::string DumpTree(const std::filesystem::path& dir);

}  // namespace strata::builder::testing
