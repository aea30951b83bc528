// `build --secret`: buildx's forms, parsed into what RUN --mount=type=secret
// (and the git client's GIT_AUTH_TOKEN / GIT_AUTH_HEADER) use:
//   id=ID,src=PATH (or source=)   id=ID,env=VAR   type=file|env   id=ID alone
// (id alone: the variable ID if set, else the file ID). Values of env
// secrets are read from strata's environment here, once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "builder/engine/executor.h"
#include "oci/util/error.h"

namespace strata::cli {

// InvalidArgument naming the flag for a bad field or form; NotFound for an
// unset variable or a file that is not readable.
Result<std::map<std::string, builder::BuildOptions::Secret>> ParseSecretFlags(
    const std::vector<std::string>& flags);

// The value of secret `s` (its file's content, or the env value).
Result<std::string> SecretValue(const builder::BuildOptions::Secret& s);

}  // namespace strata::cli
