// Lockfile: strata.lock next to the Dockerfile pins every input a build
// resolved from outside its context, so that a later `build --locked` fails
// when one of them moved instead of silently building something else.
//
// Format (design block; JSON, keys sorted, two-space indent, one trailing
// newline — the same inputs always give the same bytes):
//
//   {
//     "version": 1,
//     "images": { "<normalized reference>": { "<platform>": "<manifest digest>" } },
//     "urls":   { "<ADD URL as written>": "<content digest>" },
//     "git":    { "<repository>#<ref>": "<commit>" }
//   }
//
// images: every FROM, COPY --from and --build-context docker-image:// image,
//   keyed by the reference as normalized ("docker.io/library/debian:12"),
//   then by platform ("linux/amd64"; one today, several once multi-platform
//   builds exist), to the platform's manifest digest.
// urls: every ADD <url>, to the sha256 of what it served.
// git: the extension point for git sources (issue 14): repository#ref to a
//   commit. strata does not fetch git sources yet: the section is kept as
//   read and `--locked` refuses a build whose lockfile pins git sources
//   (it cannot check them), by name.
// An unknown top-level key is refused (a newer strata's lockfile), naming it.
//
// Pure functions. Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "builder/engine/executor.h"
#include "oci/util/error.h"

namespace strata::builder {

inline constexpr std::string_view kLockfileName = "strata.lock";

struct Lockfile {
  std::map<std::string, std::map<std::string, std::string>> images;  // ref -> platform -> digest
  std::map<std::string, std::string> urls;
  std::map<std::string, std::string> git;

  // InvalidArgument naming `where` (the file) and the problem.
  static Result<Lockfile> Parse(std::string_view text, std::string_view where);
  std::string Serialize() const;

  // Pins every input of a build (replacing the pins of those inputs; the
  // pins of inputs this build did not use — other targets' stages — stay).
  void Update(const std::vector<ResolvedInput>& inputs);

  // OK if `in` is pinned to what it resolved to. FailedPrecondition naming
  // the input otherwise: "... is not pinned in strata.lock" or "... moved:
  // strata.lock pins X, it now resolves to Y".
  Status Check(const ResolvedInput& in) const;
};

}  // namespace strata::builder
