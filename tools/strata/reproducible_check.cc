#include "tools/strata/reproducible_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "builder/engine/step_progress.h"
#include "oci/blob_store.h"
#include "oci/json_util.h"
#include "oci/layer_reader.h"
#include "oci/util/file_util.h"
#include "oci/util/unique_fd.h"
#include "tools/strata/registry_cli.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

class Scanner {
 public:
  Scanner(size_t max, std::map<std::string, TreeEntry>& out) : max_(max), out_(out) {}

  Status Walk(int dir_fd, const std::string& prefix, int depth) {
    if (depth > 256) return MakeError(ErrorCode::kInvalidArgument, "{}: too deep", prefix);
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return ErrnoError(errno, "dup");
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      ::close(dup);
      return ErrnoError(errno, fmt::format("list {}", prefix));
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.emplace_back(e->d_name);
      }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (out_.size() >= max_) {
        return MakeError(ErrorCode::kInvalidArgument, "more than {} entries", max_);
      }
      const std::string rel = prefix.empty() ? name : prefix + "/" + name;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError(errno, fmt::format("stat {}", rel));
      }
      TreeEntry e;
      e.mode = st.st_mode & 07777;
      e.uid = st.st_uid;
      e.gid = st.st_gid;
      e.mtime_sec = st.st_mtim.tv_sec;
      e.mtime_nsec = st.st_mtim.tv_nsec;
      UniqueFd fd;
      if (S_ISLNK(st.st_mode)) {
        e.type = 'l';
        std::string buf(4096, '\0');
        ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
        if (n < 0) return ErrnoError(errno, fmt::format("readlink {}", rel));
        e.link = buf.substr(0, static_cast<size_t>(n));
      } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        e.type = S_ISREG(st.st_mode) ? 'f' : 'd';
        int f = ::openat(dir_fd, name.c_str(),
                         O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                             (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
        if (f < 0) return ErrnoError(errno, fmt::format("open {}", rel));
        fd = UniqueFd(f);
        STRATA_RETURN_IF_ERROR(Xattrs(fd.get(), rel, e.xattrs));
        if (e.type == 'f') {
          oci::Digester h;
          std::vector<char> buf(1 << 16);
          for (;;) {
            ssize_t n = ::read(fd.get(), buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return ErrnoError(errno, fmt::format("read {}", rel));
            if (n == 0) break;
            h.Update(buf.data(), static_cast<size_t>(n));
          }
          e.content = h.Finish().ToString();
        }
      } else {
        e.type = S_ISCHR(st.st_mode)    ? 'c'
                 : S_ISBLK(st.st_mode)  ? 'b'
                 : S_ISFIFO(st.st_mode) ? 'p'
                                        : 's';
        e.rdev = st.st_rdev;
      }
      out_[rel] = e;
      if (e.type == 'd') STRATA_RETURN_IF_ERROR(Walk(fd.get(), rel, depth + 1));
    }
    return OkStatus();
  }

 private:
  static Status Xattrs(int fd, const std::string& rel, std::map<std::string, std::string>& out) {
    std::string names(65536, '\0');
    ssize_t n = ::flistxattr(fd, names.data(), names.size());
    if (n < 0) {
      if (errno == ENOTSUP) return OkStatus();
      return ErrnoError(errno, fmt::format("list xattrs of {}", rel));
    }
    for (size_t i = 0; i < static_cast<size_t>(n);) {
      std::string name(names.c_str() + i);
      i += name.size() + 1;
      std::string value(65536, '\0');
      ssize_t v = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
      if (v < 0) continue;  // gone or not readable: compared as absent
      out[name] = value.substr(0, static_cast<size_t>(v));
    }
    return OkStatus();
  }

  size_t max_;
  std::map<std::string, TreeEntry>& out_;
};

