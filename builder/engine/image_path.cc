#include "builder/engine/image_path.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "builder/frontend/dockerignore.h"

namespace strata::builder {
namespace fs = std::filesystem;

// Resolves `rel` inside `root` as if `root` were "/": symlinks in any
// component are followed but can never leave the root. The final component
// is followed only when `follow_last`.
Result<fs::path> ResolveInRoot(const fs::path& root, std::string_view rel, bool follow_last) {
  std::vector<std::string> todo;
  auto push_parts = [&](std::string_view p, std::vector<std::string>& out) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      std::string_view c = p.substr(i, j - i);
      if (!c.empty() && c != ".") parts.emplace_back(c);
      i = j + 1;
    }
    out.insert(out.begin(), parts.begin(), parts.end());
  };
  push_parts(rel, todo);
  std::vector<std::string> done;
  int hops = 0;
  while (!todo.empty()) {
    std::string c = todo.front();
    todo.erase(todo.begin());
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(c);
    fs::path cur = root;
    for (const auto& d : done) cur /= d;
    if (todo.empty() && !follow_last) break;
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        for (const auto& t : todo) {
          if (t != "..") done.push_back(t);
        }
        break;
      }
      return ErrnoError(errno, fmt::format("stat {}", cur.string()));
    }
    if (S_ISLNK(st.st_mode)) {
      if (++hops > 40)
        return MakeError(ErrorCode::kInvalidArgument, "too many symlinks in {}", rel);
      char buf[4096];
      ssize_t n = ::readlink(cur.c_str(), buf, sizeof(buf) - 1);
      if (n < 0) return ErrnoError(errno, fmt::format("readlink {}", cur.string()));
      std::string target(buf, static_cast<size_t>(n));
      done.pop_back();
      if (!target.empty() && target[0] == '/') done.clear();
      push_parts(target, todo);
    }
  }
  fs::path out = root;
  for (const auto& d : done) out /= d;
  return out;
}

bool IsNumeric(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// --chmod: octal ("755") or symbolic ("u+x,g-w,o=r", "a+rX" without X).
Result<mode_t> ApplyChmod(std::string_view spec, mode_t mode, bool is_dir) {
  if (spec.empty()) return MakeError(ErrorCode::kInvalidArgument, "invalid --chmod \"\"");
  if (IsNumeric(spec)) {
    mode_t m = 0;
    for (char c : spec) {
      if (c > '7') return MakeError(ErrorCode::kInvalidArgument, "invalid --chmod {}", spec);
      m = m * 8 + static_cast<mode_t>(c - '0');
    }
    if (m > 07777) return MakeError(ErrorCode::kInvalidArgument, "invalid --chmod {}", spec);
    return m;
  }
  mode_t m = mode & 07777;
  size_t i = 0;
  while (i < spec.size()) {
    size_t j = spec.find(',', i);
    if (j == std::string_view::npos) j = spec.size();
    std::string_view clause = spec.substr(i, j - i);
    size_t k = 0;
    mode_t who = 0;
    for (; k < clause.size() && std::string_view("ugoa").find(clause[k]) != std::string_view::npos;
         ++k) {
      switch (clause[k]) {
        case 'u':
          who |= 04700;
          break;
        case 'g':
          who |= 02070;
          break;
        case 'o':
          who |= 01007;
          break;
        case 'a':
          who |= 07777;
          break;
      }
    }
    if (who == 0) who = 07777;
    if (k >= clause.size() || std::string_view("+-=").find(clause[k]) == std::string_view::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid --chmod {}", spec);
    }
    char op = clause[k++];
    mode_t bits = 0;
    for (; k < clause.size(); ++k) {
      switch (clause[k]) {
        case 'r':
          bits |= 0444;
          break;
        case 'w':
          bits |= 0222;
          break;
        case 'x':
          bits |= 0111;
          break;
        case 'X':
          if (is_dir || (mode & 0111)) bits |= 0111;
          break;
        case 's':
          bits |= 06000;
          break;
        case 't':
          bits |= 01000;
          break;
        default:
          return MakeError(ErrorCode::kInvalidArgument, "invalid --chmod {}", spec);
      }
    }
    bits &= who;
    if (op == '+')
      m |= bits;
    else if (op == '-')
      m &= ~bits;
    else
      m = (m & ~(who & 0777)) | bits;
    i = j + 1;
  }
  return m;
}

// An absolute, cleaned image path: "/a/b" (never "//a", never "..").
std::string CleanAbs(std::string_view p) {
  std::string in(1, '/');
  in.append(p);
  std::string c = CleanPath(in);
  size_t skip = c.find_first_not_of('/');
  std::string out(1, '/');
  if (skip != std::string::npos && c != "." && c != "..") out.append(c, skip);
  return out;
}

// `abs` (an image path) below `root`: never escapes to the host's "/".
fs::path Under(const fs::path& root, std::string_view abs) {
  std::string rel = CleanAbs(abs).substr(1);
  return rel.empty() ? root : root / rel;
}

}  // namespace strata::builder
