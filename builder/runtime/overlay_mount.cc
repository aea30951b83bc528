#include "builder/runtime/overlay_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "oci/util/unique_fd.h"

namespace strata::builder {
namespace {

// Reads the kernel's messages queued on an fs context ("e overlayfs: ...").
std::string ContextMessages(int fsfd) {
  std::string out;
  char buf[1024];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::read(fsfd, buf, sizeof(buf));
    if (n <= 0) break;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::unexpected<Error> MountError(int err, int fsfd, std::string_view what) {
  std::string msgs = fsfd >= 0 ? ContextMessages(fsfd) : std::string();
  if (msgs.empty()) return ErrnoError(err, what);
  return ErrnoError(err, fmt::format("{} ({})", what, msgs));
}

Status Validate(const OverlayOptions& o) {
  if (o.lower_dirs.empty()) return MakeError(ErrorCode::kInvalidArgument, "overlay: no lowerdir");
  auto check = [](const std::filesystem::path& p, std::string_view what) -> Status {
    if (!p.is_absolute()) {
      return MakeError(ErrorCode::kInvalidArgument, "overlay: {} \"{}\" is not absolute", what,
                       p.string());
    }
    return OkStatus();
  };
  for (const auto& l : o.lower_dirs) STRATA_RETURN_IF_ERROR(check(l, "lowerdir"));
  STRATA_RETURN_IF_ERROR(check(o.mountpoint, "mountpoint"));
  if (!o.upper_dir.empty()) {
    STRATA_RETURN_IF_ERROR(check(o.upper_dir, "upperdir"));
    if (o.work_dir.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "overlay: upperdir requires a workdir");
    }
    STRATA_RETURN_IF_ERROR(check(o.work_dir, "workdir"));
  }
  return OkStatus();
}

// A read-only recursive bind of `source` at `target`.
Status ReadOnlyBind(const std::filesystem::path& source, const std::filesystem::path& target) {
  int fd = ::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open_tree {}", source.string()));
  UniqueFd tree(fd);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    return ErrnoError(errno, "mount_setattr rdonly");
  }
  if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError(errno, fmt::format("move_mount to {}", target.string()));
  }
  return OkStatus();
}

// Outcome of the new-API attempt: mounted, an error, or "kernel too old".
struct NewApiResult {
  bool unsupported = false;
  Status status;
};

NewApiResult MountWithNewApi(const OverlayOptions& o) {
  int raw = ::fsopen("overlay", FSOPEN_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOSYS) return {true, OkStatus()};
    return {false, ErrnoError(errno, "fsopen overlay")};
  }
  UniqueFd fsfd(raw);
  auto set = [&](const char* key, const char* value) -> Status {
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value, 0) != 0) {
      return MountError(errno, fsfd.get(), fmt::format("overlay option {}={}", key, value));
    }
    return OkStatus();
  };
  bool first = true;
  for (const auto& l : o.lower_dirs) {
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", l.c_str(), 0) != 0) {
      int err = errno;
      if (first && err == EINVAL) {
        std::string msgs = ContextMessages(fsfd.get());
        if (msgs.find("nknown parameter") != std::string::npos || msgs.empty()) {
          return {true, OkStatus()};
        }
        return {false, ErrnoError(err, fmt::format("overlay lowerdir+ {} ({})", l.string(), msgs))};
      }
      return {false, MountError(err, fsfd.get(), fmt::format("overlay lowerdir+ {}", l.string()))};
    }
    first = false;
  }
  if (!o.upper_dir.empty()) {
    if (auto s = set("upperdir", o.upper_dir.c_str()); !s) return {false, s};
    if (auto s = set("workdir", o.work_dir.c_str()); !s) return {false, s};
  }
  // Under userxattr "redirect_dir=off" still follows redirects (the
  // redirect_always_follow default), which the kernel refuses there:
  // "nofollow" neither creates nor follows them.
  if (auto s = set("redirect_dir", o.userxattr ? "nofollow" : "off"); !s) return {false, s};
  for (const char* key : {"metacopy", "index"}) {
    if (auto s = set(key, "off"); !s) return {false, s};
  }
  if (o.userxattr && ::fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0) {
    return {false, MountError(errno, fsfd.get(), "overlay option userxattr")};
  }
  if (::fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return {false, MountError(errno, fsfd.get(), "overlay create")};
  }
  unsigned attrs = o.upper_dir.empty() ? MOUNT_ATTR_RDONLY : 0;
  int mnt = ::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0) return {false, MountError(errno, fsfd.get(), "fsmount overlay")};
  UniqueFd mntfd(mnt);
  if (::move_mount(mntfd.get(), "", AT_FDCWD, o.mountpoint.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return {false, ErrnoError(errno, fmt::format("move_mount to {}", o.mountpoint.string()))};
  }
  return {false, OkStatus()};
}

}  // namespace

