// Build checks (frontend/lint.h): on every build, as BuildKit runs them, and
// alone for `build --check`.
#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/frontend/lint.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace {

// The check options: the Dockerfile's `# check=` directive, or the
// BUILDKIT_DOCKERFILE_CHECK build argument, which wins (as in BuildKit).
Result<CheckOptions> CheckOptionsFor(std::string_view directive,
                                     const std::map<std::string, std::string>& build_args) {
  if (auto it = build_args.find("BUILDKIT_DOCKERFILE_CHECK"); it != build_args.end()) {
    return ParseCheckOptions(it->second);
  }
  return ParseCheckOptions(directive);
}

}  // namespace

// Build checks (frontend/lint.h), as BuildKit runs them on every build:
// warnings, or an error before anything runs with check=error=true.
Status Build::Lint(const std::string& text) {
  STRATA_ASSIGN_OR_RETURN(CheckOptions co,
                          CheckOptionsFor(plan_.directives.check, opts_.build_args));
  if (co.skip_all) return OkStatus();
  STRATA_ASSIGN_OR_RETURN(AstFile ast, ParseAst(text, file_name_));
  LintInputs in;
  in.file_name = file_name_;
  in.ignore = &ignore_;
  in.image_env = [this](const std::string& image) { return LocalImageEnv(store_, image); };
  auto warnings = RunChecks(ast, co, in);
  for (const auto& w : warnings) {
    progress_.Warning(w.start_line > 0
                          ? fmt::format("{}: {} (line {})", w.rule, w.detail, w.start_line)
                          : fmt::format("{}: {}", w.rule, w.detail));
  }
  if (co.error && !warnings.empty()) {
    return MakeError(ErrorCode::kFailedPrecondition, "{}: {}", file_name_,
                     CheckErrorMessage(warnings));
  }
  return OkStatus();
}

std::optional<std::vector<std::string>> LocalImageEnv(const oci::Store& store,
                                                      const std::string& image) {
  auto ref = oci::Reference::Parse(image);
  if (!ref) return std::nullopt;
  auto desc = store.Resolve(*ref);
  if (!desc) return std::nullopt;
  auto img = store.LoadImageMetadata(*desc, oci::Platform::Host());  // ENV only
  if (!img) return std::nullopt;
  return img->config.config.env;
}

Result<CheckReport> CheckDockerfile(const oci::Store& store, const BuildOptions& opts) {
  std::filesystem::path dockerfile =
      opts.dockerfile.empty() ? opts.context_dir / "Dockerfile" : opts.dockerfile;
  std::string file_name = dockerfile.filename().string();
  Result<std::string> text =
      opts.dockerfile_text ? Result<std::string>(*opts.dockerfile_text) : ReadFile(dockerfile);
  if (!text) return Unexpected(text.error());
  STRATA_ASSIGN_OR_RETURN(AstFile ast, ParseAst(*text, file_name));
  STRATA_ASSIGN_OR_RETURN(CheckOptions co, CheckOptionsFor(ast.directives.check, opts.build_args));
  STRATA_ASSIGN_OR_RETURN(DockerIgnore ignore, DockerIgnore::Load(opts.context_dir, dockerfile));
  LintInputs in;
  in.file_name = file_name;
  in.ignore = &ignore;
  in.image_env = [&store](const std::string& image) { return LocalImageEnv(store, image); };
  auto warnings = RunChecks(ast, co, in);
  CheckReport r;
  r.text = FormatCheckReport(warnings, file_name, *text);
  r.warnings = warnings.size();
  if (co.error && !warnings.empty()) r.error = CheckErrorMessage(warnings);
  return r;
}

}  // namespace strata::builder
