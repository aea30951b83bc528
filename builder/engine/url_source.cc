#include "builder/engine/url_source.h"

#include <ctime>

#include <fmt/format.h>

#include "oci/digest.h"

namespace strata::builder {
namespace fs = std::filesystem;

namespace {

// The file name ADD gives a URL: its last path element.
std::string UrlFileName(const std::string& url) {
  std::string path = url.substr(url.find("://") + 3);
  path = path.substr(0, path.find_first_of("?#"));
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash + 1 == path.size() ? "index.html"
                                                                : path.substr(slash + 1);
}

}  // namespace

Result<std::vector<Downloaded>> FetchUrls(const std::vector<std::string>& urls,
                                          const UrlFetcher& fetcher, const fs::path& dir,
                                          const std::string& checksum, int64_t default_mtime) {
  std::vector<Downloaded> fetched;
  for (const auto& url : urls) {
    if (!fetcher) {
      return MakeError(ErrorCode::kUnimplemented, "ADD {}: no URL fetcher configured", url);
    }
    Downloaded dl;
    dl.file = dir / std::to_string(fetched.size());
    std::string last_modified;
    if (auto s = fetcher(url, dl.file, &last_modified); !s) {
      return Unexpected(s.error().Wrap(fmt::format("ADD {}", url)));
    }
    STRATA_ASSIGN_OR_RETURN(auto got, oci::DigestFile(dl.file.string()));
    dl.digest = got.ToString();
    if (!checksum.empty()) {
      auto want = oci::Digest::Parse(checksum);
      if (!want) return Unexpected(want.error().Wrap("ADD --checksum"));
      if (got != *want) {
        return MakeError(ErrorCode::kFailedPrecondition,
                         "ADD {}: checksum mismatch: expected {}, got {}", url, want->ToString(),
                         got.ToString());
      }
    }
    dl.name = UrlFileName(url);
    if (::stat(dl.file.c_str(), &dl.st) != 0) {
      return ErrnoError(errno, fmt::format("ADD {}: stat the download", url));
    }
    dl.st.st_mode = S_IFREG | 0600;
    int64_t mtime = default_mtime;
    std::tm tm{};
    if (!last_modified.empty() &&
        ::strptime(last_modified.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) != nullptr) {
      mtime = ::timegm(&tm);
    }
    dl.st.st_mtim = {static_cast<time_t>(mtime), 0};
    fetched.push_back(std::move(dl));
  }
  return fetched;
}

}  // namespace strata::builder
