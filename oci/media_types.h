// Media types of the OCI image spec and their Docker schema2 equivalents.
#pragma once

#include <string_view>

namespace strata::oci::media_type {

inline constexpr std::string_view kImageManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kImageIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kImageConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kLayerNondistributableTarGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kEmptyJson = "application/vnd.oci.empty.v1+json";

inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

enum class Compression { kNone, kGzip, kZstd, kUnknown };

inline bool IsManifest(std::string_view mt) {
  return mt == kImageManifest || mt == kDockerManifest;
}
inline bool IsIndex(std::string_view mt) { return mt == kImageIndex || mt == kDockerManifestList; }
inline bool IsConfig(std::string_view mt) { return mt == kImageConfig || mt == kDockerConfig; }
inline bool IsLayer(std::string_view mt) {
  return mt == kLayerTar || mt == kLayerTarGzip || mt == kLayerTarZstd ||
         mt == kLayerNondistributableTarGzip || mt == kDockerLayerGzip ||
         mt == kDockerLayerForeignGzip;
}
// Compression a layer media type declares.
inline Compression LayerCompression(std::string_view mt) {
  if (mt == kLayerTar) return Compression::kNone;
  if (mt == kLayerTarGzip || mt == kDockerLayerGzip || mt == kLayerNondistributableTarGzip ||
      mt == kDockerLayerForeignGzip)
    return Compression::kGzip;
  if (mt == kLayerTarZstd) return Compression::kZstd;
  return Compression::kUnknown;
}

}  // namespace strata::oci::media_type
