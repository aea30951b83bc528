#include "oci/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "oci/util/unique_fd.h"

namespace strata::oci {

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<Digest> Digest::Parse(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid digest \"{}\": missing algorithm", s);
  }
  std::string_view alg = s.substr(0, colon);
  std::string_view hex = s.substr(colon + 1);
  Digest d;
  size_t want;
  if (alg == "sha256") {
    d.alg_ = DigestAlgorithm::kSha256;
    want = 64;
  } else if (alg == "sha512") {
    d.alg_ = DigestAlgorithm::kSha512;
    want = 128;
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid digest \"{}\": unsupported algorithm \"{}\"", s, alg);
  }
  if (hex.size() != want) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid digest \"{}\": {} needs {} hex characters, got {}", s, alg, want,
                     hex.size());
  }
  if (!IsLowerHex(hex)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid digest \"{}\": encoded part must be lowercase hex", s);
  }
  d.hex_ = std::string(hex);
  return d;
}

Digest Digest::Of(std::string_view data) {
  Digester h;
  h.Update(data);
  return h.Finish();
}

Digest Digest::FromHex(DigestAlgorithm alg, std::string hex) {
  Digest d;
  d.alg_ = alg;
  d.hex_ = std::move(hex);
  return d;
}

std::string Digest::ToString() const {
  if (hex_.empty()) return "";
  return fmt::format("{}:{}", algorithm_name(), hex_);
}

struct Digester::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

namespace {
void InitCtx(EVP_MD_CTX* md, DigestAlgorithm alg) {
  EVP_DigestInit_ex(md, alg == DigestAlgorithm::kSha256 ? EVP_sha256() : EVP_sha512(), nullptr);
}
}  // namespace

Digester::Digester(DigestAlgorithm alg) : alg_(alg), ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  InitCtx(ctx_->md, alg_);
}
Digester::~Digester() = default;
Digester::Digester(Digester&&) noexcept = default;
Digester& Digester::operator=(Digester&&) noexcept = default;

void Digester::Update(const void* data, size_t size) {
  EVP_DigestUpdate(ctx_->md, data, size);
  bytes_ += size;
}

Digest Digester::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(len * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    hex[2 * i] = kHex[out[i] >> 4];
    hex[2 * i + 1] = kHex[out[i] & 0xf];
  }
  InitCtx(ctx_->md, alg_);
  bytes_ = 0;
  return Digest::FromHex(alg_, std::move(hex));
}

Result<Digest> DigestFile(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path));
  UniqueFd owner(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Digester h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {}", path));
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  if (size) *size = h.bytes();
  return h.Finish();
}

}  // namespace strata::oci
