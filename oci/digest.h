// Digest: a validated content address `algorithm:hex` (OCI image-spec
// descriptor.md). sha256 is what strata writes; sha512 is accepted on read.
// Digester: streaming hash over OpenSSL EVP; feed bytes with Update, then
// Finish. Value types, cheap to copy; a Digester is single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "oci/util/error.h"

namespace strata::oci {

enum class DigestAlgorithm { kSha256, kSha512 };

class Digest {
 public:
  Digest() = default;  // empty; valid() is false

  // Parses "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>".
  // InvalidArgument naming the string otherwise.
  static Result<Digest> Parse(std::string_view s);

  // Digest of a byte string with sha256.
  static Digest Of(std::string_view data);

  // REQUIRES: hex is a validated lowercase hex string of the right length.
  static Digest FromHex(DigestAlgorithm alg, std::string hex);

  bool valid() const { return !hex_.empty(); }
  DigestAlgorithm algorithm() const { return alg_; }
  std::string_view algorithm_name() const {
    return alg_ == DigestAlgorithm::kSha256 ? "sha256" : "sha512";
  }
  const std::string& hex() const { return hex_; }
  std::string ToString() const;
  // First 12 hex characters, as `docker images` shows IDs.
  std::string Short() const { return hex_.substr(0, 12); }

  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest& o) const { return ToString() <=> o.ToString(); }

 private:
  DigestAlgorithm alg_ = DigestAlgorithm::kSha256;
  std::string hex_;
};

class Digester {
 public:
  explicit Digester(DigestAlgorithm alg = DigestAlgorithm::kSha256);
  ~Digester();
  Digester(Digester&&) noexcept;
  Digester& operator=(Digester&&) noexcept;
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  uint64_t bytes() const { return bytes_; }
  // Returns the digest of everything fed so far and resets the hasher.
  Digest Finish();

 private:
  struct Ctx;
  DigestAlgorithm alg_;
  std::unique_ptr<Ctx> ctx_;
  uint64_t bytes_ = 0;
};

// Streams a file through sha256. NotFound if missing.
Result<Digest> DigestFile(const std::string& path, uint64_t* size = nullptr);

}  // namespace strata::oci

template <>
struct std::hash<strata::oci::Digest> {
  size_t operator()(const strata::oci::Digest& d) const noexcept {
    return std::hash<std::string>()(d.hex());
  }
};

template <>
struct fmt::formatter<strata::oci::Digest> : fmt::formatter<std::string_view> {
  auto format(const strata::oci::Digest& d, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(d.ToString(), ctx);
  }
};
