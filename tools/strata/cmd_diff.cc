// strata diff IMAGE [BASE]: the files IMAGE adds (A), changes (C) and
// deletes (D) relative to BASE, or relative to its parent (IMAGE without its
// top layer) when BASE is omitted. Output as `docker diff` prints it.
//
// Computed from the layer blobs, streaming: each layer's tar is read once
// (blob -> decompressor -> sha256 of the diffID -> libarchive), its regular
// files hashed, and only the metadata of every path kept in memory (a
// flattened view: path -> type, mode, owner, mtime, size, link, content
// digest). Nothing is written to disk. Layers the two images share at the
// bottom are read once. Whiteouts delete a path and everything under it;
// an opaque whiteout hides what the lower layers held in its directory, and
// in both cases what the same layer writes survives (image-spec). An entry
// below a symlinked directory lands where the applier puts it: the link is
// followed inside the root.
// A deleted directory is listed once (`D /dir`, as docker does), its size
// being everything under it.
#include <archive.h>
#include <archive_entry.h>

#include <deque>
#include <map>
#include <memory>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/compress.h"
#include "oci/layer_reader.h"
#include "oci/whiteout.h"
#include "tools/strata/platform_flag.h"
#include "tools/strata/registry_cli.h"
#include "tools/strata/verbs.h"

namespace strata::cli {
namespace {

using nlohmann::json;

struct FileInfo {
  char type = 'f';  // f file, d dir, l symlink, c/b devices, p fifo
  uint32_t mode = 0;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 0;
  int64_t size = 0;
  std::string link;    // symlink target
  std::string digest;  // content sha256 of a regular file
  bool operator==(const FileInfo&) const = default;
};
using Tree = std::map<std::string, FileInfo>;

const char* TypeName(char t) {
  switch (t) {
    case 'd':
      return "dir";
    case 'l':
      return "symlink";
    case 'c':
      return "char-device";
    case 'b':
      return "block-device";
    case 'p':
      return "fifo";
    default:
      return "file";
  }
}

// Erases every path strictly under `dir` ("" = the root).
void EraseUnder(Tree& t, const std::string& dir) {
  if (dir.empty()) {
    t.clear();
    return;
  }
  t.erase(t.lower_bound(dir + "/"), t.lower_bound(dir + "0"));  // '0' follows '/'
}

// "./a//b/" -> "a/b"; "" for the root. InvalidArgument for "..".
Result<std::string> Clean(std::string_view raw) {
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") {
      return MakeError(ErrorCode::kInvalidArgument, "entry \"{}\" has a \"..\" component", raw);
    }
    if (!c.empty() && c != ".") {
      if (!out.empty()) out += '/';
      out += c;
    }
    i = j + 1;
  }
  return out;
}

// `path` with its directories resolved as the layer applier resolves them:
// a symlink met on the way (in this layer's entries so far, else below) is
// followed as if the root were "/", never leaving it; the final component is
// kept. A loop (more than 40 links) stops resolving.
std::string ResolveParents(const std::string& path, const Tree& upper, const Tree& lower) {
  std::deque<std::string> todo;
  size_t start = 0;
  for (size_t slash; (slash = path.find('/', start)) != std::string::npos; start = slash + 1) {
    todo.push_back(path.substr(start, slash - start));
  }
  const std::string last = path.substr(start);
  if (todo.empty()) return path;
  std::vector<std::string> resolved;
  auto join = [&] {
    std::string out;
    for (const auto& c : resolved) out += (out.empty() ? "" : "/") + c;
    return out;
  };
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    resolved.push_back(std::move(c));
    const std::string cur = join();
    auto it = upper.find(cur);
    const FileInfo* fi = it != upper.end() ? &it->second : nullptr;
    if (fi == nullptr) {
      auto lit = lower.find(cur);
      if (lit != lower.end()) fi = &lit->second;
    }
    if (fi == nullptr || fi->type != 'l' || ++hops > 40) continue;
    resolved.pop_back();
    if (!fi->link.empty() && fi->link[0] == '/') resolved.clear();
    std::vector<std::string> parts;
    size_t b = 0;
    for (size_t slash; (slash = fi->link.find('/', b)) != std::string::npos; b = slash + 1) {
      parts.push_back(fi->link.substr(b, slash - b));
    }
    parts.push_back(fi->link.substr(b));
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  std::string dir = join();
  return dir.empty() ? last : dir + "/" + last;
}