Result<std::string> OverlayMountData(const OverlayOptions& o) {
  STRATA_RETURN_IF_ERROR(Validate(o));
  auto check = [](const std::filesystem::path& p) -> Status {
    if (p.string().find_first_of(":,") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "overlay path \"{}\" contains ':' or ',' (needs kernel >= 6.8)", p.string());
    }
    return OkStatus();
  };
  std::string data = "lowerdir=";
  for (size_t i = 0; i < o.lower_dirs.size(); ++i) {
    STRATA_RETURN_IF_ERROR(check(o.lower_dirs[i]));
    if (i > 0) data += ':';
    data += o.lower_dirs[i].string();
  }
  if (!o.upper_dir.empty()) {
    STRATA_RETURN_IF_ERROR(check(o.upper_dir));
    STRATA_RETURN_IF_ERROR(check(o.work_dir));
    data += fmt::format(",upperdir={},workdir={}", o.upper_dir.string(), o.work_dir.string());
  }
  data += o.userxattr ? ",redirect_dir=nofollow,metacopy=off,index=off,userxattr"
                      : ",redirect_dir=off,metacopy=off,index=off";
  long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  if (data.size() >= static_cast<size_t>(page)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "overlay options are {} bytes, over the {}-byte limit of mount(2) "
                     "({} layers; needs kernel >= 6.8 for lowerdir+)",
                     data.size(), page - 1, o.lower_dirs.size());
  }
  return data;
}

Result<OverlayMount> OverlayMount::Mount(const OverlayOptions& o) {
  STRATA_RETURN_IF_ERROR(Validate(o));
  if (o.upper_dir.empty() && o.lower_dirs.size() == 1) {
    STRATA_RETURN_IF_ERROR(ReadOnlyBind(o.lower_dirs[0], o.mountpoint));
    return OverlayMount(o.mountpoint);
  }
  NewApiResult r = MountWithNewApi(o);
  if (!r.unsupported) {
    if (!r.status) return Unexpected(r.status.error().Wrap("mount overlay"));
    return OverlayMount(o.mountpoint);
  }
  STRATA_ASSIGN_OR_RETURN(std::string data, OverlayMountData(o));
  unsigned long flags = o.upper_dir.empty() ? MS_RDONLY : 0;
  if (::mount("overlay", o.mountpoint.c_str(), "overlay", flags, data.c_str()) != 0) {
    return ErrnoError(errno, fmt::format("mount overlay at {}", o.mountpoint.string()));
  }
  return OverlayMount(o.mountpoint);
}

OverlayMount::OverlayMount(OverlayMount&& o) noexcept : mountpoint_(std::move(o.mountpoint_)) {
  o.mountpoint_.clear();
}

OverlayMount& OverlayMount::operator=(OverlayMount&& o) noexcept {
  if (this != &o) {
    (void)Unmount();
    mountpoint_ = std::move(o.mountpoint_);
    o.mountpoint_.clear();
  }
  return *this;
}

OverlayMount::~OverlayMount() { (void)Unmount(); }

Status OverlayMount::Unmount() {
  if (mountpoint_.empty()) return OkStatus();
  std::filesystem::path mp = std::exchange(mountpoint_, {});
  int err = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (::umount2(mp.c_str(), UMOUNT_NOFOLLOW) == 0) return OkStatus();
    err = errno;
    if (err == EINVAL || err == ENOENT) return OkStatus();  // not mounted any more
    if (err != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
  }
  if (::umount2(mp.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
    return ErrnoError(errno, fmt::format("unmount {}", mp.string()));
  }
  return ErrnoError(err, fmt::format("unmount {} (detached lazily)", mp.string()));
}

}  // namespace strata::builder
