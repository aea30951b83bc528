// ApplyToConfig: what a metadata instruction (ENV, LABEL, EXPOSE, USER,
// VOLUME, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, ONBUILD, MAINTAINER,
// HEALTHCHECK, ARG) does to an image config. A pure function: no I/O, no
// history (the orchestrator records that).
#pragma once

#include <string>
#include <vector>

#include "builder/frontend/instructions.h"
#include "oci/image_config.h"

namespace strata::builder {

struct ConfigEdit {
  bool handled = false;  // false: not a metadata instruction (RUN, COPY, ...)
  bool history = true;   // false for ARG: BuildKit records no history entry
};

// Applies the expanded instruction `ins` to `config`. `cmd_set` is the
// stage's "CMD was set in this stage" flag (an ENTRYPOINT resets an
// inherited CMD, never one of the same stage); it is read and updated.
ConfigEdit ApplyToConfig(const Instruction& ins, oci::ImageConfig& config, bool& cmd_set);

// The argv of a CMD/ENTRYPOINT/RUN command line: the exec form as is, the
// shell form appended to SHELL (default /bin/sh -c).
std::vector<std::string> CommandArgv(const CommandLine& c, const std::vector<std::string>& shell);

// The stage's SHELL, or the default /bin/sh -c.
std::vector<std::string> ShellOf(const oci::ImageConfig& config);

}  // namespace strata::builder