// Bytes of the uncompressed stream: hashed (diffID) and bounded.
class DiffIdSource : public oci::ByteSource {
 public:
  DiffIdSource(oci::ByteSource* in, uint64_t limit) : in_(in), limit_(limit) {}
  Result<size_t> Read(void* buf, size_t size) override {
    STRATA_ASSIGN_OR_RETURN(size_t n, in_->Read(buf, size));
    hasher_.Update(buf, n);
    if (hasher_.bytes() > limit_) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "uncompressed layer is larger than the limit of {} (--max-layer-size)",
                       oci::FormatByteSize(limit_));
    }
    return n;
  }
  oci::Digest Finish() { return hasher_.Finish(); }

 private:
  oci::ByteSource* in_;
  uint64_t limit_;
  oci::Digester hasher_;
};

struct ReadCtx {
  oci::ByteSource* src;
  char buf[1 << 16];
  std::optional<Error> error;
};

la_ssize_t ReadCallback(archive*, void* p, const void** out) {
  auto* ctx = static_cast<ReadCtx*>(p);
  auto n = ctx->src->Read(ctx->buf, sizeof(ctx->buf));
  if (!n) {
    ctx->error = n.error();
    return -1;
  }
  *out = ctx->buf;
  return static_cast<la_ssize_t>(*n);
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Applies one layer to the flattened view `tree`.
Status ApplyLayer(const oci::Store& store, const oci::Descriptor& layer, const oci::Digest& diff_id,
                  uint64_t limit, Tree& tree) {
  const std::string name = layer.digest.ToString();
  auto wrap = [&](const Error& e) {
    return std::unexpected(e.Wrap(fmt::format("layer {}", name)));
  };
  auto compression = oci::media_type::LayerCompression(layer.media_type);
  if (compression == oci::Compression::kUnknown) {
    return MakeError(ErrorCode::kUnimplemented, "layer {}: unsupported media type {}", name,
                     layer.media_type);
  }
  auto reader = store.Open(layer.digest);
  if (!reader) return wrap(reader.error());
  oci::BlobSource blob(&*reader);
  auto dec = oci::NewDecompressor(compression, &blob);
  if (!dec) return wrap(dec.error());
  DiffIdSource tar(dec->get(), limit);
  auto ctx = std::make_unique<ReadCtx>();
  ctx->src = &tar;
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  auto archive_error = [&](std::string_view what) -> std::unexpected<Error> {
    if (ctx->error) return wrap(*ctx->error);
    const char* why = archive_error_string(a.get());
    return MakeError(ErrorCode::kDataLoss, "layer {} is corrupt: {}: {}", name, what,
                     why != nullptr ? why : "unknown error");
  };
  if (archive_read_open(a.get(), ctx.get(), nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
    return archive_error("not a tar stream");
  }
  Tree upper;
  std::vector<std::string> deleted, opaque;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archive_error("malformed tar");
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return archive_error("entry without a name");
    auto path = Clean(raw);
    if (!path) return wrap(path.error());
    if (path->empty()) continue;  // the root itself
    *path = ResolveParents(*path, upper, tree);
    size_t slash = path->rfind('/');
    std::string dir = slash == std::string::npos ? "" : path->substr(0, slash);
    std::string base = slash == std::string::npos ? *path : path->substr(slash + 1);
    oci::Whiteout wh = oci::ClassifyWhiteout(base);
    if (wh.kind == oci::WhiteoutKind::kFile) {
      deleted.push_back(dir.empty() ? wh.target : dir + "/" + wh.target);
      continue;
    }
    if (wh.kind == oci::WhiteoutKind::kOpaque) {
      opaque.push_back(dir);
      continue;
    }
    if (wh.kind == oci::WhiteoutKind::kMeta) continue;
    if (wh.kind == oci::WhiteoutKind::kInvalid) {
      return MakeError(ErrorCode::kInvalidArgument, "layer {}: invalid whiteout \"{}\"", name, raw);
    }
    FileInfo info;
    info.mode = archive_entry_perm(e) & 07777;
    info.uid = archive_entry_uid(e);
    info.gid = archive_entry_gid(e);
    info.mtime = archive_entry_mtime(e);
    if (const char* hl = archive_entry_hardlink(e); hl != nullptr) {
      auto target = Clean(hl);
      if (!target) return wrap(target.error());
      *target = ResolveParents(*target, upper, tree);
      const Tree* from[] = {&upper, &tree};
      bool found = false;
      for (const Tree* t : from) {
        if (auto it = t->find(*target); it != t->end()) {
          info = it->second;
          found = true;
          break;
        }
      }
      if (!found) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "layer {}: hard link \"{}\" to \"{}\", which is not in the image", name,
                         *path, *target);
      }
      upper[*path] = info;
      continue;
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        info.type = 'd';
        break;
      case AE_IFLNK:
        info.type = 'l';
        info.link = archive_entry_symlink(e) != nullptr ? archive_entry_symlink(e) : "";
        break;
      case AE_IFCHR:
        info.type = 'c';
        break;
      case AE_IFBLK:
        info.type = 'b';
        break;
      case AE_IFIFO:
        info.type = 'p';
        break;
      default: {
        info.type = 'f';
        oci::Digester h;
        const void* buf = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        for (;;) {
          int rr = archive_read_data_block(a.get(), &buf, &size, &offset);
          if (rr == ARCHIVE_EOF) break;
          if (rr < ARCHIVE_WARN) return archive_error(fmt::format("entry \"{}\"", *path));
          h.Update(buf, size);
        }
        info.size = archive_entry_size(e);
        info.digest = h.Finish().ToString();
      }
    }
    upper[*path] = std::move(info);
  }
  // Drain what follows the end-of-archive blocks: it belongs to the diffID,
  // and the blob reader verifies the blob's digest at its end.
  char sink[1 << 16];
  for (;;) {
    auto n = tar.Read(sink, sizeof(sink));
    if (!n) return wrap(n.error());
    if (*n == 0) break;
  }
  if (diff_id.valid()) {
    oci::Digest got = tar.Finish();
    if (got != diff_id) {
      return MakeError(ErrorCode::kDataLoss,
                       "layer {}: uncompressed digest {} does not match the config's diffID {}",
                       name, got.ToString(), diff_id.ToString());
    }
  }
  // Whiteouts hide the lower layers only; then this layer's entries land.
  for (const auto& d : opaque) EraseUnder(tree, d);
  for (const auto& p : deleted) {
    tree.erase(p);
    EraseUnder(tree, p);
  }
  for (auto& [p, info] : upper) {
    if (info.type != 'd') EraseUnder(tree, p);  // a non-directory replaces a tree
    tree[p] = std::move(info);
  }
  return OkStatus();
}