// Copies the image `digest` names (manifest, config, layers) from `from`
// into `to` and tags it `ref` there.
Status CopyImage(const Context& ctx, oci::Store& from, oci::Store& to, const std::string& ref,
                 const oci::Digest& digest) {
  const std::string what = fmt::format("copy {} ({}) into the second build's store", ref, digest);
  STRATA_RETURN_IF_ERROR(FetchLazyLayers(ctx, from, digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto top, from.Resolve(digest.ToString()));
  STRATA_ASSIGN_OR_RETURN(auto img, from.LoadImage(top));
  std::vector<oci::Descriptor> blobs = img.manifest.layers;
  blobs.push_back(img.manifest.config);
  for (const auto& b : blobs) {
    if (to.Has(b.digest)) continue;
    STRATA_ASSIGN_OR_RETURN(auto reader, from.Open(b.digest));
    oci::BlobSource src(&reader);
    auto put = oci::IngestFrom(to.blobs(), src, b.media_type, b.digest, b.size);
    if (!put) return Unexpected(put.error().Wrap(what));
  }
  STRATA_ASSIGN_OR_RETURN(auto m, to.Put(img.manifest_bytes, img.descriptor.media_type));
  STRATA_ASSIGN_OR_RETURN(auto parsed, oci::Reference::Parse(ref));
  return to.Tag(parsed, m);
}

// First differing top-level config field (history, created, ...).
std::string ConfigDifference(const std::string& a, const std::string& b) {
  auto ja = oci::ParseJson(a, "config");
  auto jb = oci::ParseJson(b, "config");
  if (!ja || !jb || !ja->is_object() || !jb->is_object()) return "config differs";
  for (auto it = ja->begin(); it != ja->end(); ++it) {
    if (!jb->contains(it.key()) || (*jb)[it.key()] != it.value()) {
      if (it.value().is_object() && jb->contains(it.key()) && (*jb)[it.key()].is_object()) {
        for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) {
          if (!(*jb)[it.key()].contains(jt.key()) || (*jb)[it.key()][jt.key()] != jt.value()) {
            return fmt::format("config field {}.{} differs", it.key(), jt.key());
          }
        }
      }
      return fmt::format("config field {} differs", it.key());
    }
  }
  for (auto it = jb->begin(); it != jb->end(); ++it) {
    if (!ja->contains(it.key())) return fmt::format("config field {} differs", it.key());
  }
  return "config bytes differ";
}

class NoProgress : public builder::ProgressSink {
 public:
  void StepStart(int, std::string_view) override {}
  void StepDone(int, bool, double) override {}
  void Warning(std::string_view) override {}
  void StepOutput(int, builder::OutputStream, std::string_view) override {}
};

}  // namespace

Result<std::map<std::string, TreeEntry>> ScanTree(const fs::path& dir, size_t max_entries) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", dir.string()));
  UniqueFd owner(fd);
  std::map<std::string, TreeEntry> out;
  Scanner s(max_entries, out);
  STRATA_RETURN_IF_ERROR(s.Walk(fd, "", 0));
  return out;
}

std::optional<std::string> FirstDifference(const std::map<std::string, TreeEntry>& a,
                                           const std::map<std::string, TreeEntry>& b) {
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      return fmt::format("/{}: only in the first build", ia->first);
    }
    if (ia == a.end() || ib->first < ia->first) {
      return fmt::format("/{}: only in the second build", ib->first);
    }
    const TreeEntry& x = ia->second;
    const TreeEntry& y = ib->second;
    const std::string p = "/" + ia->first;
    if (x.type != y.type) return fmt::format("{}: type {} vs {}", p, x.type, y.type);
    if (x.content != y.content) return fmt::format("{}: content differs", p);
    if (x.link != y.link) return fmt::format("{}: link target {} vs {}", p, x.link, y.link);
    if (x.rdev != y.rdev) return fmt::format("{}: device differs", p);
    if (x.mode != y.mode) return fmt::format("{}: mode {:04o} vs {:04o}", p, x.mode, y.mode);
    if (x.uid != y.uid || x.gid != y.gid) {
      return fmt::format("{}: owner {}:{} vs {}:{}", p, x.uid, x.gid, y.uid, y.gid);
    }
    if (x.mtime_sec != y.mtime_sec || x.mtime_nsec != y.mtime_nsec) {
      return fmt::format("{}: mtime {}.{:09d} vs {}.{:09d}", p, x.mtime_sec, x.mtime_nsec,
                         y.mtime_sec, y.mtime_nsec);
    }
    if (x.xattrs != y.xattrs) {
      for (const auto& [k, v] : x.xattrs) {
        auto it = y.xattrs.find(k);
        if (it == y.xattrs.end() || it->second != v)
          return fmt::format("{}: xattr {} differs", p, k);
      }
      for (const auto& [k, v] : y.xattrs) {
        if (!x.xattrs.count(k)) return fmt::format("{}: xattr {} differs", p, k);
      }
    }
    ++ia;
    ++ib;
  }
  return std::nullopt;
}

