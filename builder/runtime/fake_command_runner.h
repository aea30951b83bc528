// FakeCommandRunner: a scripted CommandRunner for tests of the build engine.
// Records every RunSpec it receives. Each call gets a response:
//   1. the response registered with On(command) for a matching command
//      (spec.args.back(), i.e. the shell form's script or the exec form's last
//      argument, or all of args joined with ' '), every time it runs;
//   2. else the next one Push()ed (a FIFO);
//   3. else the default: exit 0, no output.
// A response prints its lines, then applies its file-system effects in order
// (Write, Remove, MakeDir, ... below, or any callback against the spec), then
// returns its error or its exit code. Effects act as the command would:
// relative paths start at spec.cwd; a path below a bind mount's destination
// goes to its source (EROFS for a read-only one), below a tmpfs destination
// nowhere; everything else into spec.rootfs, confined to it (oci/util/
// in_root.h: a symlink planted in the rootfs never leads out).
//
//   FakeCommandRunner runner;
//   runner.On("make").Write("/out/bin", "ELF", 0755).Print("built");
//   runner.On("false").Exit(1);
//
// Thread-safe (stages run in parallel); effects run outside the lock.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <filesystem>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/runtime/command_runner.h"
#include "oci/util/file_util.h"
#include "oci/util/in_root.h"

namespace strata::builder {

class FakeCommandRunner : public CommandRunner {
 public:
  using Effect = std::function<Status(const RunSpec&)>;

  struct Response {
    int exit_code = 0;
    std::vector<std::pair<OutputStream, std::string>> lines;
    std::function<Status(const RunSpec&)> effect;  // optional, runs before `effects`
    std::optional<Error> error;                    // returned instead of an exit code
    std::vector<Effect> effects;                   // run in order

