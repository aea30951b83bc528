#include "tests/builder/engine/engine_harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "builder/engine/add_archive.h"
#include "builder/frontend/build_args.h"
#include "oci/compress.h"
#include "oci/layer_reader.h"
#include "oci/layer_writer.h"
#include "oci/media_types.h"
#include "oci/whiteout.h"

namespace strata::builder::testing {
namespace fs = std::filesystem;

namespace {

// Every file a harness makes gets this mtime, so layers are reproducible.
constexpr int64_t kFixedMtime = 1700000000;

void SetFixedTime(const fs::path& p) {
  struct timespec t[2] = {{kFixedMtime, 0}, {kFixedMtime, 0}};
  ::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW);
}

Status WriteRaw(const fs::path& p, std::string_view content, mode_t mode) {
  STRATA_RETURN_IF_ERROR(MakeDirs(p.parent_path()));
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError(errno, "create " + p.string());
  STRATA_RETURN_IF_ERROR(WriteAll(fd.get(), content.data(), content.size()));
  if (::fchmod(fd.get(), mode) != 0) return ErrnoError(errno, "chmod " + p.string());
  return OkStatus();
}

// Sets fixed times bottom-up (directories after their contents).
void FixTimes(const fs::path& dir) {
  std::vector<fs::path> all;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    all.push_back(it->path());
  }
  std::sort(all.begin(), all.end(), [](const fs::path& a, const fs::path& b) {
    return a.string().size() > b.string().size();
  });
  for (const auto& p : all) SetFixedTime(p);
}

Status MakeLayerDir(const fs::path& dir, const Layer& layer) {
  STRATA_RETURN_IF_ERROR(MakeDirs(dir));
  for (const Entry& e : layer) {
    fs::path p = dir / e.path;
    STRATA_RETURN_IF_ERROR(MakeDirs(p.parent_path()));
    switch (e.kind) {
      case Entry::kFile:
        STRATA_RETURN_IF_ERROR(WriteRaw(p, e.content, e.mode));
        break;
      case Entry::kDir:
      case Entry::kOpaque:
        STRATA_RETURN_IF_ERROR(MakeDirs(p));
        if (::chmod(p.c_str(), e.mode) != 0) return ErrnoError(errno, "chmod " + p.string());
        if (e.kind == Entry::kOpaque &&
            ::setxattr(p.c_str(), std::string(oci::kOverlayOpaqueXattr).c_str(), "y", 1, 0) != 0) {
          return ErrnoError(errno, "mark opaque " + p.string());
        }
        break;
      case Entry::kSymlink:
        if (::symlink(e.content.c_str(), p.c_str()) != 0) {
          return ErrnoError(errno, "symlink " + p.string());
        }
        break;
      case Entry::kWhiteout:
        if (::mknod(p.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0) {
          return ErrnoError(errno, "whiteout " + p.string());
        }
        break;
    }
    if (e.uid || e.gid) {
      if (::lchown(p.c_str(), e.uid.value_or(0), e.gid.value_or(0)) != 0) {
        return ErrnoError(errno, "chown " + p.string());
      }
    }
  }
  FixTimes(dir);
  return OkStatus();
}

using TarEntry = EngineHarness::TarEntry;

// A tar stream's entries, in order (ustar, GNU long names, PAX path/linkpath).
Result<std::vector<TarEntry>> ReadTarEntries(oci::ByteSource* in) {
  std::vector<TarEntry> entries;
  std::string pending, pending_link;  // long names for the next entry
  auto read_exact = [&](std::string& buf, size_t n) -> Result<bool> {
    buf.resize(n);
    size_t got = 0;
    while (got < n) {
      STRATA_ASSIGN_OR_RETURN(size_t r, in->Read(buf.data() + got, n - got));
      if (r == 0) return false;
      got += r;
    }
    return true;
  };
  auto octal = [](const std::string& h, size_t off, size_t len) {
    return std::strtoull(std::string(h.data() + off, len).c_str(), nullptr, 8);
  };
  std::string hdr, body;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(bool ok, read_exact(hdr, 512));
    if (!ok || hdr == std::string(512, '\0')) break;
    std::string name(hdr.c_str(), strnlen(hdr.c_str(), 100));
    std::string prefix(hdr.c_str() + 345, strnlen(hdr.c_str() + 345, 155));
    if (hdr.compare(257, 5, "ustar") == 0 && !prefix.empty()) name = prefix + "/" + name;
    uint64_t size = octal(hdr, 124, 12);
    char type = hdr[156];
    STRATA_ASSIGN_OR_RETURN(bool ok2, read_exact(body, (size + 511) / 512 * 512));
    if (!ok2) return MakeError(ErrorCode::kDataLoss, "short tar");
    body.resize(size);
    if (type == 'x') {
      // PAX records: "LEN key=value\n"
      size_t pos = 0;
      while (pos < body.size()) {
        size_t sp = body.find(' ', pos);
        if (sp == std::string::npos) break;
        size_t len = std::strtoull(body.substr(pos, sp - pos).c_str(), nullptr, 10);
        if (len == 0) break;
        std::string rec = body.substr(sp + 1, len - (sp - pos) - 2);
        if (rec.starts_with("path=")) pending = rec.substr(5);
        if (rec.starts_with("linkpath=")) pending_link = rec.substr(9);
        pos += len;
      }
      continue;
    }
    if (type == 'L') {
      pending = std::string(body.c_str());
      continue;
    }
    if (type == 'K') {
      pending_link = std::string(body.c_str());
      continue;
    }
    if (type == 'g') continue;
    TarEntry e;
    e.name = pending.empty() ? name : pending;
    while (e.name.ends_with("/")) e.name.pop_back();
    e.type = type == '\0' ? '0' : type;
    e.mode = static_cast<mode_t>(octal(hdr, 100, 8));
    e.uid = static_cast<uint32_t>(octal(hdr, 108, 8));
    e.gid = static_cast<uint32_t>(octal(hdr, 116, 8));
    e.mtime = static_cast<int64_t>(octal(hdr, 136, 12));
    e.link = pending_link.empty() ? std::string(hdr.c_str() + 157, strnlen(hdr.c_str() + 157, 100))
                                  : pending_link;
    entries.push_back(std::move(e));
    pending.clear();
    pending_link.clear();
  }
  return entries;
}

