// Helpers shared by the layer test suites: a source tree with every entry
// type, a canonical description of a tree for comparisons, and reading the
// entries of a layer blob back with libarchive.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "oci/byte_stream.h"
#include "oci/store.h"
#include "oci/util/error.h"

namespace strata::oci::testing {

// Fills `dir` with: dirs (one sticky 1777), files with setuid/setgid and
// odd modes, an empty file, a 1 MiB file, a symlink, a hardlink pair, a fifo,
// a char device (only when running as root), xattrs user.* and
// security.capability, uid/gid 1234/5678 on some entries (when root), a long
// path (> 100 bytes), a non-ASCII name, mtimes set to fixed values.
void MakeRichTree(const std::filesystem::path& dir);

// One line per path (sorted): type, mode, uid:gid, size, content hash, link
// target, rdev, xattrs (except trusted.overlay.*), mtime, and a hardlink
// group number. Two trees with equal descriptions are equal for strata.
// With `with_times` false, mtimes are left out.
std::string DescribeTree(const std::filesystem::path& dir, bool with_times = true);

struct TarEntryInfo {
  std::string path;
  char type;  // 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'p' fifo, 'c' char, 'b' block
  unsigned mode;
  int64_t uid, gid;
  bool has_uname, has_atime, has_ctime;
  int64_t mtime;
  std::string link;
  std::vector<std::string> xattrs;  // names
};

// The entries of an uncompressed tar.
std::vector<TarEntryInfo> ListTar(const std::string& tar);

// A blob from the store, decompressed with the codec its media type names.
std::string ReadLayerTar(const Store& store, const Descriptor& layer);

// ByteSource over a string or a file (read in small chunks).
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string s) : s_(std::move(s)) {}
  Result<size_t> Read(void* buf, size_t size) override;

 private:
  std::string s_;
  size_t pos_ = 0;
};

// Sets a path's mtime (not following symlinks).
void SetMtime(const std::filesystem::path& p, int64_t t);

// One entry of a hand-made tar (MakeTar), for hostile and tricky layers.
// Made with File(), Dir(), ... below, adjusted with the With* copies.
struct TarSpec {
  std::string name;
  char type = 'f';   // 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'p' fifo, 'c' char dev 1:3
  std::string data;  // file content
  std::string link;  // symlink or hardlink target
  unsigned mode = 0644;
  int64_t mtime = 1700000000;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name, value

  TarSpec WithMode(unsigned m) const;
  TarSpec WithMtime(int64_t t) const;
  TarSpec WithXattr(std::string n, std::string v) const;
};
TarSpec File(std::string name, std::string data = "", unsigned mode = 0644);
TarSpec Dir(std::string name, unsigned mode = 0755);
TarSpec Symlink(std::string name, std::string target);
TarSpec Hardlink(std::string name, std::string target);
TarSpec Fifo(std::string name);
TarSpec CharDevice(std::string name);  // 1:3, as /dev/null

// A pax tar of `entries`, in order, uid/gid 0; gzip-compressed if `gzip`.
std::string MakeTar(const std::vector<TarSpec>& entries, bool gzip = false);

// Puts `tar` (as made by MakeTar) into `store` as a layer blob whose media
// type says `gzip` or plain tar.
Descriptor PutLayer(Store& store, const std::string& tar, bool gzip);

}  // namespace strata::oci::testing

namespace strata::oci::testing {

// Commits one layer per directory (gzip, overlay_upper as given) and an image
// (config with their diffIDs, manifest) into `store`; returns the loaded image.
Result<Image> MakeImage(Store& store, const std::vector<std::filesystem::path>& layer_dirs,
                        bool overlay_upper = false);

}  // namespace strata::oci::testing
