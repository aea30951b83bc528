// WORKDIR: sets the working directory and, when the image does not have it,
// makes it (a layer), owned by the USER in effect as BuildKit does.
#include <fmt/format.h>

#include "builder/engine/build.h"
#include "builder/engine/image_path.h"
#include "builder/engine/staging.h"
#include "builder/runtime/user_db.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace fs = std::filesystem;

Status Build::DoWorkdir(const Instruction& ins, StageState& st, const std::string& label) {
  const auto& w = std::get<WorkdirCommand>(ins.command);
  std::string path = w.path;
  if (path.empty() || path[0] != '/') {
    path = (st.config.config.working_dir.empty() ? "/" : st.config.config.working_dir) + "/" + path;
  }
  path = CleanAbs(path);
  st.config.config.working_dir = path;
  int id = ++step_;
  progress_.StepStart(id, label);
  std::string created_by = fmt::format("WORKDIR {}", path);
  CacheKey key("WORKDIR");
  key.Add(st.key.ToString()).Add(path);
  oci::Digest k = key.Finish();
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) return OkStatus();
  // Docker creates the directory when it does not exist yet.
  bool exists = false;
  std::string in_image = path;  // where the directory is made, links resolved
  auto view = ViewOf(st);
  if (!view) return Fail(ins, view.error());
  const fs::path& image_root = (*view)->root();
  auto resolved = ResolveInRoot(image_root, path, true);
  std::error_code ec;
  exists = resolved && fs::is_directory(*resolved, ec);
  if (resolved)
    in_image = CleanAbs(fmt::format("/{}", resolved->lexically_relative(image_root).string()));
  CacheRecord rec;
  rec.created_by = created_by;
  rec.empty_layer = exists;
  if (!exists) {
    STRATA_ASSIGN_OR_RETURN(auto staging, oci::MakeSnapshotScratchDir(store_, ".copy-"));
    fs::path fsdir = staging.path() / "fs";
    STRATA_RETURN_IF_ERROR(MakeDirs(fsdir));
    STRATA_ASSIGN_OR_RETURN(auto root, RootDir::Open(fsdir));
    // Directories WORKDIR creates belong to the USER in effect (BuildKit);
    // those the image has keep their metadata.
    uid_t uid = 0;
    gid_t gid = 0;
    if (const std::string& user = st.config.config.user; !user.empty()) {
      auto ru = ResolveUser(image_root, user);
      if (!ru) return Fail(ins, ru.error().Wrap(fmt::format("WORKDIR {}: USER {}", path, user)));
      uid = ru->uid;
      gid = ru->gid;
    }
    std::vector<DirTime> dir_times;
    if (auto made = MakeDirsLikeImage(root, image_root, in_image, uid, gid, dir_times); !made) {
      return Fail(ins, made.error().Wrap(fmt::format("WORKDIR {}", path)));
    }
    FinishDirTimes(root, dir_times);
    StepSink out(progress_, id);
    auto info = Commit(fsdir, /*overlay_upper=*/false, out);
    if (!info) return Fail(ins, info.error());
    rec.layer = info->descriptor;
    rec.diff_id = info->diff_id;
    STRATA_RETURN_IF_ERROR(AddLayer(st, *info, fsdir));
  }
  Committed(st, k, std::move(rec));
  progress_.StepDone(id, false, 0);
  return OkStatus();
}

}  // namespace strata::builder