// Appends everything written to a file.
class FileSink : public oci::ByteSink {
 public:
  explicit FileSink(int fd) : fd_(fd) {}
  Status Write(const void* data, size_t size) override { return WriteAll(fd_, data, size); }
  Status Close() override { return OkStatus(); }

 private:
  int fd_;
};

// A source of no bytes (ends a PrefixSource).
class EmptySource : public oci::ByteSource {
 public:
  Result<size_t> Read(void*, size_t) override { return size_t{0}; }
};

Result<oci::Descriptor> PutImage(oci::Store& store, const std::string& ref,
                                 const std::vector<oci::LayerInfo>& layers,
                                 oci::ImageConfig config) {
  BuildPlatform host = BuildPlatform::Host();
  if (config.os.empty()) config.os = host.os;
  if (config.architecture.empty()) {
    config.architecture = host.arch;
    config.variant = host.variant;
  }
  if (config.created.empty()) config.created = oci::FormatRfc3339(kFixedMtime);
  oci::Manifest m;
  m.media_type = std::string(oci::media_type::kImageManifest);
  config.diff_ids.clear();
  config.history.clear();
  int n = 0;
  for (const auto& info : layers) {
    m.layers.push_back(info.descriptor);
    config.diff_ids.push_back(info.diff_id);
    oci::HistoryEntry h;
    h.created = config.created;
    h.created_by = fmt::format("test layer {}", n++);
    config.history.push_back(h);
  }
  STRATA_ASSIGN_OR_RETURN(
      auto cfg, store.Put(config.Serialize(), std::string(oci::media_type::kImageConfig)));
  m.config = cfg;
  STRATA_ASSIGN_OR_RETURN(auto md,
                          store.Put(m.Serialize(), std::string(oci::media_type::kImageManifest)));
  STRATA_ASSIGN_OR_RETURN(auto r, oci::Reference::Parse(ref));
  STRATA_RETURN_IF_ERROR(store.Tag(r, md));
  return md;
}

}  // namespace

