// Reference: an image reference in the distribution grammar
// (github.com/distribution/reference), normalized as docker does:
//   busybox            -> docker.io/library/busybox:latest
//   ghcr.io/o/r@sha256:... (digest only, no implied tag)
//   localhost:5000/app:1, [::1]:5000/app
// Familiar() is the short display form (`busybox:latest`, `o/r:1`).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "oci/digest.h"
#include "oci/util/error.h"

namespace strata::oci {

inline constexpr std::string_view kDefaultDomain = "docker.io";

class Reference {
 public:
  // Parses and normalizes. A reference with neither tag nor digest gets the
  // tag "latest". InvalidArgument naming the string and the rule it breaks.
  static Result<Reference> Parse(std::string_view s);

  const std::string& domain() const { return domain_; }
  const std::string& path() const { return path_; }
  // domain/path, e.g. "docker.io/library/busybox".
  std::string name() const { return domain_ + "/" + path_; }
  const std::string& tag() const { return tag_; }  // may be empty if digest set
  const std::optional<Digest>& digest() const { return digest_; }

  // Full normalized form: name[:tag][@digest].
  std::string ToString() const;
  // Short form for display: drops "docker.io/" and "library/".
  std::string Familiar() const;
  // Copies with the tag/digest replaced.
  Reference WithTag(std::string tag) const;
  Reference WithDigest(Digest d) const;
  Reference WithoutDigest() const;

  bool operator==(const Reference&) const = default;

 private:
  std::string domain_;
  std::string path_;
  std::string tag_;
  std::optional<Digest> digest_;
};

}  // namespace strata::oci

template <>
struct std::hash<strata::oci::Reference> {
  size_t operator()(const strata::oci::Reference& r) const noexcept {
    return std::hash<std::string>()(r.ToString());
  }
};
