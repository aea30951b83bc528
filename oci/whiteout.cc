#include "oci/whiteout.h"

#include <sys/sysmacros.h>

namespace strata::oci {

Whiteout ClassifyWhiteout(std::string_view base) {
  if (!base.starts_with(kWhiteoutPrefix)) return {};
  if (base == kOpaqueWhiteout) return {WhiteoutKind::kOpaque, {}};
  if (base.starts_with(kWhiteoutMetaPrefix)) return {WhiteoutKind::kMeta, {}};
  std::string_view target = base.substr(kWhiteoutPrefix.size());
  if (target.empty() || target == "." || target == ".." ||
      target.find('/') != std::string_view::npos) {
    return {WhiteoutKind::kInvalid, {}};
  }
  return {WhiteoutKind::kFile, std::string(target)};
}

std::string WhiteoutName(std::string_view name) {
  std::string s(kWhiteoutPrefix);
  s += name;
  return s;
}

bool IsOverlayXattr(std::string_view name) {
  return name.starts_with(kOverlayXattrPrefix) || name.starts_with(kUserOverlayXattrPrefix);
}

bool IsOverlayOpaqueXattr(std::string_view name) {
  return name == kOverlayOpaqueXattr || name == kUserOverlayOpaqueXattr;
}

bool IsOverlayWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

}  // namespace strata::oci
