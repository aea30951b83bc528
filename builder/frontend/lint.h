// Build checks: BuildKit's Dockerfile linter rules that need no network
// (https://docs.docker.com/reference/build-checks/), with the same rule
// names, messages and URLs, so that output scripts grep for reads the same.
//
// Controlled as BuildKit does: the `# check=skip=A,B;error=true;
// experimental=C` directive, overridden by the BUILDKIT_DOCKERFILE_CHECK
// build argument; `strata build --check` lints without building.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "builder/frontend/dockerfile_parser.h"
#include "builder/frontend/dockerignore.h"
#include "oci/util/error.h"

namespace strata::builder {

struct CheckOptions {
  bool skip_all = false;
  std::set<std::string, std::less<>> skip;  // rule names
  bool error = false;                       // violations fail the build
  bool experimental_all = false;
  std::set<std::string, std::less<>> experimental;  // experimental rules enabled
};

// Parses a check directive value ("skip=JSONArgsRecommended;error=true").
// InvalidArgument naming an unknown option or a bad boolean.
Result<CheckOptions> ParseCheckOptions(std::string_view value);

struct CheckWarning {
  std::string rule;         // "JSONArgsRecommended"
  std::string description;  // the rule's one-line description
  std::string url;          // https://docs.docker.com/go/dockerfile/rule/...
  std::string detail;       // the message for this occurrence
  int start_line = 0;       // 1-based; 0 = no location
  int end_line = 0;
};

struct LintInputs {
  std::string file_name = "Dockerfile";
  // The ENV of a base image (KEY=VALUE), when it is known without network
  // (in the local store); nullopt = unknown, and UndefinedVar is not checked
  // in stages built on it.
  std::function<std::optional<std::vector<std::string>>(const std::string& image)> image_env;
  // The context's .dockerignore, for CopyIgnoredFile (experimental).
  const DockerIgnore* ignore = nullptr;
};

// Runs every enabled check over `ast`, sorted by line. Instructions that do
// not parse are skipped (the build reports them as errors).
std::vector<CheckWarning> RunChecks(const AstFile& ast, const CheckOptions& options,
                                    const LintInputs& inputs);

// "Check complete, N warnings have been found!" and each warning with its
// source lines, as `docker build --check` prints them; `source` is the
// Dockerfile's text.
std::string FormatCheckReport(const std::vector<CheckWarning>& warnings, std::string_view file_name,
                              std::string_view source);
// " - Rule: detail (line N)", the one-line form a build prints.
std::string FormatCheckLine(const CheckWarning& w);
// "lint violation found for rules: A, B" (check=error=true).
std::string CheckErrorMessage(const std::vector<CheckWarning>& warnings);

}  // namespace strata::builder
