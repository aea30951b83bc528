// What a RUN's --mount sources hold for the duration of the step.
#pragma once

#include <memory>
#include <vector>

#include "builder/engine/build.h"
#include "builder/engine/ssh_relay.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {

struct Build::RunMounts {
  std::vector<std::unique_ptr<Mounted>> views;  // `from=` file systems
  std::vector<ScopedTempDir> scratch;           // rw bind copies, filtered trees, secrets
  std::vector<UniqueFd> locks;                  // cache mount locks (sharing=)
  // ssh agent relays; declared last so they stop before their sockets' dirs go.
  std::vector<std::unique_ptr<SshRelay>> relays;
};

}  // namespace strata::builder
