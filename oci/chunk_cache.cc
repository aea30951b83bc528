#include "oci/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <system_error>

#include "oci/store.h"
#include "oci/util/file_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "strata-chunks 1";

fs::path TablesDir(const Store& store) { return store.ChunksDir() / "sha256"; }

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool ParseU64(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

struct TableFile {
  fs::path path;
  std::string hex;  // the blob's
  int64_t mtime_ns;
};

// The tables under ROOT/chunks/sha256, newest first (ties by name).
std::vector<TableFile> ListTables(const Store& store) {
  std::vector<TableFile> out;
  std::error_code ec;
  for (fs::directory_iterator it(TablesDir(store), ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!IsHex64(name)) continue;  // temp files of AtomicFile, strangers
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({it->path(), name,
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  }
  std::sort(out.begin(), out.end(), [](const TableFile& a, const TableFile& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns > b.mtime_ns : a.hex < b.hex;
  });
  return out;
}

}  // namespace

std::unique_ptr<ChunkCache> ChunkCache::Load(const Store& store, std::string params) {
  std::unique_ptr<ChunkCache> cache(new ChunkCache(std::move(params)));
  std::vector<TableFile> tables = ListTables(store);
  if (tables.size() > kMaxTables) tables.resize(kMaxTables);
  for (const TableFile& t : tables) {
    auto text = ReadFile(t.path);
    if (!text) continue;
    std::string_view rest = *text;
    auto next_line = [&rest]() -> std::string_view {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      return line;
    };
    if (next_line() != kMagic) continue;
    if (next_line() != "params " + cache->params_) continue;
    const Digest blob = Digest::FromHex(DigestAlgorithm::kSha256, t.hex);
    UniqueFd fd(::open(store.BlobPath(blob).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;  // the blob is gone: the table means nothing
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) continue;
    const uint64_t blob_size = static_cast<uint64_t>(st.st_size);
    const size_t index = cache->blobs_.size();
    bool used = false;
    while (!rest.empty()) {
      std::string_view line = next_line();
      // "<hex> <offset> <length> <size>"
      std::string_view f[4];
      size_t n = 0;
      while (n < 4 && !line.empty()) {
        size_t sp = line.find(' ');
        f[n++] = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
      }
      Location loc{index, 0, 0, 0};
      if (n != 4 || !line.empty() || !IsHex64(f[0]) || !ParseU64(f[1], &loc.offset) ||
          !ParseU64(f[2], &loc.length) || !ParseU64(f[3], &loc.size) || loc.length == 0 ||
          loc.offset > blob_size || loc.length > blob_size - loc.offset) {
        continue;
      }
      // Newer tables come first and win.
      if (cache->index_.emplace(std::string(f[0]), loc).second) used = true;
    }
    if (used) cache->blobs_.push_back(std::move(fd));
  }
  return cache;
}

bool ChunkCache::Fetch(const Digest& chunk, uint64_t size, std::vector<uint8_t>* out) const {
  auto it = index_.find(chunk.hex());
  if (it == index_.end() || it->second.size != size) return false;
  const Location& loc = it->second;
  out->resize(loc.length);
  uint64_t done = 0;
  while (done < loc.length) {
    ssize_t n = ::pread(blobs_[loc.blob].get(), out->data() + done, loc.length - done,
                        static_cast<off_t>(loc.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      out->clear();
      return false;
    }
    done += static_cast<uint64_t>(n);
  }
  return true;
}

Status WriteChunkTable(const Store& store, const Digest& blob, std::string_view params,
                       const std::vector<GzipMember>& members) {
  if (members.empty()) return OkStatus();
  const fs::path dir = TablesDir(store);
  STRATA_RETURN_IF_ERROR(MakeDirs(dir));
  std::string text = fmt::format("{}\nparams {}\n", kMagic, params);
  for (const GzipMember& m : members) {
    text += fmt::format("{} {} {} {}\n", m.chunk.hex(), m.offset, m.length, m.size);
  }
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(dir / blob.hex(), text));
  std::vector<TableFile> tables = ListTables(store);
  for (size_t i = ChunkCache::kMaxTables; i < tables.size(); ++i) {
    std::error_code ec;
    fs::remove(tables[i].path, ec);  // another process may have removed it
  }
  return OkStatus();
}

int64_t SweepChunkTables(const Store& store) {
  int64_t removed = 0;
  for (const TableFile& t : ListTables(store)) {
    if (store.Has(Digest::FromHex(DigestAlgorithm::kSha256, t.hex))) continue;
    std::error_code ec;
    if (fs::remove(t.path, ec)) ++removed;
  }
  return removed;
}

}  // namespace strata::oci
