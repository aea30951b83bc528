#include "tools/strata/build_lock.h"

#include <fmt/format.h>

#include <memory>

#include "builder/engine/named_contexts.h"
#include "oci/util/file_util.h"

namespace strata::cli {
namespace fs = std::filesystem;

namespace {
fs::path LockPath(const fs::path& dockerfile) {
  return dockerfile.parent_path() / builder::kLockfileName;
}
}  // namespace

Status PrepareLock(const LockFlags& flags, const fs::path& dockerfile, bool dockerfile_from_stdin,
                   builder::BuildOptions& options) {
  if (!flags.any()) return OkStatus();
  if (flags.locked && (flags.lock || flags.update_lock)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--locked checks strata.lock; it cannot be combined with --lock or "
                     "--update-lock");
  }
  if (dockerfile_from_stdin) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--lock/--locked/--update-lock need a Dockerfile on disk (strata.lock goes "
                     "next to it), not one from stdin");
  }
  if (!flags.locked) return OkStatus();
  for (const auto& [name, ctx] : options.named_contexts) {
    if (ctx.kind == builder::NamedContext::Kind::kUrl) {
      return MakeError(ErrorCode::kUnimplemented,
                       "--locked: --build-context {}={}: URL contexts are not pinned by "
                       "strata.lock yet",
                       name, ctx.value);
    }
  }
  const fs::path path = LockPath(dockerfile);
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kNotFound, "--locked: {} not found (run with --lock first)",
                       path.string());
    }
    return Unexpected(text.error().Wrap("--locked"));
  }
  STRATA_ASSIGN_OR_RETURN(auto lf, builder::Lockfile::Parse(*text, path.string()));
  if (!lf.git.empty()) {
    return MakeError(ErrorCode::kUnimplemented,
                     "--locked: {} pins git sources ({}), which this strata cannot check",
                     path.string(), lf.git.begin()->first);
  }
  auto shared = std::make_shared<builder::Lockfile>(std::move(lf));
  options.check_input = [shared](const builder::ResolvedInput& in) { return shared->Check(in); };
  return OkStatus();
}

Result<fs::path> WriteLock(const fs::path& dockerfile, const builder::BuildResult& result) {
  const fs::path path = LockPath(dockerfile);
  builder::Lockfile lf;
  auto text = ReadFile(path);
  if (text) {
    STRATA_ASSIGN_OR_RETURN(lf, builder::Lockfile::Parse(*text, path.string()));
  } else if (text.error().code() != ErrorCode::kNotFound) {
    return Unexpected(text.error());
  }
  lf.Update(result.inputs);
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(path, lf.Serialize()));
  return path;
}

}  // namespace strata::cli