std::string RawTar(const std::vector<RawEntry>& entries) {
  std::string out;
  auto put = [](std::string& h, size_t off, const std::string& v) {
    std::copy(v.begin(), v.end(), h.begin() + static_cast<std::ptrdiff_t>(off));
  };
  for (const RawEntry& e : entries) {
    std::string h(512, '\0');
    put(h, 0, e.name);
    put(h, 100, fmt::format("{:07o}", e.mode));
    put(h, 108, "0000000");
    put(h, 116, "0000000");
    put(h, 124, fmt::format("{:011o}", e.type == '0' ? e.data.size() : 0));
    put(h, 136, fmt::format("{:011o}", kFixedMtime));
    h[156] = e.type;
    if (e.type == '2' || e.type == '1') put(h, 157, e.data);
    put(h, 257, "ustar");
    put(h, 263, "00");
    put(h, 329, fmt::format("{:07o}", e.dev_major));
    put(h, 337, fmt::format("{:07o}", e.dev_minor));
    put(h, 148, "        ");
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    put(h, 148, fmt::format("{:06o}", sum));
    h[154] = '\0';
    out += h;
    if (e.type == '0') {
      out += e.data;
      out.append((512 - e.data.size() % 512) % 512, '\0');
    }
  }
  out.append(1024, '\0');
  return out;
}

Entry File(std::string path, std::string content, mode_t mode) {
  return Entry{Entry::kFile, std::move(path), std::move(content), mode, {}, {}};
}
Entry Dir(std::string path, mode_t mode) {
  return Entry{Entry::kDir, std::move(path), "", mode, {}, {}};
}
Entry Symlink(std::string path, std::string target) {
  return Entry{Entry::kSymlink, std::move(path), std::move(target), 0777, {}, {}};
}
Entry Whiteout(std::string path) { return Entry{Entry::kWhiteout, std::move(path), "", 0, {}, {}}; }
Entry Opaque(std::string path) { return Entry{Entry::kOpaque, std::move(path), "", 0755, {}, {}}; }

bool IsRoot() { return ::geteuid() == 0; }

// --- RecordingProgress ---