Status ApplyLayers(const oci::Store& store, const oci::Image& img, size_t from, size_t to,
                   uint64_t limit, Tree& tree) {
  for (size_t i = from; i < to; ++i) {
    oci::Digest diff_id = i < img.config.diff_ids.size() ? img.config.diff_ids[i] : oci::Digest();
    STRATA_RETURN_IF_ERROR(ApplyLayer(store, img.manifest.layers[i], diff_id, limit, tree));
  }
  return OkStatus();
}

struct Change {
  char kind;
  std::string path;
  const FileInfo* info;      // the new entry (A, C) or the old one (D)
  const FileInfo* old_info;  // C only
  int64_t size;              // A/C: the new entry's size; D: bytes under it
};

std::vector<Change> Compare(const Tree& base, const Tree& image) {
  std::vector<Change> out;
  for (const auto& [p, info] : image) {
    auto it = base.find(p);
    if (it == base.end()) {
      out.push_back({'A', p, &info, nullptr, info.size});
    } else if (!(it->second == info)) {
      out.push_back({'C', p, &info, &it->second, info.size});
    }
  }
  for (const auto& [p, info] : base) {
    if (image.count(p)) continue;
    // A path under a deleted directory is part of that directory's D line.
    bool parent_deleted = false;
    for (size_t s = p.rfind('/'); s != std::string::npos; s = p.rfind('/', s - 1)) {
      std::string parent = p.substr(0, s);
      if (base.count(parent) && !image.count(parent)) {
        parent_deleted = true;
        break;
      }
      if (s == 0) break;
    }
    if (parent_deleted) continue;
    int64_t bytes = info.size;
    if (info.type == 'd') {
      for (auto c = base.lower_bound(p + "/"), end = base.lower_bound(p + "0"); c != end; ++c) {
        bytes += c->second.size;
      }
    }
    out.push_back({'D', p, &info, nullptr, bytes});
  }
  std::sort(out.begin(), out.end(),
            [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

struct DiffFlags {
  std::string image;
  std::string base;
  bool json = false;
  bool size = false;
  std::string platform;
};

}  // namespace

Verb DiffVerb() {
  return {"diff", "Show files added (A), changed (C) and deleted (D) by an image",
          [](CLI::App& app) -> Action {
            auto f = std::make_shared<DiffFlags>();
            app.add_option("IMAGE", f->image, "Image reference")->required();
            app.add_option("BASE", f->base,
                           "Image to compare with (default: IMAGE without its top layer)");
            app.add_flag("--json", f->json, "Print the changes as one JSON object");
            app.add_flag("-s,--size", f->size, "Show each change's size and a summary");
            app.add_option("--platform", f->platform,
                           "Platform of an index to compare (os/arch[/variant])");
            return [f](Context& ctx) -> int {
              auto platform = ParsePlatformFlag(f->platform);
              if (!platform) return Fail(platform.error());
              auto limit = ctx.MaxLayerBytes();
              if (!limit) return Fail(limit.error());
              auto store = ctx.OpenStore();
              if (!store) return Fail(store.error());
              auto load = [&](const std::string& ref) -> Result<oci::Image> {
                STRATA_RETURN_IF_ERROR(FetchLazyLayers(ctx, **store, ref, *platform));
                auto img = oci::LoadOneImage(**store, ref, *platform, /*layers=*/true);
                if (!img) return std::unexpected(img.error().Wrap(fmt::format("diff {}", ref)));
                if (img->manifest.layers.size() != img->config.diff_ids.size()) {
                  return MakeError(ErrorCode::kInvalidArgument,
                                   "diff {}: the manifest lists {} layers, the config {} diffIDs",
                                   ref, img->manifest.layers.size(), img->config.diff_ids.size());
                }
                return img;
              };
              auto image = load(f->image);
              if (!image) return Fail(image.error());
              std::optional<oci::Image> base;
              size_t base_layers = 0;
              if (!f->base.empty()) {
                auto b = load(f->base);
                if (!b) return Fail(b.error());
                base = std::move(*b);
                base_layers = base->manifest.layers.size();
              } else {
                if (image->manifest.layers.empty()) {
                  return Fail(Error(ErrorCode::kInvalidArgument,
                                    fmt::format("diff {}: the image has no layers", f->image)));
                }
                base_layers = image->manifest.layers.size() - 1;
              }
              // Layers shared at the bottom are read once.
              size_t shared = 0;
              const auto& ids = image->config.diff_ids;
              const auto& bids = base ? base->config.diff_ids : image->config.diff_ids;
              while (shared < ids.size() && shared < base_layers && ids[shared] == bids[shared]) {
                ++shared;
              }
              Tree common;
              if (auto s = ApplyLayers(**store, *image, 0, shared, *limit, common); !s) {
                return Fail(s.error().Wrap(fmt::format("diff {}", f->image)));
              }
              Tree old_tree = common;
              Tree new_tree = std::move(common);
              if (auto s = ApplyLayers(**store, base ? *base : *image, shared, base_layers, *limit,
                                       old_tree);
                  !s) {
                return Fail(s.error().Wrap(fmt::format("diff {}", base ? f->base : f->image)));
              }
              if (auto s = ApplyLayers(**store, *image, shared, image->manifest.layers.size(),
                                       *limit, new_tree);
                  !s) {
                return Fail(s.error().Wrap(fmt::format("diff {}", f->image)));
              }
              auto changes = Compare(old_tree, new_tree);
              int64_t counts[3] = {0, 0, 0}, bytes[3] = {0, 0, 0};
              for (const auto& c : changes) {
                int k = c.kind == 'A' ? 0 : c.kind == 'C' ? 1 : 2;
                ++counts[k];
                if (c.info->type == 'f' || c.kind == 'D') bytes[k] += c.size;
              }
              if (f->json) {
                json out;
                out["image"] = f->image;
                out["image_digest"] = image->descriptor.digest.ToString();
                out["base"] = base ? json(f->base) : json(nullptr);
                if (base) out["base_digest"] = base->descriptor.digest.ToString();
                out["base_layers"] = base_layers;
                json list = json::array();
                for (const auto& c : changes) {
                  json j;
                  j["kind"] = std::string(1, c.kind);
                  j["path"] = "/" + c.path;
                  j["type"] = TypeName(c.info->type);
                  j["size"] = c.size;
                  if (c.old_info) {
                    j["old_size"] = c.old_info->size;
                    if (c.old_info->type != c.info->type)
                      j["old_type"] = TypeName(c.old_info->type);
                  }
                  if (c.info->type == 'l') j["link"] = c.info->link;
                  list.push_back(std::move(j));
                }
                out["changes"] = std::move(list);
                out["summary"] = {{"added", counts[0]},        {"changed", counts[1]},
                                  {"deleted", counts[2]},      {"added_bytes", bytes[0]},
                                  {"changed_bytes", bytes[1]}, {"deleted_bytes", bytes[2]}};
                fmt::print("{}\n", out.dump(2));
                return kExitOk;
              }
              for (const auto& c : changes) {
                if (f->size) {
                  fmt::print("{} {:>9} /{}\n", c.kind, HumanSize(c.size), c.path);
                } else {
                  fmt::print("{} /{}\n", c.kind, c.path);
                }
              }
              if (f->size) {
                fmt::print("{} added ({}), {} changed ({}), {} deleted ({})\n", counts[0],
                           HumanSize(bytes[0]), counts[1], HumanSize(bytes[1]), counts[2],
                           HumanSize(bytes[2]));
              }
              return kExitOk;
            };
          }};
}

}  // namespace strata::cli
