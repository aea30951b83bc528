#include "tools/strata/build_lock.h"

#include <fmt/format.h>

#include <memory>

#include <algorithm>

#include "builder/engine/named_contexts.h"
#include "builder/frontend/plan.h"
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
  auto shared = std::make_shared<builder::Lockfile>(std::move(lf));
  options.check_input = [shared](const builder::ResolvedInput& in) { return shared->Check(in); };
  return OkStatus();
}

Result<std::vector<builder::ResolvedInput>> UnbuiltStageInputs(
    std::string_view text, const builder::BuildOptions& options,
    const std::vector<builder::ResolvedInput>& have,
    const std::function<Result<builder::ResolvedInput>(const oci::Reference&)>& resolve) {
  builder::ParseOptions po;
  po.file_name = options.dockerfile.filename().string();
  po.build_args = options.build_args;
  po.target = options.target;
  STRATA_ASSIGN_OR_RETURN(auto plan, builder::ParseDockerfile(text, po));
  std::vector<builder::ResolvedInput> out;
  for (const auto& st : plan.stages) {
    if (st.needed || st.base.kind != builder::StageBase::Kind::kImage) continue;
    if (builder::FindNamedContext(options.named_contexts, st.base.image)) continue;
    auto ref = oci::Reference::Parse(st.base.image);
    if (!ref) return Unexpected(ref.error().Wrap(fmt::format("--lock: stage {}", st.index)));
    const std::string key = ref->ToString();
    auto seen = [&](const builder::ResolvedInput& in) {
      return in.kind == builder::ResolvedInput::Kind::kImage && in.ref == key;
    };
    if (std::any_of(have.begin(), have.end(), seen) || std::any_of(out.begin(), out.end(), seen)) {
      continue;
    }
    auto in = resolve(*ref);
    if (!in) return Unexpected(in.error().Wrap(fmt::format("--lock: FROM {}", st.base.image)));
    out.push_back(std::move(*in));
  }
  return out;
}

Result<fs::path> WriteLock(const fs::path& dockerfile,
                           const std::vector<builder::ResolvedInput>& inputs) {
  const fs::path path = LockPath(dockerfile);
  builder::Lockfile lf;
  auto text = ReadFile(path);
  if (text) {
    STRATA_ASSIGN_OR_RETURN(lf, builder::Lockfile::Parse(*text, path.string()));
  } else if (text.error().code() != ErrorCode::kNotFound) {
    return Unexpected(text.error());
  }
  lf.Update(inputs);
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(path, lf.Serialize()));
  return path;
}

Result<fs::path> WriteLockForBuild(oci::Store& store, const builder::BuildOptions& options,
                                   const builder::BuildResult& result, const fs::path& dockerfile,
                                   std::vector<builder::ResolvedInput>* pins) {
  auto resolve = [&](const oci::Reference& ref) -> Result<builder::ResolvedInput> {
    const oci::Platform host = oci::Platform::Host();
    auto desc = store.Resolve(ref);
    if (!desc && desc.error().code() == ErrorCode::kNotFound && options.resolver) {
      desc = options.metadata_resolver ? options.metadata_resolver(ref, host)
                                       : options.resolver(ref, host);
    }
    if (!desc) return Unexpected(desc.error());
    STRATA_ASSIGN_OR_RETURN(auto img, store.LoadImageMetadata(*desc, host));
    return builder::ResolvedInput{builder::ResolvedInput::Kind::kImage, ref.ToString(),
                                  img.descriptor.digest, host.ToString()};
  };
  STRATA_ASSIGN_OR_RETURN(auto extra, UnbuiltStageInputs(options.dockerfile_text.value_or(""),
                                                         options, result.inputs, resolve));
  *pins = result.inputs;
  pins->insert(pins->end(), extra.begin(), extra.end());
  return WriteLock(dockerfile, *pins);
}

}  // namespace strata::cli