Result<ReproducibleReport> CheckReproducible(const Context& ctx, oci::Store& store,
                                             builder::CommandRunner& runner,
                                             const builder::BuildOptions& options,
                                             const builder::BuildResult& first) {
  STRATA_ASSIGN_OR_RETURN(auto tmp, ScopedTempDir::Create(store.IngestDir(), "repro-"));
  ReproducibleReport report;
  {
    STRATA_ASSIGN_OR_RETURN(auto second_store, oci::Store::Open(tmp.path() / "store"));
    for (const auto& in : first.inputs) {
      if (in.kind != builder::ResolvedInput::Kind::kImage) continue;
      STRATA_RETURN_IF_ERROR(CopyImage(ctx, store, *second_store, in.ref, in.digest));
    }
    builder::BuildOptions o = options;
    o.tags.clear();
    o.no_cache = true;
    o.resolver = nullptr;  // only the copied inputs
    o.metadata_resolver = nullptr;
    o.blob_fetcher = nullptr;
    o.pull_always = false;
    NoProgress quiet;
    builder::Executor exec(*second_store, runner, quiet);
    auto r2 = exec.Build(o);
    if (!r2) return Unexpected(r2.error().Wrap("second build (--check-reproducible)"));
    report.second = r2->manifest.digest;
    if (r2->manifest.digest == first.manifest.digest) {
      report.reproducible = true;
      return report;
    }
    STRATA_ASSIGN_OR_RETURN(auto a, store.LoadImage(first.manifest));
    STRATA_ASSIGN_OR_RETURN(auto b, second_store->LoadImage(r2->manifest));
    const size_t n = std::max(a.manifest.layers.size(), b.manifest.layers.size());
    for (size_t i = 0; i < n; ++i) {
      if (i >= a.manifest.layers.size() || i >= b.manifest.layers.size()) {
        report.difference = fmt::format("the builds have {} and {} layers",
                                        a.manifest.layers.size(), b.manifest.layers.size());
        return report;
      }
      if (a.manifest.layers[i].digest == b.manifest.layers[i].digest) continue;
      oci::ApplyOptions ao;
      ao.form = oci::ApplyForm::kOverlay;
      ao.allow_devices = true;
      ao.preserve_owners = ::geteuid() == 0;
      STRATA_ASSIGN_OR_RETURN(ao.max_uncompressed_bytes, ctx.MaxLayerBytes());
      const fs::path da = tmp.path() / fmt::format("a{}", i);
      const fs::path db = tmp.path() / fmt::format("b{}", i);
      STRATA_RETURN_IF_ERROR(MakeDirs(da));
      STRATA_RETURN_IF_ERROR(MakeDirs(db));
      STRATA_RETURN_IF_ERROR(
          oci::ApplyLayer(store, a.manifest.layers[i], a.config.diff_ids[i], da, ao));
      STRATA_RETURN_IF_ERROR(
          oci::ApplyLayer(*second_store, b.manifest.layers[i], b.config.diff_ids[i], db, ao));
      STRATA_ASSIGN_OR_RETURN(auto ta, ScanTree(da));
      STRATA_ASSIGN_OR_RETURN(auto tb, ScanTree(db));
      auto diff = FirstDifference(ta, tb);
      report.difference = fmt::format(
          "layer {} ({} vs {}): {}", i, a.manifest.layers[i].digest, b.manifest.layers[i].digest,
          diff ? *diff : "same files, different tar bytes (order or headers)");
      return report;
    }
    report.difference = a.config_bytes != b.config_bytes
                            ? ConfigDifference(a.config_bytes, b.config_bytes)
                            : "the manifests differ (annotations)";
  }
  return report;
}

}  // namespace strata::cli
