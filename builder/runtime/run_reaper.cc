#include "builder/runtime/run_reaper.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "builder/runtime/oci_runtime_runner.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kOwnersDir = "run-owners";
constexpr size_t kTokenLen = 16;

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  while (out.size() < kTokenLen) out += fmt::format("{:08x}", rd());
  return out.substr(0, kTokenLen);
}

bool IsToken(std::string_view s) {
  return s.size() == kTokenLen && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Takes `fd`'s flock exclusively without waiting.
bool TryLockExclusive(int fd) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

std::vector<fs::path> Entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Undoes /proc/self/mountinfo's octal escapes (space, tab, newline, '\').
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Mount points at or under `root` in this mount namespace.
std::vector<fs::path> MountsUnder(const fs::path& root) {
  std::vector<fs::path> out;
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info) return out;
  const std::string prefix = root.string();
  size_t start = 0;
  while (start < info->size()) {
    size_t end = info->find('\n', start);
    if (end == std::string::npos) end = info->size();
    std::string_view line(info->data() + start, end - start);
    start = end + 1;
    // id parent major:minor root mountpoint ...
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string_view::npos; ++field) {
      pos = line.find(' ', pos);
      if (pos != std::string_view::npos) ++pos;
    }
    if (pos == std::string_view::npos) continue;
    size_t stop = line.find(' ', pos);
    std::string mp = Unescape(line.substr(pos, stop - pos));
    if (mp == prefix || mp.starts_with(prefix + "/")) out.emplace_back(mp);
  }
  return out;
}

bool PathExists(const fs::path& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found && !ec;
}

bool IsWorkDir(std::string_view name) {
  return name.starts_with(".run-") || name.starts_with(".view-") || name.starts_with(".bindrw-");
}

class Reaper {
 public:
  explicit Reaper(const ReapOptions& o) : o_(o) {}

  Result<ReapReport> Run() {
    const fs::path& root = o_.store_root;
    if (!PathExists(root / "lock")) return report_;
    // Idle store: no strata process holds ROOT/lock (shared while open).
    UniqueFd store_lock(::open((root / "lock").c_str(), O_RDWR | O_CLOEXEC));
    report_.exclusive = store_lock && TryLockExclusive(store_lock.get());

    // Dead owners: their lock files can be locked.
    std::set<std::string> dead;
    std::vector<std::pair<fs::path, UniqueFd>> dead_files;
    for (const fs::path& f : Entries(root / kOwnersDir)) {
      std::string token = f.filename().string();
      UniqueFd fd(::open(f.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd || !IsToken(token) || !TryLockExclusive(fd.get())) continue;
      dead.insert(token);
      dead_files.emplace_back(f, std::move(fd));
    }
    auto owned_by_dead = [&](std::string_view rest) {
      return rest.size() > kTokenLen && rest[kTokenLen] == '-' &&
             dead.contains(std::string(rest.substr(0, kTokenLen)));
    };

    // Mounts first (only an idle store can have none that are live), so that
    // removing dirs never descends into a mounted overlay.
    if (report_.exclusive) {
      auto mounts = MountsUnder(root);
      std::sort(mounts.begin(), mounts.end(), std::greater<>());  // deepest first
      for (const fs::path& m : mounts) {
        if (::umount2(m.c_str(), MNT_DETACH) == 0) {
          ++report_.mounts;
        } else if (errno != EINVAL && errno != ENOENT) {
          Note(ErrnoError(errno, fmt::format("unmount {}", m.string())).error());
        }
      }
    }

    const fs::path state = root / "runtime";
    for (const fs::path& c : Entries(state)) {
      std::string id = c.filename().string();
      if (!id.starts_with("strata-")) continue;
      if (!report_.exclusive && !owned_by_dead(std::string_view(id).substr(7))) continue;
      Status s = o_.runtime.empty() ? OkStatus() : DeleteContainer(o_.runtime, state, id);
      if (PathExists(c)) s = RemoveAll(c);
      if (s) {
        ++report_.containers;
      } else {
        Note(s.error());
      }
    }

    for (const fs::path& b : Entries(root / "bundles")) {
      std::string name = b.filename().string();
      if (!name.starts_with("run-")) continue;
      if (!report_.exclusive && !owned_by_dead(std::string_view(name).substr(4))) continue;
      ::umount2((b / "netns").c_str(), MNT_DETACH);  // a network namespace left mounted
      if (Status s = RemoveAll(b); s) {
        ++report_.bundles;
      } else {
        Note(s.error());
      }
    }

    if (report_.exclusive) {
      for (const fs::path& w : Entries(root / "snapshots")) {
        if (!IsWorkDir(w.filename().string())) continue;
        if (Status s = RemoveAll(w); s) {
          ++report_.work_dirs;
        } else {
          Note(s.error());
        }
      }
    }

    for (auto& [file, fd] : dead_files) {
      if (::unlink(file.c_str()) == 0) ++report_.owners;
    }
    if (first_error_) return Unexpected(*first_error_);
    return report_;
  }

 private:
  void Note(const Error& e) {
    if (!first_error_) first_error_ = e.Wrap("reap dead RUN state");
  }

  const ReapOptions& o_;
  ReapReport report_;
  std::optional<Error> first_error_;
};

}  // namespace

Result<RunOwner> RunOwner::Acquire(const fs::path& store_root) {
  const fs::path dir = store_root / kOwnersDir;
  STRATA_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string token = RandomToken();
    fs::path file = dir / token;
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) {
      if (errno == EEXIST) continue;
      return ErrnoError(errno, fmt::format("create {}", file.string()));
    }
    if (!TryLockExclusive(fd.get()))
      return ErrnoError(errno, fmt::format("lock {}", file.string()));
    RunOwner owner;
    owner.file_ = std::move(file);
    owner.token_ = std::move(token);
    owner.fd_ = std::move(fd);
    return owner;
  }
  return MakeError(ErrorCode::kInternal, "no free owner token in {}", dir.string());
}

RunOwner& RunOwner::operator=(RunOwner&& o) noexcept {
  if (this != &o) {
    Release();
    file_ = std::move(o.file_);
    token_ = std::move(o.token_);
    fd_ = std::move(o.fd_);
    o.file_.clear();
  }
  return *this;
}

RunOwner::~RunOwner() { Release(); }

void RunOwner::Release() {
  // Unlink while still holding the lock: a reaper that opened the file just
  // before cannot take it until we close, and then finds it gone.
  if (fd_ && !file_.empty()) ::unlink(file_.c_str());
  fd_.Reset();
  file_.clear();
}

std::string OwnedContainerId(std::string_view token, uint64_t n) {
  return fmt::format("strata-{}-{}", token, n);
}

std::string OwnedBundlePrefix(std::string_view token) { return fmt::format("run-{}-", token); }

Result<ReapReport> ReapDeadRuns(const ReapOptions& options) { return Reaper(options).Run(); }

}  // namespace strata::builder
