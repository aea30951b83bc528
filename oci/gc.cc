#include "oci/gc.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "oci/blob_sources.h"
#include "oci/chunk_cache.h"
#include "oci/image_index.h"
#include "oci/image_walk.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/referrers.h"
#include "oci/snapshots.h"
#include "oci/store.h"
#include "oci/util/file_util.h"

namespace strata::oci {
namespace fs = std::filesystem;

namespace {

// The name a tag entry of index.json is shown by.
std::string EntryName(const Descriptor& m) {
  auto it = m.annotations.find(std::string(kAnnotationRefName));
  return it != m.annotations.end() ? it->second : m.digest.ToString();
}

}  // namespace

void MarkReachable(const BlobStore& blobs, const Descriptor& root, GcMarks& marks,
                   const std::function<void(std::string)>& problem,
                   const std::function<void(std::string)>& unreadable,
                   const std::function<bool(const Digest&)>& lazy) {
  ImageWalker walker;
  walker.visit = [&](const Descriptor& d, WalkNode node, const Descriptor* parent) -> Result<bool> {
    if (node != WalkNode::kConfig && node != WalkNode::kLayer) {
      // Reached already (another tag of the same image): nothing new below.
      return marks.live.insert(d.digest).second;
    }
    marks.live.insert(d.digest);
    if (node == WalkNode::kConfig) marks.configs.insert(d.digest);
    auto info = blobs.Stat(d.digest);
    if (!info && node == WalkNode::kLayer && lazy && lazy(d.digest)) return false;
    if (!info) {
      problem(fmt::format("manifest {}: references missing blob {}", parent->digest.ToString(),
                          d.digest.ToString()));
    } else if (info->size != d.size) {
      problem(fmt::format("manifest {}: blob {} has size {}, manifest says {}",
                          parent->digest.ToString(), d.digest.ToString(), info->size, d.size));
    }
    return false;
  };
  walker.on_unreadable = [&](const Descriptor& d, const Error& e) -> Status {
    std::string msg = fmt::format("{}: {}", d.digest.ToString(), e.message());
    problem(msg);
    unreadable(std::move(msg));
    return OkStatus();
  };
  (void)WalkImage(blobs, root, walker);  // visit and on_unreadable never fail
}

FsckReport Store::Fsck() const {
  FsckReport report;
  auto problem = [&](std::string p) { report.problems.push_back(std::move(p)); };
  auto digests = ListBlobs();
  if (!digests) {
    problem(digests.error().message());
    return report;
  }
  for (const auto& d : *digests) {
    ++report.blobs_checked;
    auto r = Open(d);
    if (!r) {
      problem(fmt::format("{}: {}", d.ToString(), r.error().message()));
      continue;
    }
    char buf[1 << 16];
    for (;;) {
      auto n = r->Read(buf, sizeof(buf));
      if (!n) {
        problem(n.error().message());
        break;
      }
      if (*n == 0) break;
    }
  }
  auto idx = ReadIndex();
  if (!idx) {
    problem(fmt::format("index.json: {}", idx.error().message()));
    return report;
  }
  GcMarks marks;
  for (const auto& m : idx->manifests) {
    ++report.images_checked;
    std::string name = EntryName(m);
    auto size = Size(m.digest);
    if (!size) {
      problem(fmt::format("{}: manifest {} is missing", name, m.digest.ToString()));
      continue;
    }
    if (*size != m.size) {
      problem(fmt::format("{}: manifest {} has size {}, index.json says {}", name,
                          m.digest.ToString(), *size, m.size));
    }
    MarkReachable(
        blobs(), m, marks, [&](std::string p) { problem(fmt::format("{}: {}", name, p)); },
        [](std::string) {},
        [&](const Digest& d) {
          // Left at its registry by a build that never read it (lazy base
          // layer): fetched on demand from the recorded source.
          auto sources = ReadBlobSources(*this, d);
          if (!sources || sources->empty()) return false;
          ++report.lazy_layers;
          return true;
        });
    // An index's platform manifests that are not here: remote when a source
    // is recorded for them (the walk above skips them either way).
    if (media_type::IsIndex(m.media_type)) {
      auto view = ReadIndexView(*this, m);
      if (view && *view) {
        for (const auto& c : (*view)->children) {
          if (c.local) continue;
          ++(c.sources.empty() ? report.absent_manifests : report.remote_manifests);
        }
      }
    }
  }
  SnapshotCheck snaps = CheckSnapshots(*this);
  for (auto& p : snaps.problems) problem(std::move(p));
  report.leftovers = std::move(snaps.leftovers);
  return report;
}

Status Store::LockExclusive() {
  // Converting our shared lock to exclusive fails at once while any other
  // strata process holds the store.
  while (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return MakeError(ErrorCode::kUnavailable,
                       "store {} is in use by another strata process; retry when it finishes",
                       root_.string());
    }
    return ErrnoError(errno, "lock store");
  }
  return OkStatus();
}

void Store::UnlockExclusive() {
  while (::flock(lock_.get(), LOCK_SH) != 0 && errno == EINTR) {
  }
}

