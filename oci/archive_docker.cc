// docker-archive (oci/archive.h): save, and plan a load from manifest.json.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "oci/archive_internal.h"
#include "oci/compress.h"
#include "oci/image_config.h"
#include "oci/json_util.h"
#include "oci/manifest.h"
#include "oci/media_types.h"

namespace strata::oci {

using namespace archive_internal;
using nlohmann::json;

namespace {

std::string RepoOf(const Reference& ref) {
  std::string f = ref.WithoutDigest().Familiar();
  if (!ref.tag().empty() && f.ends_with(":" + ref.tag())) f.resize(f.size() - ref.tag().size() - 1);
  return f;
}

// Writes one layer uncompressed. Pass 1 decompresses to learn the size the
// tar header needs and to check the diff_id before a byte is written; pass 2
// writes, hashing again because the header's size is a promise.
Status WriteDockerLayer(const Store& store, TarWriter& tar, const Descriptor& layer,
                        const Digest& diff_id, const std::string& name) {
  using Sink = std::function<Status(const void*, size_t)>;
  auto pass = [&](const Sink& sink) -> Result<std::pair<Digest, int64_t>> {
    STRATA_ASSIGN_OR_RETURN(auto reader, store.Open(layer.digest));
    STRATA_ASSIGN_OR_RETURN(auto tar_stream, NewAutoDecompressor(&reader));
    Digester hasher;
    std::vector<char> buf(kChunk);
    for (;;) {
      auto n = tar_stream->Read(buf.data(), buf.size());
      if (!n) return Unexpected(n.error().Wrap(fmt::format("layer {}", layer.digest)));
      if (*n == 0) break;
      hasher.Update(buf.data(), *n);
      if (sink) STRATA_RETURN_IF_ERROR(sink(buf.data(), *n));
    }
    // The decompressor may stop at the end of the compressed stream; read on
    // to the end so the BlobReader checks the blob's digest in every case.
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(size_t left, reader.Read(buf.data(), buf.size()));
      if (left == 0) break;
    }
    int64_t n = static_cast<int64_t>(hasher.bytes());
    return std::pair{hasher.Finish(), n};
  };
  STRATA_ASSIGN_OR_RETURN(auto first, pass(nullptr));
  if (first.first != diff_id) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "layer {}: uncompressed content hashes to {}, config diff_id is {}",
                     layer.digest, first.first, diff_id);
  }
  STRATA_RETURN_IF_ERROR(tar.BeginFile(name, first.second));
  STRATA_ASSIGN_OR_RETURN(
      auto second, pass([&](const void* data, size_t size) { return tar.Data(data, size); }));
  if (second != first) {
    return MakeError(ErrorCode::kDataLoss, "layer {} changed while being saved", layer.digest);
  }
  return OkStatus();
}

// Media type for a docker-archive layer file, by its magic bytes.
Result<std::string_view> SniffLayerType(const SourceFile& f) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(f.path, O_RDONLY));
  unsigned char magic[4] = {};
  ssize_t n = ::pread(fd.get(), magic, sizeof(magic), 0);
  if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return media_type::kLayerTarGzip;
  if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return media_type::kLayerTarZstd;
  }
  return media_type::kLayerTar;
}

Result<Digest> UncompressedDigest(const SourceFile& f) {
  auto wrap = [&](const Error& e) { return Unexpected(e.Wrap(f.path.filename().string())); };
  auto tar_stream = OpenDecompressedFile(f.path);
  if (!tar_stream) return wrap(tar_stream.error());
  Digester h;
  std::vector<char> buf(kChunk);
  for (;;) {
    auto n = (*tar_stream)->Read(buf.data(), buf.size());
    if (!n) return wrap(n.error());
    if (*n == 0) break;
    h.Update(buf.data(), *n);
  }
  return h.Finish();
}

}  // namespace