    // Chainable builders.
    Response& Exit(int code) {
      exit_code = code;
      return *this;
    }
    Response& Fail(Error e) {
      error = std::move(e);
      return *this;
    }
    Response& Print(std::string line, OutputStream stream = OutputStream::kStdout) {
      lines.emplace_back(stream, std::move(line));
      return *this;
    }
    Response& Do(Effect e) {
      effects.push_back(std::move(e));
      return *this;
    }
    // Creates or truncates a regular file (parents made 0755) with `mode`.
    Response& Write(std::string path, std::string content, mode_t mode = 0644) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/true));
        if (!at) return OkStatus();
        UniqueFd fd(::openat(at->dir.get(), at->name.c_str(),
                             O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!fd) return ErrnoError(errno, "fake write " + path);
        STRATA_RETURN_IF_ERROR(WriteAll(fd.get(), content.data(), content.size()));
        if (::fchmod(fd.get(), mode) != 0) return ErrnoError(errno, "fake chmod " + path);
        return OkStatus();
      });
    }
    // rm -rf (never following a link); OK if absent.
    Response& Remove(std::string path) {
      return Do([=](const RunSpec& spec) -> Status {
        auto at = Resolve(spec, path, /*create_parents=*/false);
        if (!at && at.error().code() == ErrorCode::kNotFound) return OkStatus();
        if (!at) return Unexpected(at.error());
        if (!*at) return OkStatus();
        return RemoveTreeAt((*at)->dir.get(), (*at)->name);
      });
    }
    // mkdir -p, the last component with `mode`.
    Response& MakeDir(std::string path, mode_t mode = 0755) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/true));
        if (!at) return OkStatus();
        if (::mkdirat(at->dir.get(), at->name.c_str(), mode) != 0 && errno != EEXIST) {
          return ErrnoError(errno, "fake mkdir " + path);
        }
        return ChmodAt(*at, mode, path);
      });
    }
    Response& Chmod(std::string path, mode_t mode) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/false));
        if (!at) return OkStatus();
        return ChmodAt(*at, mode, path);
      });
    }
    // chown without following a final link (needs root for another uid).
    Response& Chown(std::string path, uid_t uid, gid_t gid) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/false));
        if (!at) return OkStatus();
        if (::fchownat(at->dir.get(), at->name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return ErrnoError(errno, "fake chown " + path);
        }
        return OkStatus();
      });
    }
    // Sets the mtime (and atime) without following a final link.
    Response& Touch(std::string path, int64_t sec, long nsec = 0) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/false));
        if (!at) return OkStatus();
        struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
        if (::utimensat(at->dir.get(), at->name.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) {
          return ErrnoError(errno, "fake touch " + path);
        }
        return OkStatus();
      });
    }
    // ln -s target path (replacing nothing: EEXIST if `path` exists).
    Response& Symlink(std::string target, std::string path) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto at, Resolve(spec, path, /*create_parents=*/true));
        if (!at) return OkStatus();
        if (::symlinkat(target.c_str(), at->dir.get(), at->name.c_str()) != 0) {
          return ErrnoError(errno, "fake symlink " + path);
        }
        return OkStatus();
      });
    }
    // ln existing path (hard link inside the same root).
    Response& Link(std::string existing, std::string path) {
      return Do([=](const RunSpec& spec) -> Status {
        STRATA_ASSIGN_OR_RETURN(auto from, Resolve(spec, existing, /*create_parents=*/false));
        STRATA_ASSIGN_OR_RETURN(auto to, Resolve(spec, path, /*create_parents=*/true));
        if (!from || !to) return OkStatus();
        if (::linkat(from->dir.get(), from->name.c_str(), to->dir.get(), to->name.c_str(), 0)) {
          return ErrnoError(errno, "fake link " + path);
        }
        return OkStatus();
      });
    }
    // Stores the file's content in `*out` as the command sees it (following
    // links inside its root), or nullopt if it cannot be read.
    Response& Read(std::string path, std::optional<std::string>* out) {
      return Do([=](const RunSpec& spec) -> Status {
        *out = ReadAs(spec, path);
        return OkStatus();
      });
    }
  };

  // Where a path the command uses is, on the host (see the top of the file).
  struct Location {
    bool discarded = false;      // in a tmpfs: nowhere that outlives the command
    bool read_only = false;      // below a read-only bind
    std::filesystem::path root;  // the rootfs or a bind source (a dir or a file)
    std::string rel;             // below `root`; "" = `root` itself
  };
  static Location Locate(const RunSpec& spec, const std::string& path) {
    std::string abs = path.starts_with("/") ? path : spec.cwd + "/" + path;
    abs = std::filesystem::path(abs).lexically_normal().string();
    auto under = [&](const std::string& dest) -> std::optional<std::string> {
      std::string d = std::filesystem::path(dest).lexically_normal().string();
      while (d.size() > 1 && d.ends_with("/")) d.pop_back();
      if (abs == d) return std::string();
      if (abs.starts_with(d == "/" ? d : d + "/")) return abs.substr(d == "/" ? 1 : d.size() + 1);
      return std::nullopt;
    };
    // The deepest mount wins, later mounts over earlier ones, as in a container.
    Location loc;
    loc.root = spec.rootfs;
    loc.rel = abs.substr(1);
    size_t best = 0;
    for (const BindMount& b : spec.binds) {
      if (auto r = under(b.destination); r && b.destination.size() >= best) {
        best = b.destination.size();
        loc = Location{false, b.read_only, b.source, *r};
      }
    }
    for (const TmpfsMount& t : spec.tmpfs) {
      if (auto r = under(t.destination); r && t.destination.size() >= best) {
        best = t.destination.size();
        loc = Location{true, false, {}, *r};
      }
    }
    return loc;
  }

  // The parent directory and name a write to `path` goes to, confined to
  // its root. nullopt: in a tmpfs (the write is discarded). EROFS below a
  // read-only bind; InvalidArgument for a mount point itself.
  static Result<std::optional<ParentAndName>> Resolve(const RunSpec& spec, const std::string& path,
                                                      bool create_parents) {
    Location loc = Locate(spec, path);
    if (loc.discarded) return std::optional<ParentAndName>();
    if (loc.read_only) return ErrnoError(EROFS, "fake write " + path);
    if (loc.rel.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "fake: {} is a mount point", path);
    }
    STRATA_ASSIGN_OR_RETURN(RootDir r, RootDir::Open(loc.root));
    STRATA_ASSIGN_OR_RETURN(ParentAndName at, r.Parent(loc.rel, create_parents));
    return std::optional<ParentAndName>(std::move(at));
  }

  // The content of `path` as the command would read it (links followed
  // inside its root), or nullopt.
  static std::optional<std::string> ReadAs(const RunSpec& spec, const std::string& path) {
    Location loc = Locate(spec, path);
    if (loc.discarded) return std::nullopt;
    UniqueFd fd;
    if (loc.rel.empty()) {
      fd.Reset(::open(loc.root.c_str(), O_RDONLY | O_CLOEXEC));  // a bound file
    } else {
      auto root = RootDir::Open(loc.root);
      if (!root) return std::nullopt;
      fd.Reset(OpenInRoot(root->fd(), loc.rel, O_RDONLY));
    }
    if (!fd) return std::nullopt;
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
    if (n < 0) return std::nullopt;
    return data;
  }

  void Push(Response r) {
    std::lock_guard lock(mu_);
    responses_.push_back(std::move(r));
  }
  void PushExit(int code, std::string stdout_line = {}) {
    Response r;
    r.exit_code = code;
    if (!stdout_line.empty()) r.lines.emplace_back(OutputStream::kStdout, std::move(stdout_line));
    Push(std::move(r));
  }
  // The response for every run of `command` (replacing an earlier one), to
  // fill in with the builders. The reference stays valid for the runner's
  // lifetime; fill it in before the build runs.
  Response& On(std::string command) {
    std::lock_guard lock(mu_);
    for (auto& [k, r] : keyed_) {
      if (k == command) {
        r = Response{};
        return r;
      }
    }
    keyed_.emplace_back(std::move(command), Response{});
    return keyed_.back().second;
  }

  Result<int> Run(const RunSpec& spec, OutputSink& sink) override {
    Response r;
    {
      std::lock_guard lock(mu_);
      calls_.push_back(spec);
      if (const Response* k = Match(spec)) {
        r = *k;
      } else if (!responses_.empty()) {
        r = std::move(responses_.front());
        responses_.pop_front();
      }
    }
    if (spec.cancel.stop_requested()) return MakeError(ErrorCode::kCancelled, "run cancelled");
    for (const auto& [stream, line] : r.lines) sink.Line(stream, line);
    if (r.effect) STRATA_RETURN_IF_ERROR(r.effect(spec));
    for (const auto& e : r.effects) STRATA_RETURN_IF_ERROR(e(spec));
    if (r.error) return Unexpected(*r.error);
    return r.exit_code;
  }

  // REQUIRES: no Run in progress.
  const std::vector<RunSpec>& calls() const { return calls_; }
  // How many recorded runs matched `command` (as On() matches).
  int Runs(const std::string& command) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const RunSpec& s : calls_) n += Matches(command, s) ? 1 : 0;
    return n;
  }
  // The last recorded run matching `command`, or null.
  const RunSpec* LastCall(const std::string& command) const {
    std::lock_guard lock(mu_);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it) {
      if (Matches(command, *it)) return &*it;
    }
    return nullptr;
  }

 private:
  static bool Matches(const std::string& command, const RunSpec& spec) {
    if (spec.args.empty()) return false;
    if (spec.args.back() == command) return true;
    std::string joined;
    for (const auto& a : spec.args) joined += (joined.empty() ? "" : " ") + a;
    return joined == command;
  }
  const Response* Match(const RunSpec& spec) const {
    for (const auto& [k, r] : keyed_) {
      if (Matches(k, spec)) return &r;
    }
    return nullptr;
  }
  static Status ChmodAt(const ParentAndName& at, mode_t mode, const std::string& path) {
    // A final link is not followed: chmod of a link is refused.
    struct stat st;
    if (::fstatat(at.dir.get(), at.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "fake chmod " + path);
    }
    if (S_ISLNK(st.st_mode)) return ErrnoError(ELOOP, "fake chmod " + path);
    if (::fchmodat(at.dir.get(), at.name.c_str(), mode, 0) != 0) {
      return ErrnoError(errno, "fake chmod " + path);
    }
    return OkStatus();
  }

  mutable std::mutex mu_;
  std::deque<Response> responses_;
  std::list<std::pair<std::string, Response>> keyed_;  // stable references
  std::vector<RunSpec> calls_;
};

}  // namespace strata::builder
