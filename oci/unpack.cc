#include "oci/unpack.h"

#include <sys/stat.h>

#include "oci/util/file_util.h"

namespace strata::oci {

namespace fs = std::filesystem;

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
  } else {
    STRATA_RETURN_IF_ERROR(MakeDirs(target));
  }
  ApplyOptions apply;
  apply.form = ApplyForm::kFlattened;
  apply.allow_devices = opts.allow_devices;
  apply.preserve_owners = opts.preserve_owners;
  apply.max_uncompressed_bytes = opts.max_layer_bytes;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto r = ApplyLayer(store, layers[i], diff_ids[i], target, apply);
    if (!r) {
      return Unexpected(r.error().Wrap(
          fmt::format("unpack {} layer {}/{}", image.descriptor.digest, i + 1, layers.size())));
    }
  }
  return OkStatus();
}

}  // namespace strata::oci
