#include "builder/runtime/user_db.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "oci/util/file_util.h"
#include "oci/util/in_root.h"
#include "oci/util/unique_fd.h"

namespace strata::builder {
namespace {

constexpr uint32_t kMaxId = 2147483647;

std::vector<std::string_view> SplitFields(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = line.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, pos - start));
    start = pos + 1;
  }
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::string_view line : SplitFields(text, '\n')) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    out.push_back(line);
  }
  return out;
}

// Parses a decimal id; nullopt if `s` is not all digits or out of range.
std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (v > 0xffffffffULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Numeric USER/group parts: all digits. Returns InvalidArgument if out of range.
Result<std::optional<uint32_t>> NumericPart(std::string_view s) {
  if (!IsAllDigits(s)) return std::optional<uint32_t>();
  auto v = ParseId(s);
  if (!v || *v > kMaxId) {
    return MakeError(ErrorCode::kInvalidArgument, "uids and gids must be in range 0-{}", kMaxId);
  }
  return v;
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (std::string_view line : Lines(text)) {
    auto f = SplitFields(line, ':');
    if (f.size() < 7 || f[0].empty()) continue;
    auto uid = ParseId(f[2]);
    auto gid = ParseId(f[3]);
    if (!uid || !gid) continue;
    out.push_back(PasswdEntry{std::string(f[0]), *uid, *gid, std::string(f[5])});
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  for (std::string_view line : Lines(text)) {
    auto f = SplitFields(line, ':');
    if (f.size() < 4 || f[0].empty()) continue;
    auto gid = ParseId(f[2]);
    if (!gid) continue;
    GroupEntry g{std::string(f[0]), *gid, {}};
    if (!f[3].empty()) {
      for (std::string_view m : SplitFields(f[3], ',')) {
        if (!m.empty()) g.members.emplace_back(m);
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

Result<ResolvedUser> ResolveUserFromDb(std::string_view spec,
                                       const std::optional<std::string>& passwd,
                                       const std::optional<std::string>& group) {
  std::string_view user_part = spec;
  std::optional<std::string_view> group_part;
  if (size_t colon = spec.find(':'); colon != std::string_view::npos) {
    user_part = spec.substr(0, colon);
    group_part = spec.substr(colon + 1);
    if (group_part->find(':') != std::string_view::npos || group_part->empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid user spec \"{}\"", spec);
    }
  }
  if (user_part.empty()) {
    if (group_part) return MakeError(ErrorCode::kInvalidArgument, "invalid user spec \"{}\"", spec);
    user_part = "0";  // empty USER means root
  }

  ResolvedUser out;
  std::vector<PasswdEntry> users = passwd ? ParsePasswd(*passwd) : std::vector<PasswdEntry>{};
  STRATA_ASSIGN_OR_RETURN(std::optional<uint32_t> numeric_uid, NumericPart(user_part));
  const PasswdEntry* matched = nullptr;
  for (const PasswdEntry& e : users) {
    if (numeric_uid ? e.uid == *numeric_uid : e.name == user_part) {
      matched = &e;
      break;
    }
  }
  if (matched != nullptr) {
    out.uid = matched->uid;
    out.gid = matched->gid;
    out.home = matched->home.empty() ? "/" : matched->home;
  } else if (numeric_uid) {
    out.uid = *numeric_uid;
  } else {
    return MakeError(ErrorCode::kNotFound,
                     "unable to find user {}: no matching entries in passwd file", user_part);
  }

  std::vector<GroupEntry> groups = group ? ParseGroup(*group) : std::vector<GroupEntry>{};
  if (group_part) {
    STRATA_ASSIGN_OR_RETURN(std::optional<uint32_t> numeric_gid, NumericPart(*group_part));
    if (numeric_gid) {
      out.gid = *numeric_gid;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == *group_part; });
      if (it == groups.end()) {
        return MakeError(ErrorCode::kNotFound,
                         "unable to find group {}: no matching entries in group file", *group_part);
      }
      out.gid = it->gid;
    }
  }
  if (matched != nullptr) {
    for (const GroupEntry& g : groups) {
      if (g.gid == out.gid) continue;
      if (std::find(g.members.begin(), g.members.end(), matched->name) != g.members.end()) {
        out.supplementary_gids.push_back(g.gid);
      }
    }
    std::sort(out.supplementary_gids.begin(), out.supplementary_gids.end());
    out.supplementary_gids.erase(
        std::unique(out.supplementary_gids.begin(), out.supplementary_gids.end()),
        out.supplementary_gids.end());
  }
  return out;
}

Result<std::string> ReadFileInRoot(const std::filesystem::path& rootfs, std::string_view path) {
  STRATA_ASSIGN_OR_RETURN(UniqueFd root, OpenFile(rootfs, O_PATH | O_DIRECTORY));
  std::string rel(path);
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty path in rootfs");
  int fd = OpenInRoot(root.get(), rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {} in rootfs {}", path, rootfs.string()));
  UniqueFd file(fd);
  struct stat st;
  if (::fstat(file.get(), &st) != 0) return ErrnoError(errno, fmt::format("stat {}", path));
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kFailedPrecondition, "{} in rootfs is not a regular file", path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxUserDbFileSize) {
    return MakeError(ErrorCode::kFailedPrecondition, "{} in rootfs is too large ({} bytes)", path,
                     st.st_size);
  }
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(file.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {}", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxUserDbFileSize) {
      return MakeError(ErrorCode::kFailedPrecondition, "{} in rootfs is too large", path);
    }
  }
  return out;
}

Result<ResolvedUser> ResolveUser(const std::filesystem::path& rootfs, std::string_view spec) {
  auto read_optional = [&](std::string_view p) -> Result<std::optional<std::string>> {
    auto r = ReadFileInRoot(rootfs, p);
    if (r) return std::optional<std::string>(std::move(*r));
    if (r.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
    return Unexpected(r.error());
  };
  STRATA_ASSIGN_OR_RETURN(auto passwd, read_optional("/etc/passwd"));
  STRATA_ASSIGN_OR_RETURN(auto group, read_optional("/etc/group"));
  return ResolveUserFromDb(spec, passwd, group);
}

}  // namespace strata::builder
