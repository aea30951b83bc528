#include "oci/snapshots.h"

#include <sys/stat.h>

#include <algorithm>

#include "oci/util/file_util.h"

namespace strata::oci {

namespace fs = std::filesystem;

std::vector<Digest> ChainIds(std::span<const Digest> diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (const Digest& d : diff_ids) {
    if (out.empty()) {
      out.push_back(d);
    } else {
      out.push_back(Digest::Of(out.back().ToString() + " " + d.ToString()));
    }
  }
  return out;
}

Digest ChainId(std::span<const Digest> diff_ids) { return ChainIds(diff_ids).back(); }

fs::path SnapshotPath(const Store& store, const Digest& chain_id) {
  return store.SnapshotsDir() / chain_id.hex();
}

Result<fs::path> EnsureSnapshot(const Store& store, const Digest& chain_id, const Descriptor& layer,
                                const Digest& diff_id, const SnapshotOptions& opts) {
  const fs::path final_path = SnapshotPath(store, chain_id);
  struct stat st;
  if (::lstat(final_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return final_path;
  auto wrap = [&](const Error& e) {
    return Unexpected(e.Wrap(fmt::format("snapshot {}", chain_id)));
  };
  if (auto s = MakeDirs(store.SnapshotsDir()); !s) return wrap(s.error());
  auto tmp = ScopedTempDir::Create(store.SnapshotsDir(), ".tmp-");
  if (!tmp) return wrap(tmp.error());
  // mkdtemp makes 0700; the snapshot root becomes the container's "/".
  if (::chmod(tmp->path().c_str(), 0755) != 0) {
    return wrap(ErrnoError(errno, "chmod " + tmp->path().string()).error());
  }
  ApplyOptions apply;
  apply.form = ApplyForm::kOverlay;
  apply.allow_devices = opts.allow_devices;
  apply.preserve_owners = opts.preserve_owners;
  apply.max_uncompressed_bytes = opts.max_uncompressed_bytes;
  auto applied = ApplyLayer(store, layer, diff_id, tmp->path(), apply);
  if (!applied) return wrap(applied.error());
  if (auto s = RenameDurable(tmp->path(), final_path); !s) {
    // Lost a race with another process making the same snapshot: theirs is
    // as good as ours (same chainID, verified layer), ours is removed.
    if (::lstat(final_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return final_path;
    return wrap(s.error());
  }
  tmp->Release();
  return final_path;
}

Result<std::vector<fs::path>> PrepareLowerDirs(const Store& store, const Image& image,
                                               const SnapshotOptions& opts) {
  STRATA_RETURN_IF_ERROR(CheckLayersMatchDiffIds(image));
  const auto& layers = image.manifest.layers;
  const auto& diff_ids = image.config.diff_ids;
  std::vector<Digest> chain = ChainIds(diff_ids);
  std::vector<fs::path> lower;
  lower.reserve(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(fs::path p,
                            EnsureSnapshot(store, chain[i], layers[i], diff_ids[i], opts));
    lower.push_back(std::move(p));
  }
  std::reverse(lower.begin(), lower.end());
  return lower;
}

std::string LowerDirOption(const std::vector<fs::path>& lower_dirs) {
  std::string out;
  for (const auto& p : lower_dirs) {
    if (!out.empty()) out += ':';
    out += p.string();
  }
  return out;
}

}  // namespace strata::oci
