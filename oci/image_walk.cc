#include "oci/image_walk.h"

#include <unordered_set>

#include "oci/manifest.h"
#include "oci/media_types.h"

namespace strata::oci {
namespace {

class Walk {
 public:
  Walk(const BlobStore& blobs, const ImageWalker& w) : blobs_(blobs), w_(w) {}

  Status Node(const Descriptor& d, WalkNode node, const Descriptor* parent, int depth) {
    if (!seen_.insert(d.digest).second) return OkStatus();
    STRATA_ASSIGN_OR_RETURN(bool descend, w_.visit(d, node, parent));
    if (!descend || (node != WalkNode::kIndex && node != WalkNode::kManifest)) return OkStatus();
    auto unreadable = [&](const Error& e) -> Status {
      if (w_.on_unreadable) return w_.on_unreadable(d, e);
      return Unexpected(e);
    };
    if (depth > w_.max_depth) {
      return unreadable(Error(ErrorCode::kInvalidArgument, "index nesting too deep"));
    }
    auto bytes = ReadBlob(blobs_, d.digest);
    if (!bytes) return unreadable(bytes.error());
    // What the bytes say wins over the descriptor's media type.
    auto mt = DetectManifestMediaType(*bytes);
    if (mt && media_type::IsIndex(*mt)) {
      auto idx = Index::Parse(*bytes);
      if (!idx) return unreadable(idx.error());
      for (const auto& m : idx->manifests) {
        if (w_.skip_missing_index_entries && !blobs_.Has(m.digest)) continue;
        STRATA_RETURN_IF_ERROR(Node(m, KindOf(m.media_type), &d, depth + 1));
      }
      return OkStatus();
    }
    auto m = Manifest::Parse(*bytes);
    if (!m) return unreadable(m.error());
    STRATA_RETURN_IF_ERROR(Node(m->config, WalkNode::kConfig, &d, depth + 1));
    for (const auto& l : m->layers) {
      STRATA_RETURN_IF_ERROR(Node(l, WalkNode::kLayer, &d, depth + 1));
    }
    return OkStatus();
  }

  static WalkNode KindOf(std::string_view media_type) {
    if (media_type::IsIndex(media_type)) return WalkNode::kIndex;
    if (media_type::IsManifest(media_type)) return WalkNode::kManifest;
    return WalkNode::kOther;
  }

 private:
  const BlobStore& blobs_;
  const ImageWalker& w_;
  std::unordered_set<Digest> seen_;
};

}  // namespace

Status WalkImage(const BlobStore& blobs, const Descriptor& root, const ImageWalker& walker) {
  return Walk(blobs, walker).Node(root, Walk::KindOf(root.media_type), nullptr, 0);
}

}  // namespace strata::oci
