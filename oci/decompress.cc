// NewAutoDecompressor / OpenDecompressedFile (declared in oci/compress.h).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "oci/compress.h"
#include "oci/util/archive_handle.h"
#include "oci/util/file_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

// xz FD 37 7A 58 5A 00, bzip2 "BZh", lz4 frame 04 22 4D 18: the codecs only
// libarchive decodes for us.
bool NeedsLibarchive(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.starts_with(magic); };
  using namespace std::string_view_literals;
  return starts("\xfd\x37\x7a\x58\x5a\x00"sv) || starts("BZh"sv) || starts("\x04\x22\x4d\x18"sv);
}

// libarchive's raw format over a ByteSource: pulls from `in` as it is read.
class LibarchiveSource final : public ByteSource {
 public:
  explicit LibarchiveSource(ByteSource* in) : in_(in) {}

  Status Init() {
    a_.reset(archive_read_new());
    if (!a_) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
    SupportInProcessFilters(a_.get());
    archive_read_support_format_raw(a_.get());
    if (archive_read_open(a_.get(), this, nullptr, &Callback, nullptr) != ARCHIVE_OK) {
      return Failed("open");
    }
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a_.get(), &entry);
    if (r == ARCHIVE_EOF) {
      eof_ = true;  // empty input
    } else if (r < ARCHIVE_WARN) {
      return Failed("read");
    }
    return OkStatus();
  }

  Result<size_t> Read(void* buf, size_t size) override {
    if (eof_ || size == 0) return 0;
    la_ssize_t n = archive_read_data(a_.get(), buf, size);
    if (n < 0) return Failed("decompress");
    return static_cast<size_t>(n);
  }

 private:
  static la_ssize_t Callback(archive* a, void* data, const void** out) {
    auto* self = static_cast<LibarchiveSource*>(data);
    auto n = self->in_->Read(self->buf_.data(), self->buf_.size());
    if (!n) {
      self->error_ = n.error();
      archive_set_error(a, EIO, "%s", n.error().message().c_str());
      return -1;
    }
    *out = self->buf_.data();
    return static_cast<la_ssize_t>(*n);
  }
  std::unexpected<Error> Failed(std::string_view stage) {
    if (error_) return Unexpected(*error_);
    return MakeError(ErrorCode::kDataLoss, "{}: {}", stage, ArchiveErrorText(a_.get()));
  }

  ByteSource* in_;
  ArchiveReadPtr a_;
  std::vector<char> buf_ = std::vector<char>(1 << 16);
  std::optional<Error> error_;
  bool eof_ = false;
};

// The sniffed prefix, then the decoder reading from it (owns both).
class AutoSource final : public ByteSource {
 public:
  AutoSource(std::string head, ByteSource* in) : prefix_(std::move(head), in) {}
  Status Init() {
    const std::string_view head = prefix_head_;
    if (NeedsLibarchive(head)) {
      auto s = std::make_unique<LibarchiveSource>(&prefix_);
      STRATA_RETURN_IF_ERROR(s->Init());
      inner_ = std::move(s);
      return OkStatus();
    }
    STRATA_ASSIGN_OR_RETURN(inner_, NewDecompressor(DetectCompression(head), &prefix_));
    return OkStatus();
  }
  void set_head(std::string head) { prefix_head_ = std::move(head); }
  Result<size_t> Read(void* buf, size_t size) override { return inner_->Read(buf, size); }

 private:
  PrefixSource prefix_;
  std::string prefix_head_;
  std::unique_ptr<ByteSource> inner_;
};

// Reads a file through an fd it owns.
class FileSource final : public ByteSource {
 public:
  FileSource(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<size_t> Read(void* buf, size_t size) override {
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, fmt::format("read {}", path_));
    }
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

// A decompressor together with the file it reads.
class DecompressedFile final : public ByteSource {
 public:
  explicit DecompressedFile(std::unique_ptr<FileSource> file) : file_(std::move(file)) {}
  Status Init() {
    STRATA_ASSIGN_OR_RETURN(inner_, NewAutoDecompressor(file_.get()));
    return OkStatus();
  }
  Result<size_t> Read(void* buf, size_t size) override { return inner_->Read(buf, size); }

 private:
  std::unique_ptr<FileSource> file_;
  std::unique_ptr<ByteSource> inner_;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> NewAutoDecompressor(ByteSource* in) {
  STRATA_ASSIGN_OR_RETURN(std::string head, ReadUpTo(in, 6));
  auto s = std::make_unique<AutoSource>(head, in);
  s->set_head(std::move(head));
  STRATA_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<ByteSource>(std::move(s));
}

Result<std::unique_ptr<ByteSource>> OpenDecompressedFile(const fs::path& path) {
  STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(path, O_RDONLY));
  auto s = std::make_unique<DecompressedFile>(
      std::make_unique<FileSource>(std::move(fd), path.string()));
  STRATA_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<ByteSource>(std::move(s));
}

}  // namespace strata::oci
