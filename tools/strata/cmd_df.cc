// strata df: how the store's disk space is used, as `docker system df` shows
// it, and what can be reclaimed by which command.
//
//   Images        tagged images; SIZE = the distinct blobs (manifests,
//                 configs, layers) they reach. Freed only by rmi + prune.
//   Blobs         everything under blobs/sha256/ (+ ingest/ leftovers);
//                 ACTIVE = reached from a tag or a build-cache record;
//                 RECLAIMABLE = what `strata prune` deletes.
//   Build cache   ROOT/cache/*.json records; SIZE = the blobs only records
//                 keep (not any tag); RECLAIMABLE by `strata prune --all`.
//   Snapshots     ROOT/snapshots/<chainID>/ (unpacked layers); ACTIVE = the
//                 chains of tagged images; RECLAIMABLE (by `strata prune`) =
//                 the others and leftover temp/trash dirs.
//   Cache mounts  ROOT/cache-mounts/ (RUN --mount=type=cache); nothing
//                 depends on them, so all of it is reclaimable, by removing
//                 them with `strata prune --all` (or --filter until=,
//                 --keep-storage); mounts in use by a build are skipped.
//   Git cache     ROOT/git/<hash>.git, the bare repositories git sources
//                 are fetched into; reclaimable the same way.
// Read-only: takes the store's shared lock like every other reader.
#include <map>
#include <unordered_set>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/json_util.h"
#include "oci/media_types.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"
#include "tools/strata/store_usage.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Usage {
  std::string type;
  int64_t total = 0;
  int64_t active = 0;
  int64_t size = 0;
  int64_t reclaimable = 0;
  std::string reclaimed_by;
};

std::string Percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "";
  return fmt::format(" ({}%)", part * 100 / whole);
}

}  // namespace

