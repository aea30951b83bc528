// Paths inside an image's file system, as the executor handles them: cleaning
// Dockerfile paths, mapping them below a host directory that stands for the
// image root without ever reaching the host's "/", resolving symlinks as if
// that directory were "/", and applying COPY --chmod. Pure functions.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "oci/util/error.h"

namespace strata::builder {

// An absolute, cleaned image path: "/a/b" from "a//b/", "/../a", "//a". Never
// contains "..", never starts with "//".
std::string CleanAbs(std::string_view p);

// `abs` (an image path) below `root`. Never escapes `root`, whatever `abs`
// holds ("..", leading slashes).
std::filesystem::path Under(const std::filesystem::path& root, std::string_view abs);

// Resolves `rel` inside `root` as if `root` were "/": symlinks in any
// component are followed but can never leave the root (an absolute target
// restarts at `root`, ".." stops at it). The final component is followed only
// when `follow_last`. Missing components are kept as written. InvalidArgument
// after 40 symlinks.
Result<std::filesystem::path> ResolveInRoot(const std::filesystem::path& root, std::string_view rel,
                                            bool follow_last);

bool IsNumeric(std::string_view s);

// Applies a COPY --chmod spec to `mode`: octal ("755", "0640") or symbolic
// ("u+x,g-w,o=r", "a+rX"). InvalidArgument naming the spec otherwise.
Result<mode_t> ApplyChmod(std::string_view spec, mode_t mode, bool is_dir);

}  // namespace strata::builder
