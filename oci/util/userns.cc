#include "oci/util/userns.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

namespace strata {

bool IsInitialUidMap(std::string_view uid_map) {
  std::istringstream in{std::string(uid_map)};
  std::string inside, outside, count, extra;
  if (!(in >> inside >> outside >> count)) return false;
  if (in >> extra) return false;  // more than one line: not the identity
  return inside == "0" && outside == "0" && count == "4294967295";
}

bool IdInMap(std::string_view id_map, uint32_t id) {
  std::istringstream in{std::string(id_map)};
  uint64_t inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count) {
    if (id >= inside && id - inside < count) return true;
  }
  return false;
}

bool GidMappedInProcess(uint32_t gid) {
  std::ifstream f("/proc/self/gid_map");
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  return IdInMap(ss.str(), gid);
}

bool InUserNamespace() {
  static const bool in_userns = [] {
    std::ifstream f("/proc/self/uid_map");
    if (!f) return false;
    std::stringstream ss;
    ss << f.rdbuf();
    return !IsInitialUidMap(ss.str());
  }();
  return in_userns;
}

std::string_view OverlayXattrPrefixForProcess() {
  return InUserNamespace() ? "user.overlay." : "trusted.overlay.";
}

std::string_view OverlayOpaqueXattrForProcess() {
  return InUserNamespace() ? "user.overlay.opaque" : "trusted.overlay.opaque";
}

std::unexpected<Error> ChownError(int err, std::string_view what, uid_t uid, gid_t gid) {
  if (err == EINVAL && InUserNamespace()) {
    const char* user = std::getenv("USER");
    std::string who = user != nullptr && *user != '\0' ? user : "USER";
    return MakeError(ErrorCode::kFailedPrecondition,
                     "chown {} to {}:{}: the id is not mapped in this rootless build's user "
                     "namespace; give {} a range in /etc/subuid and /etc/subgid (e.g. "
                     "\"{}:100000:65536\" in both) and install uidmap",
                     what, uid, gid, who, who);
  }
  return ErrnoError(err, fmt::format("chown {} to {}:{}", what, uid, gid));
}

}  // namespace strata