Result<PruneReport> Store::Prune(const PruneOptions& opts) {
  // No other strata process may hold the store while we sweep: with the
  // exclusive lock, every temp dir and ingest file belongs to a dead process.
  STRATA_RETURN_IF_ERROR(LockExclusive());
  struct Downgrade {
    Store* store;
    ~Downgrade() { store->UnlockExclusive(); }
  } downgrade{this};
  PruneReport report;
  STRATA_ASSIGN_OR_RETURN(auto idx, ReadIndex());
  GcMarks marks;
  // A tagged image whose manifest, index or config cannot be read keeps an
  // unknown set of blobs (or snapshots) alive: stop before deleting anything.
  std::vector<std::string> unreadable;
  std::unordered_set<std::string> live_chains;  // of tagged images' snapshots
  for (const auto& m : idx.manifests) {
    const std::string image = fmt::format("image {} ({})", EntryName(m), m.digest.ToString());
    marks.configs.clear();  // this image's, for the messages below
    MarkReachable(
        blobs(), m, marks, [](std::string) {},
        [&](std::string p) { unreadable.push_back(fmt::format("{}: {}", image, p)); });
    // An index's children that are not here (remote platforms) keep their
    // source records: they say where to fetch the manifest.
    if (media_type::IsIndex(m.media_type)) {
      auto view = ReadIndexView(*this, m);
      if (view && *view) {
        for (const auto& c : (*view)->children) {
          if (!c.local) marks.live.insert(c.descriptor.digest);
        }
      }
    }
    for (const auto& d : marks.configs) {
      auto bytes = ReadBlob(d);
      if (!bytes && bytes.error().code() == ErrorCode::kNotFound) continue;  // nothing to lose
      auto cfg =
          bytes ? ImageConfig::Parse(*bytes) : Result<ImageConfig>(Unexpected(bytes.error()));
      if (!cfg) {
        unreadable.push_back(
            fmt::format("{}: config {}: {}", image, d.ToString(), cfg.error().message()));
        continue;
      }
      if (cfg->diff_ids.empty()) continue;
      for (const auto& chain : ChainIds(cfg->diff_ids)) live_chains.insert(chain.hex());
    }
  }
  if (!unreadable.empty()) {
    std::string msg;
    for (const auto& u : unreadable) msg += (msg.empty() ? "" : "; ") + u;
    return MakeError(ErrorCode::kDataLoss,
                     "prune stopped, nothing was deleted: {} (run strata fsck; remove the tag "
                     "with strata rmi to let prune reclaim its blobs)",
                     msg);
  }
  if (opts.extra_roots) {
    auto roots = opts.extra_roots();
    if (!roots) {
      return Unexpected(roots.error().Wrap("prune stopped, nothing was deleted: gc roots"));
    }
    for (const auto& d : *roots) marks.live.insert(d);
  }
  // Attestations and other referrers live as long as their subject.
  STRATA_RETURN_IF_ERROR(MarkReferrers(*this, marks));
  STRATA_RETURN_IF_ERROR(blobs().Walk([&](const BlobInfo& info) -> Status {
    if (marks.live.count(info.digest)) return OkStatus();
    if (blobs().Delete(info.digest)) {
      ++report.blobs_removed;
      report.bytes_freed += info.size;
    }
    return OkStatus();
  }));
  // The chunk tables of deleted blobs (oci/chunk_cache.h) point at nothing.
  SweepChunkTables(*this);
  std::error_code ec;
  for (fs::directory_iterator it(IngestDir(), ec), end; !ec && it != end; it.increment(ec)) {
    report.bytes_freed += TreeBytes(it->path()) +
                          (it->is_regular_file(ec) ? static_cast<int64_t>(it->file_size(ec)) : 0);
    if (RemoveAll(it->path())) ++report.ingest_removed;
  }
  // Snapshots are a cache of unpacked layers: keep the complete ones whose
  // chain a tagged image still uses, drop the rest (a cache-only layer is
  // unpacked again if a build needs it), and every leftover temp/trash dir.
  // A blob's source record goes with it (a lazy blob, absent but reached,
  // keeps its record: it says where to fetch the blob).
  STRATA_ASSIGN_OR_RETURN(report.sources_removed, SweepBlobSources(*this, marks.live));
  STRATA_ASSIGN_OR_RETURN(auto sweep, SweepSnapshots(*this, &live_chains));
  report.snapshots_removed = sweep.removed;
  report.snapshot_leftovers_removed = sweep.leftovers;
  report.bytes_freed += sweep.bytes;
  return report;
}

Result<RepairReport> Store::RepairSnapshots() {
  STRATA_RETURN_IF_ERROR(LockExclusive());
  struct Downgrade {
    Store* store;
    ~Downgrade() { store->UnlockExclusive(); }
  } downgrade{this};
  STRATA_ASSIGN_OR_RETURN(auto sweep, SweepSnapshots(*this, nullptr));
  return RepairReport{sweep.removed, sweep.leftovers};
}

}  // namespace strata::oci
