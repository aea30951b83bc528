// `strata build --add-host`, `--ulimit`, `--shm-size` in docker's syntax:
// options of every RUN. Pure parsing (the CLI checks --ulimit against its
// own hard limits separately); the values go to builder::BuildOptions.
//
//   --add-host HOST:IP | HOST=IP     IPv4, IPv6 (also [::1]); docker's special
//                                    "host-gateway" is refused
//   --ulimit NAME=SOFT[:HARD]        docker's names (nofile, nproc, core, ...);
//                                    -1 = unlimited; HARD defaults to SOFT
//   --shm-size SIZE                  bytes, or with k/m/g (binary, as docker)
#pragma once

#include <cstdint>
#include <string_view>

#include "builder/runtime/runtime_spec.h"
#include "oci/util/error.h"

namespace strata::cli {

// InvalidArgument naming the value for a missing host, a bad address;
// Unimplemented for host-gateway.
Result<builder::HostEntry> ParseAddHost(std::string_view value);

// InvalidArgument naming the value for an unknown name, a bad number, or a
// soft limit above the hard one.
Result<builder::Rlimit> ParseUlimit(std::string_view value);

// InvalidArgument naming the value for anything but a positive size.
Result<uint64_t> ParseShmSize(std::string_view value);

}  // namespace strata::cli