Status SaveDockerArchive(const Store& store, const std::vector<std::string>& refs,
                         const fs::path& out, const std::optional<Platform>& platform) {
  if (refs.empty()) return MakeError(ErrorCode::kInvalidArgument, "save: no image named");
  struct Entry {
    Image image;
    std::vector<Reference> tags;
  };
  std::vector<Entry> entries;
  std::unordered_map<Digest, size_t> by_config;
  for (const auto& name : refs) {
    STRATA_ASSIGN_OR_RETURN(auto target, ResolveForSave(store, name));
    auto image = store.LoadImage(target.descriptor, platform.value_or(Platform::Host()));
    if (!image) return Unexpected(image.error().Wrap(fmt::format("save {}", name)));
    if (image->config.diff_ids.size() != image->manifest.layers.size()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "save {}: config {} lists {} diff_ids for {} layers", name,
                       image->manifest.config.digest, image->config.diff_ids.size(),
                       image->manifest.layers.size());
    }
    Digest config = image->manifest.config.digest;
    auto [it, fresh] = by_config.try_emplace(config, entries.size());
    if (fresh) entries.push_back({std::move(*image), {}});
    if (target.ref) {
      auto& tags = entries[it->second].tags;
      if (std::find(tags.begin(), tags.end(), *target.ref) == tags.end()) {
        tags.push_back(*target.ref);
      }
    }
  }

  STRATA_ASSIGN_OR_RETURN(auto output, AtomicFile::Create(out));
  STRATA_ASSIGN_OR_RETURN(auto tar, TarWriter::Open(output.fd(), out.string()));
  json manifest = json::array();
  json repositories = json::object();
  std::set<std::string> written;
  for (const auto& e : entries) {
    const Image& img = e.image;
    std::string config_name = img.manifest.config.digest.hex() + ".json";
    if (written.insert(config_name).second) {
      STRATA_RETURN_IF_ERROR(tar.AddFile(config_name, img.config_bytes));
    }
    json layers = json::array();
    std::string top;
    for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
      const Digest& diff_id = img.config.diff_ids[i];
      top = diff_id.hex();
      std::string name = top + "/layer.tar";
      layers.push_back(name);
      if (!written.insert(name).second) continue;
      STRATA_RETURN_IF_ERROR(tar.AddDir(top));
      STRATA_RETURN_IF_ERROR(tar.AddFile(top + "/VERSION", "1.0"));
      auto s = WriteDockerLayer(store, tar, img.manifest.layers[i], diff_id, name);
      if (!s)
        return Unexpected(s.error().Wrap(fmt::format("save image {}", img.descriptor.digest)));
    }
    json tags = json::array();
    for (const auto& ref : e.tags) {
      if (ref.tag().empty()) continue;  // digest references have no tag to record
      tags.push_back(ref.WithoutDigest().Familiar());
      if (!top.empty()) repositories[RepoOf(ref)][ref.tag()] = top;
    }
    manifest.push_back(json{{"Config", config_name},
                            {"RepoTags", tags.empty() ? json(nullptr) : tags},
                            {"Layers", layers}});
  }
  STRATA_RETURN_IF_ERROR(tar.AddFile("manifest.json", DumpJson(manifest) + "\n"));
  if (!repositories.empty()) {
    STRATA_RETURN_IF_ERROR(tar.AddFile("repositories", DumpJson(repositories) + "\n"));
  }
  STRATA_RETURN_IF_ERROR(tar.Close());
  return output.Commit();
}

namespace archive_internal {

Status PlanDockerArchive(LoadSource& src, LoadPlan& plan) {
  STRATA_ASSIGN_OR_RETURN(SourceFile * mf, src.Find("manifest.json"));
  STRATA_ASSIGN_OR_RETURN(auto text, src.ReadSmall(*mf, "manifest.json"));
  STRATA_ASSIGN_OR_RETURN(auto j, ParseJson(text, "manifest.json"));
  if (!j.is_array() || j.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "manifest.json: expected a non-empty array");
  }
  for (const auto& item : j) {
    if (!item.is_object()) {
      return MakeError(ErrorCode::kInvalidArgument, "manifest.json: entry is not an object");
    }
    STRATA_ASSIGN_OR_RETURN(auto config_name, GetString(item, "Config", "manifest.json", true));
    STRATA_ASSIGN_OR_RETURN(auto layer_names, GetStringList(item, "Layers", "manifest.json"));
    std::vector<std::string> tag_names;
    if (item.contains("RepoTags") && !item["RepoTags"].is_null()) {
      STRATA_ASSIGN_OR_RETURN(tag_names, GetStringList(item, "RepoTags", "manifest.json"));
    }
    auto ctx = [&](const Error& e) {
      return Unexpected(e.Wrap(fmt::format("manifest.json image {}", config_name)));
    };

    auto config_file = src.Find(config_name);
    if (!config_file) return ctx(config_file.error());
    auto config_text = src.ReadSmall(**config_file, config_name);
    if (!config_text) return ctx(config_text.error());
    auto config = ImageConfig::Parse(*config_text);
    if (!config) return ctx(config.error());
    if (config->diff_ids.size() != layer_names.size()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "{}: config lists {} diff_ids, manifest.json {} layers", config_name,
                       config->diff_ids.size(), layer_names.size());
    }
    STRATA_ASSIGN_OR_RETURN(Digest config_digest, src.Sha256(**config_file));

    Manifest m;
    m.media_type = std::string(media_type::kImageManifest);
    m.config =
        Descriptor::Of(std::string(media_type::kImageConfig), config_digest, (*config_file)->size);
    plan.Add(m.config, (*config_file)->path);
    for (size_t i = 0; i < layer_names.size(); ++i) {
      const Digest& diff_id = config->diff_ids[i];
      auto f = src.Find(layer_names[i]);
      if (!f) return ctx(f.error());
      SourceFile* file = *f;
      STRATA_ASSIGN_OR_RETURN(std::string_view mt, SniffLayerType(*file));
      STRATA_ASSIGN_OR_RETURN(Digest stored, src.Sha256(*file));
      Digest uncompressed = stored;
      if (mt != media_type::kLayerTar) {
        STRATA_ASSIGN_OR_RETURN(uncompressed, UncompressedDigest(*file));
      }
      if (uncompressed != diff_id) {
        return MakeError(ErrorCode::kFailedPrecondition,
                         "layer {} does not match diff_id {}: its content hashes to {}",
                         layer_names[i], diff_id, uncompressed);
      }
      Descriptor d = Descriptor::Of(std::string(mt), stored, file->size);
      plan.Add(d, file->path);
      m.layers.push_back(std::move(d));
    }
    std::string bytes = m.Serialize();
    Descriptor md = Descriptor::Of(std::string(media_type::kImageManifest), Digest::Of(bytes),
                                   static_cast<int64_t>(bytes.size()));
    plan.Add(md, {}, bytes);
    if (tag_names.empty()) plan.images.push_back({std::nullopt, md});
    for (const auto& t : tag_names) {
      auto ref = Reference::Parse(t);
      if (!ref) return ctx(ref.error());
      plan.images.push_back({*ref, md});
    }
  }
  return OkStatus();
}

}  // namespace archive_internal
}  // namespace strata::oci