RecordingProgress::Step* RecordingProgress::Find(int id) {
  for (auto& s : steps_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}
void RecordingProgress::StepStart(int id, std::string_view name) {
  steps_.push_back(Step{id, std::string(name), false, false, {}});
}
void RecordingProgress::StepDone(int id, bool cached, double) {
  if (Step* s = Find(id)) {
    s->done = true;
    s->cached = cached;
  }
}
void RecordingProgress::StepOutput(int id, OutputStream, std::string_view line) {
  if (Step* s = Find(id)) s->output.emplace_back(line);
}
void RecordingProgress::Warning(std::string_view text) { warnings_.emplace_back(text); }
std::vector<std::string> RecordingProgress::Cached(std::string_view filter) const {
  std::vector<std::string> out;
  for (const auto& s : steps_) {
    if (s.done && s.cached && s.name.find(filter) != std::string::npos) out.push_back(s.name);
  }
  return out;
}
std::vector<std::string> RecordingProgress::Ran(std::string_view filter) const {
  std::vector<std::string> out;
  for (const auto& s : steps_) {
    if (s.done && !s.cached && s.name.find(filter) != std::string::npos) out.push_back(s.name);
  }
  return out;
}

// --- EngineHarness ---

// The store fsyncs every blob, tag and snapshot; on a disk that is ~20 ms
// per build step, on a tmpfs nothing. $STRATA_TEST_TMPDIR, else /dev/shm when
// writable, else $TMPDIR.
fs::path HarnessTmpParent() {
  if (const char* t = std::getenv("STRATA_TEST_TMPDIR"); t != nullptr && *t != '\0') return t;
  if (::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  return {};
}

EngineHarness::EngineHarness() {
  auto d = ScopedTempDir::Create(HarnessTmpParent(), "strata-engine-");
  EXPECT_TRUE(d.has_value());
  if (d) dir_ = std::move(*d);
  context_ = dir_.path() / "context";
  EXPECT_TRUE(MakeDirs(context_).has_value());
  auto s = oci::Store::Open(dir_.path() / "store");
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  if (s) store_ = std::move(*s);
  options_.context_dir = context_;
  options_.tags = {"out:latest"};
}

EngineHarness::~EngineHarness() = default;

void EngineHarness::Context(const std::string& rel, std::string_view content, mode_t mode) {
  fs::path p = context_ / rel;
  auto s = WriteRaw(p, content, mode);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  SetFixedTime(p);
}

Result<oci::Descriptor> EngineHarness::MakeImage(const std::string& ref,
                                                 const std::vector<Layer>& layers,
                                                 oci::ImageConfig config) {
  std::vector<oci::LayerInfo> infos;
  for (const Layer& layer : layers) {
    STRATA_ASSIGN_OR_RETURN(auto tmp, ScopedTempDir::Create(dir_.path(), "layer-"));
    STRATA_RETURN_IF_ERROR(MakeLayerDir(tmp.path() / "fs", layer));
    oci::LayerWriterOptions lo;
    lo.tar.overlay_upper = true;
    STRATA_ASSIGN_OR_RETURN(auto info, oci::CommitLayer(*store_, tmp.path() / "fs", lo));
    infos.push_back(std::move(info));
  }
  return PutImage(*store_, ref, infos, std::move(config));
}

Result<oci::Descriptor> EngineHarness::MakeImageFromTars(const std::string& ref,
                                                         const std::vector<std::string>& tars,
                                                         oci::ImageConfig config) {
  std::vector<oci::LayerInfo> infos;
  for (const std::string& tar : tars) {
    EmptySource end;
    oci::PrefixSource src(tar, &end);
    STRATA_ASSIGN_OR_RETURN(auto info, oci::CommitTarStream(*store_, &src, {}));
    infos.push_back(std::move(info));
  }
  return PutImage(*store_, ref, infos, std::move(config));
}

Result<oci::Descriptor> EngineHarness::MakeBase(const std::string& ref) {
  oci::ImageConfig c;
  c.config.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "BASE=1"};
  c.config.cmd = std::vector<std::string>{"/bin/sh"};
  return MakeImage(
      ref,
      {{File("bin/sh", "#!shell", 0755), Dir("usr/bin"), Dir("tmp", 01777),
        File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
        File("etc/group", "root:x:0:\napp:x:1000:\n"), Dir("home/app")}},
      c);
}

Result<BuildResult> EngineHarness::Build(std::optional<std::string_view> text) {
  BuildOptions o = options_;
  if (text) o.dockerfile_text = std::string(*text);
  return Build(o.dockerfile_text ? std::string_view(*o.dockerfile_text) : std::string_view(), o);
}

Result<BuildResult> EngineHarness::Build(std::string_view text, const BuildOptions& options) {
  BuildOptions o = options;
  if (!text.empty()) o.dockerfile_text = std::string(text);
  if (o.context_dir.empty()) o.context_dir = context_;
  Executor ex(*store_, runner_, progress_, snapshotter_, clock_);
  return ex.Build(o);
}

Result<BuildResult> EngineHarness::BuildPlatforms(const std::vector<oci::Platform>& platforms,
                                                  std::optional<std::string_view> text) {
  BuildOptions o = options_;
  if (text) o.dockerfile_text = std::string(*text);
  if (o.context_dir.empty()) o.context_dir = context_;
  Executor ex(*store_, runner_, progress_, snapshotter_, clock_);
  return ex.BuildPlatforms(o, platforms);
}

Result<oci::Image> EngineHarness::Load(const std::string& ref) { return store_->LoadImage(ref); }

Result<fs::path> EngineHarness::Flatten(const std::string& ref) {
  STRATA_ASSIGN_OR_RETURN(auto img, Load(ref));
  STRATA_ASSIGN_OR_RETURN(auto dir, ScopedTempDir::Create(dir_.path(), "flat-"));
  oci::ApplyOptions ao;
  ao.form = oci::ApplyForm::kFlattened;
  ao.allow_devices = IsRoot();
  ao.preserve_owners = IsRoot();
  for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
    auto r =
        oci::ApplyLayer(*store_, img.manifest.layers[i], img.config.diff_ids[i], dir.path(), ao);
    if (!r) return Unexpected(r.error());
  }
  fs::path p = dir.path();
  flattened_.push_back(std::move(dir));
  return p;
}

