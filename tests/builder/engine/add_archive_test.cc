#include "builder/engine/add_archive.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::HaveTool;
using ::strata::testing::RunCommand;

std::string ReadAll(oci::ByteSource& src) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = src.Read(buf, sizeof(buf));
    if (!n || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

TEST(AddArchiveTest, RecognisesTarInEveryCompression) {
  auto dir = testing::MakeTempDir();
  testing::WriteTestFile(dir.path() / "src" / "hello.txt", "hi");
  ASSERT_EQ(RunCommand("tar -C '" + (dir.path() / "src").string() + "' -cf '" +
                       (dir.path() / "a.tar").string() + "' hello.txt")
                .exit_code,
            0);
  ASSERT_OK_AND_ASSIGN(bool plain, IsTarArchive(dir.path() / "a.tar"));
  EXPECT_TRUE(plain);
  for (const char* tool : {"gzip", "bzip2", "xz", "zstd"}) {
    if (!HaveTool(tool)) continue;
    fs::path out = dir.path() / (std::string("a.tar.") + tool);
    ASSERT_EQ(RunCommand(std::string(tool) + " -c < '" + (dir.path() / "a.tar").string() + "' > '" +
                         out.string() + "'")
                  .exit_code,
              0);
    ASSERT_OK_AND_ASSIGN(bool is_tar, IsTarArchive(out));
    EXPECT_TRUE(is_tar) << tool;
    ASSERT_OK_AND_ASSIGN(auto src, OpenDecompressed(out));
    EXPECT_EQ(ReadAll(*src), *ReadFile(dir.path() / "a.tar")) << tool;
  }
}

TEST(AddArchiveTest, CompressedNonTarAndPlainFilesAreNotArchives) {
  auto dir = testing::MakeTempDir();
  testing::WriteTestFile(dir.path() / "data.json", R"({"a": 1})");
  ASSERT_EQ(RunCommand("gzip -k '" + (dir.path() / "data.json").string() + "'").exit_code, 0);
  ASSERT_OK_AND_ASSIGN(bool gz, IsTarArchive(dir.path() / "data.json.gz"));
  EXPECT_FALSE(gz);
  ASSERT_OK_AND_ASSIGN(bool plain, IsTarArchive(dir.path() / "data.json"));
  EXPECT_FALSE(plain);
  testing::WriteTestFile(dir.path() / "empty", "");
  ASSERT_OK_AND_ASSIGN(bool empty, IsTarArchive(dir.path() / "empty"));
  EXPECT_FALSE(empty);
  EXPECT_FALSE(IsTarArchive(dir.path() / "missing").has_value());
}

}  // namespace
}  // namespace strata::builder
