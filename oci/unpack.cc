#include "oci/unpack.h"

#include <sys/stat.h>

#include <vector>

#include "oci/util/file_util.h"

namespace strata::oci {

namespace fs = std::filesystem;

namespace {

// Empties `target` (never following symlinks); removes it if `created`.
Status Discard(const fs::path& target, bool created) {
  if (created) return RemoveAll(target);
  std::error_code ec;
  std::vector<fs::path> children;
  for (fs::directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
    children.push_back(it->path());
  }
  if (ec) return ErrnoError(ec.value(), "list " + target.string());
  for (const auto& c : children) STRATA_RETURN_IF_ERROR(RemoveAll(c));
  return OkStatus();
}

}  // namespace

Status UnpackImage(const Store& store, const Image& image, const fs::path& target,
                   const UnpackOptions& opts) {
  STRATA_RETURN_IF_ERROR(CheckLayersMatchDiffIds(image));
  const auto& layers = image.manifest.layers;
  const auto& diff_ids = image.config.diff_ids;
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(target, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status)) {
      return MakeError(ErrorCode::kFailedPrecondition, "unpack target {} is not a directory",
                       target.string());
    }
    if (!fs::is_empty(target, ec) || ec) {
      return MakeError(ErrorCode::kFailedPrecondition, "unpack target {} is not empty",
                       target.string());
    }
  }
  const bool created = !fs::exists(status);
  if (created) STRATA_RETURN_IF_ERROR(MakeDirs(target));
  ApplyOptions apply;
  apply.form = ApplyForm::kFlattened;
  apply.allow_devices = opts.allow_devices;
  apply.preserve_owners = opts.preserve_owners;
  apply.max_uncompressed_bytes = opts.max_layer_bytes;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto r = ApplyLayer(store, layers[i], diff_ids[i], target, apply);
    if (!r) {
      Error err = r.error().Wrap(
          fmt::format("unpack {} layer {}/{}", image.descriptor.digest, i + 1, layers.size()));
      // The failed layer rolled itself back; the layers below it go too.
      if (auto s = Discard(target, created); !s) {
        err = Error(err.code(), fmt::format("{} (cleaning up {} also failed: {})", err.message(),
                                            target.string(), s.error().message()));
      }
      return Unexpected(std::move(err));
    }
  }
  return OkStatus();
}

}  // namespace strata::oci