std::optional<std::string> EngineHarness::ReadImageFile(const std::string& path,
                                                        const std::string& ref) {
  auto dir = Flatten(ref);
  if (!dir) {
    ADD_FAILURE() << "flatten " << ref << ": " << dir.error().message();
    return std::nullopt;
  }
  std::string rel = path;
  while (rel.starts_with("/")) rel.erase(0, 1);
  struct stat st;
  if (::lstat((*dir / rel).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  auto content = ReadFile(*dir / rel);
  if (!content) return std::nullopt;
  return *content;
}

std::string EngineHarness::Listing(const std::string& ref) {
  auto dir = Flatten(ref);
  if (!dir) return "error: " + dir.error().message();
  return DumpTree(*dir);
}

std::vector<TarEntry> EngineHarness::LayerEntries(int index, const std::string& ref) {
  auto img = Load(ref);
  if (!img) {
    ADD_FAILURE() << img.error().message();
    return {};
  }
  int n = static_cast<int>(img->manifest.layers.size());
  int i = index < 0 ? n + index : index;
  if (i < 0 || i >= n) {
    ADD_FAILURE() << "no layer " << index << " in " << ref << " (" << n << " layers)";
    return {};
  }
  auto src =
      OpenDecompressed(store_->BlobPath(img->manifest.layers[static_cast<size_t>(i)].digest));
  if (!src) {
    ADD_FAILURE() << src.error().message();
    return {};
  }
  auto entries = ReadTarEntries(src->get());
  if (!entries) {
    ADD_FAILURE() << entries.error().message();
    return {};
  }
  return *entries;
}

std::vector<std::string> EngineHarness::LayerPaths(int index, const std::string& ref) {
  std::vector<std::string> out;
  for (const auto& e : LayerEntries(index, ref)) out.push_back(e.name);
  return out;
}

std::optional<TarEntry> EngineHarness::LayerEntry(int index, const std::string& name,
                                                  const std::string& ref) {
  for (auto& e : LayerEntries(index, ref)) {
    if (e.name == name) return e;
  }
  return std::nullopt;
}

void EngineHarness::ContextTar(const std::string& rel, const Layer& layer, bool gzip) {
  auto tmp = ScopedTempDir::Create(dir_.path(), "tar-");
  ASSERT_TRUE(tmp.has_value());
  auto made = MakeLayerDir(tmp->path() / "fs", layer);
  ASSERT_TRUE(made.has_value()) << made.error().message();
  ASSERT_OK(MakeDirs((context_ / rel).parent_path()));
  UniqueFd fd(::open((context_ / rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  FileSink file(fd.get());
  oci::TarOptions to;
  to.overlay_upper = true;
  if (!gzip) {
    ASSERT_OK(oci::WriteTar(tmp->path() / "fs", to, &file));
    return;
  }
  oci::CompressOptions co;
  co.compression = oci::Compression::kGzip;
  auto z = oci::NewCompressor(co, &file);
  ASSERT_TRUE(z.has_value()) << z.error().message();
  ASSERT_OK(oci::WriteTar(tmp->path() / "fs", to, z->get()));
  ASSERT_OK((*z)->Close());
}

std::string DumpTree(const fs::path& dir) {
  std::map<std::string, std::string> lines;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::string rel = it->path().lexically_relative(dir).string();
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      lines[rel] = fmt::format("dir {:o}", perm);
    } else if (S_ISLNK(st.st_mode)) {
      lines[rel] = "link -> " + fs::read_symlink(it->path()).string();
    } else if (S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0)) {
      lines[rel] = "wh";
    } else if (S_ISREG(st.st_mode)) {
      auto content = ReadFile(it->path());
      lines[rel] = fmt::format("file {:o} {}", perm, content ? *content : "<unreadable>");
    } else {
      lines[rel] = fmt::format("other {:o}", st.st_mode);
    }
  }
  std::string out;
  for (const auto& [k, v] : lines) out += k + ": " + v + "\n";
  return out;
}

}  // namespace strata::builder::testing
