// COPY and ADD: sources selected (context after .dockerignore, a stage, an
// image, URLs, heredocs, local archives to unpack), keyed by content, then
// staged into a new directory (staging.h) that becomes the layer.
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <functional>

#include <fmt/format.h>

#include "builder/engine/add_archive.h"
#include "builder/engine/build.h"
#include "builder/engine/git_source.h"
#include "builder/engine/image_path.h"
#include "builder/engine/staging.h"
#include "builder/engine/url_source.h"
#include "builder/runtime/user_db.h"
#include "oci/layer_reader.h"
#include "oci/snapshots.h"
#include "oci/util/file_util.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

bool HasGlob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

}  // namespace

Status Build::DoCopy(const Instruction& ins, const CopyCommand& copy, StageState& st,
                     const std::string& label) {
  const char* verb = copy.add ? "ADD" : "COPY";
  int id = ++step_;
  progress_.StepStart(id, label);
  auto start = std::chrono::steady_clock::now();
  // Source root: the context, or the file system of a stage or an image
  // (resolved as FROM resolves it).
  fs::path src_root = context_;
  std::unique_ptr<Mounted> from_view;
  std::string from_key;
  const DockerIgnore* ignore = &ignore_;
  if (!copy.from.empty()) {
    ignore = nullptr;
    auto src = ResolveSource(copy.from, fmt::format("{} --from={}", verb, copy.from));
    if (!src) return Fail(ins, src.error());
    from_key = src->cache_key;
    auto v = ViewOf(src->state);
    if (!v) return Fail(ins, v.error());
    from_view = std::move(*v);
    src_root = from_view->root();
  }

  // Resolve the destination.
  std::string workdir = st.config.config.working_dir.empty() ? "/" : st.config.config.working_dir;
  std::string dest = copy.dest;
  bool dest_dir = dest.ends_with("/") || dest.ends_with("/.") || dest == ".";
  if (dest.empty() || dest[0] != '/') dest = workdir + "/" + dest;
  dest = CleanAbs(dest);

  // Select sources.
  struct Selected {
    fs::path path;
    std::string rel;  // relative to the source root
    struct stat st;
    std::string keep;  // what --parents keeps: rel, or what follows a "/./" pivot
  };
  // COPY --parents a/./b/c: the part before the "/./" pivot is dropped
  // (BuildKit); without a pivot every parent is kept.
  auto parents_keep = [](std::string_view raw, const std::string& rel) {
    std::string_view r = raw;
    while (r.starts_with("./")) r.remove_prefix(2);
    size_t pivot = r.find("/./");
    if (pivot == std::string_view::npos) return rel;
    std::string prefix = CleanPath(r.substr(0, pivot));
    while (prefix.starts_with("/")) prefix.erase(0, 1);
    if (prefix == "." || prefix.empty()) return rel;
    if (rel == prefix) return std::string();
    if (rel.starts_with(prefix + "/")) return rel.substr(prefix.size() + 1);
    return rel;
  };
  std::vector<Selected> selected;
  std::optional<DockerIgnore> excludes;
  if (!copy.excludes.empty()) {
    std::string text;
    for (const auto& e : copy.excludes) text += e + "\n";
    auto ex = DockerIgnore::Parse(text, "--exclude");
    if (!ex) return Fail(ins, ex.error());
    excludes = std::move(*ex);
  }
  // .dockerignore paths are relative to the context; --exclude patterns to
  // the copy source (the context for wildcard sources, the directory for a
  // directory source), as BuildKit applies them.
  auto ignored = [&](const std::string& context_rel) {
    return ignore && ignore->Matches(context_rel);
  };
  auto excluded = [&](const std::string& context_rel) {
    return ignored(context_rel) || (excludes && excludes->Matches(context_rel));
  };
  std::function<void(const fs::path&, const std::string&, std::vector<std::string>&)> walk =
      [&](const fs::path& dir, const std::string& rel, std::vector<std::string>& out) {
        for (const auto& n : SortedNames(dir)) {
          std::string r = rel.empty() ? n : rel + "/" + n;
          out.push_back(r);
          struct stat s;
          if (::lstat((dir / n).c_str(), &s) == 0 && S_ISDIR(s.st_mode)) walk(dir / n, r, out);
        }
      };
  bool multi = copy.sources.size() + copy.source_contents.size() > 1;
  std::vector<std::string> urls;  // ADD sources fetched below
  // ADD <git source> (git_source.h): the ref resolved to a commit through
  // the injected GitClient, that commit's tree checked out into a scratch
  // dir and copied as a directory; the commit (not the files) keys the step,
  // so an unchanged ref hits the cache and a moved branch misses.
  std::optional<ScopedTempDir> git_tree;
  std::function<Status(Selected&)> git_checkout;  // fills the one Selected
  const bool git = copy.add && std::any_of(copy.sources.begin(), copy.sources.end(),
                                           [](const std::string& s) { return IsGitSource(s); });
  if (git) {
    const std::string& raw = copy.sources.front();
    if (copy.sources.size() != 1 || !copy.source_contents.empty()) {
      return Fail(ins, Error(ErrorCode::kInvalidArgument,
                             "ADD: a git source must be the only source of its ADD"));
    }
    auto parsed = ParseGitRef(raw);
    if (!parsed) return Fail(ins, parsed.error());
    const GitRef& g = **parsed;
    const std::string shown = RedactUrl(g.remote);
    if (opts_.git == nullptr) {
      return Fail(ins, Error(ErrorCode::kUnimplemented,
                             fmt::format("ADD {}: no git client configured", shown)));
    }
    auto commit = opts_.git->Resolve(g);
    if (!commit) return Fail(ins, commit.error().Wrap(fmt::format("ADD {}", shown)));
    progress_.StepOutput(
        id, OutputStream::kStderr,
        fmt::format("git {}#{} is commit {}", shown, g.ref.empty() ? "HEAD" : g.ref, *commit));
    if (auto s = Resolved(GitInput(g, *commit)); !s) return Fail(ins, s.error());
    if (!copy.checksum.empty()) {
      // --checksum=<commit>: the resolved commit, or a prefix of it (7+).
      std::string want = copy.checksum;
      for (auto& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (want.size() < 7 || !commit->starts_with(want)) {
        return Fail(ins, Error(ErrorCode::kFailedPrecondition,
                               fmt::format("ADD {}: checksum mismatch: expected commit {}, the "
                                           "ref resolved to {}",
                                           shown, copy.checksum, *commit)));
      }
    }
    // The tree is checked out only when the step misses the cache (below):
    // the commit decides its content and (normalized) metadata.
    auto tree = ScopedTempDir::Create(store_.IngestDir(), "git-");
    if (!tree) return Fail(ins, tree.error());
    git_tree = std::move(*tree);
    const fs::path checkout = git_tree->path() / "tree";
    STRATA_RETURN_IF_ERROR(MakeDirs(checkout));
    git_checkout = [this, &ins, g, shown, commit = *commit, checkout,
                    keep = copy.keep_git_dir](Selected& s) -> Status {
      if (auto done = opts_.git->Checkout(g, commit, checkout, keep); !done) {
        return Fail(ins, done.error().Wrap(fmt::format("ADD {}", shown)));
      }
      auto sub = ResolveInRoot(checkout, g.subdir.empty() ? "." : g.subdir, true);
      if (!sub) return Fail(ins, sub.error());
      s.path = *sub;
      if (::lstat(s.path.c_str(), &s.st) != 0 || !S_ISDIR(s.st.st_mode)) {
        return Fail(
            ins, Error(ErrorCode::kNotFound, fmt::format("ADD {}: {} is no directory of commit {}",
                                                         shown, g.subdir, commit)));
      }
      return OkStatus();
    };
    Selected s{checkout, "", {}, ""};
    s.st.st_mode = S_IFDIR | 0755;
    src_root = checkout;
    ignore = nullptr;
    from_key = fmt::format("git:{}#{}:{}:{}", shown, *commit, g.subdir,
                           copy.keep_git_dir ? "keep-git-dir" : "");
    selected.push_back(std::move(s));
  }
  for (const auto& raw_src : copy.sources) {
    if (git) break;
    if (copy.add && (raw_src.starts_with("http://") || raw_src.starts_with("https://"))) {
      urls.push_back(raw_src);
      continue;
    }
    std::string rel = CleanPath(raw_src);
    while (rel.starts_with("/")) rel = rel.substr(1);
    if (rel == ".." || rel.starts_with("../")) {
      return Fail(ins,
                  Error(ErrorCode::kInvalidArgument,
                        fmt::format("{} {}: source is outside the build context", verb, raw_src)));
    }
    if (rel == ".") rel = "";
    if (HasGlob(rel)) {
      multi = true;
      std::vector<std::string> all;
      walk(src_root, "", all);
      for (const auto& r : all) {
        if (::fnmatch(rel.c_str(), r.c_str(), FNM_PATHNAME) != 0 || excluded(r)) continue;
        Selected s{src_root / r, r, {}, parents_keep(raw_src, r)};
        if (::lstat(s.path.c_str(), &s.st) != 0) continue;
        selected.push_back(std::move(s));
      }
      continue;
    }
    auto resolved = ResolveInRoot(src_root, rel, false);
    if (!resolved) return Fail(ins, resolved.error());
    Selected s{*resolved, rel, {}, parents_keep(raw_src, rel)};
    if ((!rel.empty() && ignored(rel)) || ::lstat(s.path.c_str(), &s.st) != 0) {
      return Fail(ins, Error(ErrorCode::kNotFound,
                             fmt::format("{} failed: file not found in build context or excluded "
                                         "by .dockerignore: stat {}: file does not exist",
                                         verb, raw_src)));
    }
    selected.push_back(std::move(s));
  }
  if (copy.keep_git_dir && !git) {
    return Fail(ins, Error(ErrorCode::kInvalidArgument, "ADD --keep-git-dir needs a git source"));
  }
  if (!git && !copy.checksum.empty() && (urls.size() != 1 || !selected.empty())) {
    return Fail(ins,
                Error(ErrorCode::kInvalidArgument, "ADD --checksum needs exactly one URL source"));
  }
  // ADD <url>: downloaded (through the injected fetcher) into a temp dir,
  // --checksum verified, then a 0600 file named after the URL path.
  std::optional<ScopedTempDir> downloads;
  std::vector<Downloaded> fetched;
  if (!urls.empty()) {
    auto dir = ScopedTempDir::Create(store_.IngestDir(), "add-");
    if (!dir) return Fail(ins, dir.error());
    downloads = std::move(*dir);
    int64_t now = opts_.source_date_epoch ? *opts_.source_date_epoch : clock_.UnixSeconds();
    auto got = FetchUrls(urls, opts_.fetcher, downloads->path(), copy.checksum, now);
    if (!got) return Fail(ins, got.error());
    fetched = std::move(*got);
    for (size_t i = 0; i < fetched.size() && i < urls.size(); ++i) {
      if (auto d = oci::Digest::Parse(fetched[i].digest)) {
        if (auto s = Resolved({ResolvedInput::Kind::kUrl, urls[i], *d, ""}); !s) {
          return Fail(ins, s.error());
        }
      }
    }
  }
  multi = multi || (urls.size() + selected.size() > 1);
  if (selected.empty() && copy.source_contents.empty() && fetched.empty()) {
    return Fail(ins, Error(ErrorCode::kNotFound,
                           fmt::format("{} failed: no source files were specified", verb)));
  }
  // If the destination exists as a directory in the image, copy into it.
  std::unique_ptr<Mounted> target_view;
  auto target_root = [&]() -> Result<fs::path> {
    if (!target_view) {
      STRATA_ASSIGN_OR_RETURN(auto v, ViewOf(st));
      target_view = std::move(v);
    }
    return target_view->root();
  };
  if (!dest_dir && !multi && !copy.link &&
      !(selected.size() == 1 && S_ISDIR(selected[0].st.st_mode))) {
    auto root = target_root();
    if (!root) return Fail(ins, root.error());
    auto r = ResolveInRoot(*root, dest, true);
    if (r && IsDir(*r)) dest_dir = true;
  }
  if (multi && !dest_dir) {
    return Fail(ins, Error(ErrorCode::kInvalidArgument,
                           fmt::format("When using {} with more than one source file, the "
                                       "destination must be a directory and end with a /",
                                       verb)));
  }
  // Docker resolves the destination's directories through the image's own
  // symlinks, inside the image: `COPY x /bin/` on a usrmerged image lands in
  // /usr/bin, and a link an earlier layer planted can only point inside the
  // image. The final name is followed only when it is the destination dir.
  if (dest != "/" && !st.layers.empty() && !copy.link) {
    auto root = target_root();
    if (!root) return Fail(ins, root.error());
    std::string dir = dest_dir ? dest : fs::path(dest).parent_path().string();
    auto r = ResolveInRoot(*root, dir, true);
    if (!r) return Fail(ins, r.error().Wrap(fmt::format("{} destination {}", verb, dest)));
    std::string resolved = CleanAbs("/" + r->lexically_relative(*root).string());
    dest = dest_dir ? resolved : CleanAbs(resolved + "/" + fs::path(dest).filename().string());
  }
  // Owner.
  std::optional<uint32_t> uid, gid;
  if (!copy.chown.empty()) {
    std::string user = copy.chown, group;
    if (auto c = user.find(':'); c != std::string::npos) {
      group = user.substr(c + 1);
      user = user.substr(0, c);
    }
    if (IsNumeric(user) && (group.empty() || IsNumeric(group))) {
      auto id = [](std::string_view v) -> std::optional<uint32_t> {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size() || n > 2147483647) return std::nullopt;
        return static_cast<uint32_t>(n);
      };
      uid = id(user);
      gid = group.empty() ? uid : id(group);
      if (!uid || !gid) {
        return Fail(ins, Error(ErrorCode::kInvalidArgument,
                               fmt::format("{} --chown={}: uids and gids must be in range "
                                           "0-2147483647",
                                           verb, copy.chown)));
      }
    } else {
      auto root = target_root();
      if (!root) return Fail(ins, root.error());
      auto ru = ResolveUser(*root, copy.chown);
      if (!ru) return Fail(ins, ru.error().Wrap(fmt::format("{} --chown={}", verb, copy.chown)));
      uid = ru->uid;
      gid = ru->gid;  // the named group, or the user's primary group
    }
  }
  // Expand directories into entries and hash them for the cache key.
  std::vector<CopyEntry> entries;
  std::vector<fs::path> tar_sources;  // ADD of a local archive: extracted
  // A git source's entries come after the cache lookup (its key is the
  // commit's), the others' before (their content is the key).
  auto expand = [&]() -> Status {
    for (const auto& s : selected) {
      std::string base = s.rel.empty() ? "" : fs::path(s.rel).filename().string();
      if (S_ISDIR(s.st.st_mode)) {
        std::string dbase = copy.parents && !s.keep.empty() ? dest + "/" + s.keep : dest;
        entries.push_back({CleanAbs(dbase), s.path, s.st, "", false, ""});
        std::vector<std::string> children;
        walk(s.path, "", children);
        for (const auto& c : children) {
          std::string crel = s.rel.empty() ? c : s.rel + "/" + c;
          if (ignored(crel) || (excludes && excludes->Matches(c))) continue;
          CopyEntry e{CleanAbs(dbase + "/" + c), s.path / c, {}, "", false, ""};
          if (::lstat(e.src.c_str(), &e.st) != 0) continue;
          entries.push_back(std::move(e));
        }
        continue;
      }
      if (copy.add && copy.unpack.value_or(true) && S_ISREG(s.st.st_mode)) {
        auto is_tar = IsTarArchive(s.path);
        if (!is_tar) return Fail(ins, is_tar.error());
        if (*is_tar) {
          tar_sources.push_back(s.path);
          entries.push_back({"<archive>" + s.rel, s.path, s.st, "", false, ""});
          continue;
        }
      }
      std::string target = dest_dir ? dest + "/" + (copy.parents ? s.keep : base) : dest;
      entries.push_back({CleanAbs(target), s.path, s.st, "", false, ""});
    }
    for (const auto& dl : fetched) {
      if (copy.unpack.value_or(false)) {
        // ADD --unpack=true <url>: a downloaded archive is extracted.
        auto is_tar = IsTarArchive(dl.file);
        if (!is_tar) return Fail(ins, is_tar.error());
        if (*is_tar) {
          tar_sources.push_back(dl.file);
          entries.push_back({"<archive>" + dl.name, dl.file, dl.st, "", false, dl.digest});
          continue;
        }
      }
      entries.push_back(
          {CleanAbs(dest_dir ? dest + "/" + dl.name : dest), dl.file, dl.st, "", false, dl.digest});
    }
    for (const auto& h : copy.source_contents) {
      CopyEntry e;
      e.dest = CleanAbs(dest_dir ? dest + "/" + h.name : dest);
      e.is_heredoc = true;
      e.content = h.content;
      entries.push_back(std::move(e));
    }
    return OkStatus();
  };
  if (!git) STRATA_RETURN_IF_ERROR(expand());
  auto hash_start = std::chrono::steady_clock::now();
  CacheKey key(verb);
  // COPY --link: the layer does not depend on what it lands on, so its key
  // leaves the parent out and a changed base reuses it (BuildKit's rebase);
  // the stage's chain key still follows the parent (see below).
  key.Add(copy.link ? std::string("link") : st.key.ToString())
      .Add(ins.original)
      .Add(dest)
      .Add(copy.chown)
      .Add(copy.chmod);
  key.Add(copy.unpack ? (*copy.unpack ? "unpack" : "no-unpack") : "");
  key.Add(from_key);
  for (const auto& e : entries) {
    key.Add(e.dest);
    if (e.is_heredoc) {
      key.Add("heredoc").Add(e.content);
      continue;
    }
    key.Add(fmt::format("{:o}:{}:{}:{}", e.st.st_mode, e.st.st_uid, e.st.st_gid,
                        S_ISREG(e.st.st_mode) ? e.st.st_size : 0));
    if (!from_key.empty()) continue;  // content follows from the source's key
    if (S_ISREG(e.st.st_mode)) {
      Result<std::string> d = e.digest.empty() ? hasher_->Digest(e.src, e.st) : e.digest;
      if (!d) return Fail(ins, d.error());
      key.Add(*d);
    } else if (S_ISLNK(e.st.st_mode)) {
      std::error_code ec;
      key.Add(fs::read_symlink(e.src, ec).string());
    }
  }
  oci::Digest k = key.Finish();
  {
    // The context "transfer": how much this step had to check (memoized
    // digests make an unchanged context cheap; this line shows it).
    int64_t files = 0, bytes = 0;
    for (const auto& e : entries) {
      if (!e.is_heredoc && S_ISREG(e.st.st_mode)) {
        ++files;
        bytes += e.st.st_size;
      }
    }
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - hash_start).count();
    if (files > 0) {
      double mb = static_cast<double>(bytes) / 1e6;
      progress_.StepOutput(id, OutputStream::kStderr,
                           fmt::format("{}: {} files, {:.1f} MB checked in {:.2f}s ({:.0f} MB/s)",
                                       from_key.empty() ? "context" : "source", files, mb, secs,
                                       secs > 0 ? mb / secs : 0.0));
    }
  }
  std::string created_by = CreatedBy(ins, {}, {});
  const oci::Digest parent_key = st.key;
  auto chain_link = [&] {
    if (copy.link) st.key = CacheKey("LINK").Add(parent_key.ToString()).Add(k.ToString()).Finish();
  };
  // A --link layer's key does not depend on the steps before it, so it may
  // be reused even after one of them missed.
  const bool was_broken = st.cache_broken;
  if (copy.link) st.cache_broken = false;
  STRATA_ASSIGN_OR_RETURN(bool reused, ReuseCached(st, k, created_by, id));
  if (reused) {
    st.cache_broken = was_broken;
    chain_link();
    return OkStatus();
  }
  if (git) {
    STRATA_RETURN_IF_ERROR(git_checkout(selected.front()));
    STRATA_RETURN_IF_ERROR(expand());
  }
  STRATA_ASSIGN_OR_RETURN(auto staging, oci::MakeSnapshotScratchDir(store_, ".copy-"));
  fs::path fsroot = staging.path() / "fs";
  STRATA_RETURN_IF_ERROR(MakeDirs(fsroot));
  auto root = RootDir::Open(fsroot);
  if (!root) return Fail(ins, root.error());
  std::vector<DirTime> dir_times;
  {
    // The destination's directories, as the image has them.
    fs::path image_root;
    if (target_view && !copy.link) image_root = target_view->root();
    std::string dest_parent = dest_dir ? dest : fs::path(dest).parent_path().string();
    auto made = MakeDirsLikeImage(*root, image_root, dest_parent, uid.value_or(0), gid.value_or(0),
                                  dir_times);
    if (!made) return Fail(ins, made.error().Wrap(fmt::format("{} {}", verb, dest)));
    if (copy.parents) {
      // --parents makes the sources' parent directories below the
      // destination: those the image has keep its metadata too.
      if (!target_view && !copy.link && !st.layers.empty()) {
        auto r = target_root();
        if (!r) return Fail(ins, r.error());
      }
      if (target_view && !copy.link) image_root = target_view->root();
      std::string last;
      for (const auto& e : entries) {
        if (e.dest.starts_with("<archive>")) continue;
        std::string parent = fs::path(e.dest).parent_path().string();
        if (parent == last) continue;
        last = parent;
        auto p = MakeDirsLikeImage(*root, image_root, parent, uid.value_or(0), gid.value_or(0),
                                   dir_times);
        if (!p) return Fail(ins, p.error().Wrap(fmt::format("{} {}", verb, e.dest)));
      }
    }
  }
  for (const auto& e : entries) {
    if (e.dest.starts_with("<archive>")) continue;
    std::optional<mode_t> mode;
    if (!copy.chmod.empty()) {
      auto m = ApplyChmod(copy.chmod, e.is_heredoc ? 0644 : e.st.st_mode, S_ISDIR(e.st.st_mode));
      if (!m) return Fail(ins, m.error());
      mode = *m;
    }
    auto s = Materialize(*root, e, uid, gid, mode, dir_times);
    if (!s) return Fail(ins, s.error().Wrap(fmt::format("{} {}", verb, e.dest)));
  }
  for (const auto& archive : tar_sources) {
    // The destination is made inside the root, then handed to the applier
    // by its canonical path (no links left in it; the applier resolves every
    // entry inside it again).
    auto dir = root->MakeDirs(dest);
    if (!dir) return Fail(ins, dir.error().Wrap(fmt::format("ADD {}", dest)));
    std::error_code ec;
    fs::path target = fs::read_symlink(fmt::format("/proc/self/fd/{}", dir->get()), ec);
    if (ec || !target.string().starts_with(fsroot.string())) {
      return Fail(ins, Error(ErrorCode::kInternal,
                             fmt::format("ADD {}: destination left the staging root", dest)));
    }
    auto src = OpenDecompressed(archive);
    if (!src) return Fail(ins, src.error());
    oci::ApplyOptions ao;
    ao.preserve_owners = ::geteuid() == 0;
    ao.max_uncompressed_bytes = opts_.max_layer_bytes;
    auto r =
        oci::ApplyTar(src->get(), oci::Compression::kNone, target, ao, archive.filename().string());
    if (!r) return Fail(ins, r.error().Wrap(fmt::format("ADD {}", archive.filename().string())));
  }
  FinishDirTimes(*root, dir_times);
  StepSink out(progress_, id);
  auto info = Commit(fsroot, /*overlay_upper=*/false, out);
  if (!info) return Fail(ins, info.error().Wrap("commit layer"));
  CacheRecord rec;
  rec.created_by = created_by;
  rec.layer = info->descriptor;
  rec.diff_id = info->diff_id;
  STRATA_RETURN_IF_ERROR(AddLayer(st, *info, fsroot));
  Committed(st, k, std::move(rec));
  chain_link();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress_.StepDone(id, false, secs);
  return OkStatus();
}

}  // namespace strata::builder