Verb DfVerb() {
  return {
      "df", "Show the store's disk usage and what prune can reclaim", [](CLI::App& app) -> Action {
        auto as_json = std::make_shared<bool>(false);
        app.add_flag("--json", *as_json, "Print the usage as JSON");
        return [as_json](Context& ctx) -> int {
          auto store = ctx.OpenStore();
          if (!store) return Fail(store.error());
          const oci::Store& s = **store;
          auto tags = s.ListImages();
          if (!tags) return Fail(tags.error());
          auto blobs = s.ListBlobs();
          if (!blobs) return Fail(blobs.error());
          std::map<std::string, int64_t> blob_size;
          for (const auto& d : *blobs) {
            auto sz = s.Size(d);
            blob_size[d.ToString()] = sz ? *sz : 0;
          }
          auto warn = [](std::string w) { fmt::print(stderr, "strata: warning: {}\n", w); };

          // Images: what the tags reach.
          std::unordered_set<std::string> tagged_live, images;
          std::vector<oci::Digest> configs;
          for (const auto& t : *tags) {
            images.insert(t.descriptor.digest.ToString());
            Mark(s, t.descriptor, tagged_live, configs,
                 [&](std::string w) { warn(fmt::format("{}: {}", t.ref.Familiar(), w)); });
          }
          Usage img{
              "Images", static_cast<int64_t>(images.size()), static_cast<int64_t>(images.size()), 0,
              0,        "strata rmi, then strata prune"};
          for (const auto& d : tagged_live) {
            if (auto it = blob_size.find(d); it != blob_size.end()) img.size += it->second;
          }

          // Build cache records and the blobs only they keep.
          Usage cache{"Build cache", 0, 0, 0, 0, "strata prune --all"};
          std::unordered_set<std::string> cache_only;
          std::error_code ec;
          if (fs::exists(s.CacheDir(), ec)) {
            for (fs::directory_iterator it(s.CacheDir(), ec), end; !ec && it != end;
                 it.increment(ec)) {
              if (it->path().extension() != ".json") continue;
              ++cache.total;
              bool complete = true;
              for (const auto& d : RecordBlobs(it->path())) {
                if (!blob_size.count(d)) complete = false;
                if (!tagged_live.count(d)) cache_only.insert(d);
              }
              if (complete) ++cache.active;
            }
          }
          for (const auto& d : cache_only) {
            if (auto it = blob_size.find(d); it != blob_size.end()) cache.size += it->second;
          }
          cache.reclaimable = cache.size;

          // Blobs: all of them; prune deletes what neither tags nor
          // records reach, and ingest leftovers.
          Usage bl{"Blobs", static_cast<int64_t>(blob_size.size()), 0, 0, 0, "strata prune"};
          for (const auto& [d, sz] : blob_size) {
            bl.size += sz;
            if (tagged_live.count(d) || cache_only.count(d)) {
              ++bl.active;
            } else {
              bl.reclaimable += sz;
            }
          }
          int64_t ingest = TreeBytes(s.IngestDir());
          bl.size += ingest;
          bl.reclaimable += ingest;

          // Snapshots.
          std::unordered_set<std::string> live_chains;
          for (const auto& c : configs) {
            auto bytes = s.ReadBlob(c);
            if (!bytes) continue;
            auto cfg = oci::ImageConfig::Parse(*bytes);
            if (!cfg || cfg->diff_ids.empty()) continue;
            for (const auto& chain : oci::ChainIds(cfg->diff_ids)) {
              live_chains.insert(chain.hex());
            }
          }
          Usage snaps{"Snapshots", 0, 0, 0, 0, "strata prune"};
          if (fs::exists(s.SnapshotsDir(), ec)) {
            for (fs::directory_iterator it(s.SnapshotsDir(), ec), end; !ec && it != end;
                 it.increment(ec)) {
              std::string name = it->path().filename().string();
              int64_t bytes = TreeBytes(it->path());
              snaps.size += bytes;
              if (name.starts_with(".")) {  // temp, trash or scratch dirs
                snaps.reclaimable += bytes;
                continue;
              }
              ++snaps.total;
              if (live_chains.count(name)) {
                ++snaps.active;
              } else {
                snaps.reclaimable += bytes;
              }
            }
          }

          // RUN cache mounts.
          Usage mounts{"Cache mounts", 0, 0, 0, 0, "strata prune --all"};
          fs::path cm = s.root() / "cache-mounts";
          if (fs::exists(cm, ec)) {
            for (fs::directory_iterator it(cm, ec), end; !ec && it != end; it.increment(ec)) {
              if (!it->is_directory(ec)) continue;  // the .lock files
              ++mounts.total;
              mounts.size += TreeBytes(it->path());
            }
          }
          mounts.reclaimable = mounts.size;
          Usage git{"Git cache", 0, 0, 0, 0, "strata prune --all"};
          fs::path gc = s.root() / "git";
          if (fs::exists(gc, ec)) {
            for (fs::directory_iterator it(gc, ec), end; !ec && it != end; it.increment(ec)) {
              if (!it->is_directory(ec) || it->path().extension() != ".git") continue;
              ++git.total;
              git.size += TreeBytes(it->path());
            }
          }
          git.reclaimable = git.size;

          const Usage rows[] = {img, bl, cache, snaps, mounts, git};
          if (*as_json) {
            json out;
            out["root"] = s.root().string();
            json list = json::array();
            for (const auto& u : rows) {
              list.push_back({{"type", u.type},
                              {"total", u.total},
                              {"active", u.active},
                              {"size", u.size},
                              {"reclaimable", u.reclaimable},
                              {"reclaimed_by", u.reclaimed_by}});
            }
            out["usage"] = std::move(list);
            out["tags"] = tags->size();
            fmt::print("{}\n", out.dump(2));
            return kExitOk;
          }
          fmt::print("{:<14}{:<10}{:<10}{:<12}{}\n", "TYPE", "TOTAL", "ACTIVE", "SIZE",
                     "RECLAIMABLE");
          for (const auto& u : rows) {
            fmt::print("{:<14}{:<10}{:<10}{:<12}{}{}\n", u.type, u.total, u.active,
                       HumanSize(u.size), HumanSize(u.reclaimable), Percent(u.reclaimable, u.size));
          }
          return kExitOk;
        };
      }};
}

}  // namespace strata::cli
