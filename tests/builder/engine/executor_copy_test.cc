// COPY, ADD and WORKDIR on the hermetic harness: what lands in the layer
// (paths, modes, owners, links), source selection (.dockerignore, globs,
// --exclude, --parents, --from) and their errors.
#include <sys/stat.h>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "oci/digest.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using testing::Dir;
using ::testing::ElementsAre;
using testing::EngineHarness;
using testing::File;
using ::testing::HasSubstr;
using testing::IsRoot;
using ::testing::Not;
using testing::Symlink;

class ExecutorCopyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(h_.MakeBase()); }
  // The top layer's entries as "name type mode uid:gid" lines.
  std::vector<std::string> Top(const std::string& ref = "out:latest") {
    std::vector<std::string> out;
    for (const auto& e : h_.LayerEntries(-1, ref)) {
      out.push_back(fmt::format("{} {} {:o} {}:{}{}", e.name, e.type, e.mode & 07777, e.uid, e.gid,
                                e.link.empty() ? "" : " -> " + e.link));
    }
    return out;
  }
  EngineHarness h_;
};

TEST_F(ExecutorCopyTest, FileIntoADirectoryKeepsModeAndMtime) {
  h_.Context("app.sh", "#!/bin/sh\n", 0755);
  ASSERT_OK(h_.Build("FROM base\nCOPY app.sh /opt/bin/\n"));
  EXPECT_THAT(Top(), ElementsAre("opt 5 755 0:0", "opt/bin 5 755 0:0", "opt/bin/app.sh 0 755 0:0"));
  auto e = h_.LayerEntry(-1, "opt/bin/app.sh");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->mtime, 1700000000);  // the context file's
  EXPECT_EQ(h_.ReadImageFile("/opt/bin/app.sh"), "#!/bin/sh\n");
}

TEST_F(ExecutorCopyTest, FileToANewNameAndIntoAnExistingImageDirectory) {
  h_.Context("a.txt", "A");
  ASSERT_OK(h_.Build("FROM base\nCOPY a.txt /b.txt\nCOPY a.txt /usr/bin\n"));
  EXPECT_EQ(h_.ReadImageFile("/b.txt"), "A");
  EXPECT_EQ(h_.ReadImageFile("/usr/bin/a.txt"), "A");  // /usr/bin is a dir in the image
  EXPECT_THAT(Top(), ElementsAre("usr 5 755 0:0", "usr/bin 5 755 0:0", "usr/bin/a.txt 0 644 0:0"));
}

TEST_F(ExecutorCopyTest, RelativeDestinationStartsAtTheWorkdir) {
  h_.Context("a.txt", "A");
  ASSERT_OK(h_.Build("FROM base\nWORKDIR /srv/app\nCOPY a.txt ./conf/\n"));
  EXPECT_EQ(h_.ReadImageFile("/srv/app/conf/a.txt"), "A");
}

TEST_F(ExecutorCopyTest, DirectorySourceCopiesItsContents) {
  h_.Context("src/x", "x");
  h_.Context("src/sub/y", "y", 0600);
  ASSERT_OK(h_.Build("FROM base\nCOPY src /dst/\n"));
  EXPECT_THAT(h_.Listing(), HasSubstr("dst: dir 755\ndst/sub: dir 755\ndst/sub/y: file 600 y\n"
                                      "dst/x: file 644 x\n"));
  EXPECT_THAT(h_.Listing(), Not(HasSubstr("dst/src")));
}

TEST_F(ExecutorCopyTest, GlobsMatchWithinOneDirectoryLevel) {
  h_.Context("a.txt", "a");
  h_.Context("b.txt", "b");
  h_.Context("c.md", "c");
  h_.Context("sub/d.txt", "d");
  ASSERT_OK(h_.Build("FROM base\nCOPY *.txt /t/\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("t", "t/a.txt", "t/b.txt"));
}

TEST_F(ExecutorCopyTest, SeveralSourcesNeedADirectoryDestination) {
  h_.Context("a", "a");
  h_.Context("b", "b");
  auto r = h_.Build("FROM base\nCOPY a b /dest\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.error().message(), HasSubstr("must be a directory and end with a /"));
  ASSERT_OK(h_.Build("FROM base\nCOPY a b /dest/\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("dest", "dest/a", "dest/b"));
}

TEST_F(ExecutorCopyTest, ChmodAppliesToFilesAndDirectories) {
  h_.Context("d/f", "f");
  h_.Context("g", "g", 0777);
  ASSERT_OK(h_.Build("FROM base\nCOPY --chmod=0640 g /g\nCOPY --chmod=750 d /d/\n"));
  EXPECT_THAT(h_.Listing(), HasSubstr("d: dir 750\nd/f: file 750 f\n"));
  EXPECT_THAT(h_.Listing(), HasSubstr("g: file 640 g\n"));
  auto bad = h_.Build("FROM base\nCOPY --chmod=99z g /g\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("Dockerfile:2:"));
}

TEST_F(ExecutorCopyTest, ChownToRootWorksWithAndWithoutRoot) {
  h_.Context("f", "f");
  ASSERT_OK(h_.Build("FROM base\nCOPY --chown=0:0 f /f\n"));
  EXPECT_THAT(Top(), ElementsAre("f 0 644 0:0"));
}

TEST_F(ExecutorCopyTest, ChownToAnotherUserNeedsRoot) {
  h_.Context("f", "f");
  auto r = h_.Build("FROM base\nCOPY --chown=1234:4321 f /srv/f\n");
  if (!IsRoot()) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:2:"));
    EXPECT_THAT(r.error().message(), HasSubstr("without root"));
    EXPECT_FALSE(h_.store().Resolve("out:latest").has_value());
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  // Directories the COPY makes belong to the new owner too (BuildKit).
  EXPECT_THAT(Top(), ElementsAre("srv 5 755 1234:4321", "srv/f 0 644 1234:4321"));
}

TEST_F(ExecutorCopyTest, ChownByNameResolvesInTheImage) {
  h_.Context("f", "f");
  auto r = h_.Build("FROM base\nCOPY --chown=app f /home/app/f\n");
  if (!IsRoot()) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_THAT(r.error().message(), HasSubstr("1000"));
  } else {
    ASSERT_TRUE(r.has_value()) << r.error().message();
    auto e = h_.LayerEntry(-1, "home/app/f");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->uid, 1000u);
    EXPECT_EQ(e->gid, 1000u);
  }
  auto unknown = h_.Build("FROM base\nCOPY --chown=nobody f /f\n");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_THAT(unknown.error().message(), HasSubstr("nobody"));
}

TEST_F(ExecutorCopyTest, FromAnEarlierStage) {
  h_.runner().On("make").Write("/out/app", "binary", 0755).Write("/out/junk", "j");
  ASSERT_OK(
      h_.Build("FROM base AS build\nRUN make\nFROM base\nCOPY --from=build /out/app /bin/\n"));
  EXPECT_EQ(h_.ReadImageFile("/bin/app"), "binary");
  EXPECT_EQ(h_.ReadImageFile("/out/junk"), std::nullopt);
  EXPECT_THAT(Top(), ElementsAre("bin 5 755 0:0", "bin/app 0 755 0:0"));
  // By index too.
  ASSERT_OK(h_.Build("FROM base\nRUN make\nFROM scratch\nCOPY --from=0 /out /\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("app", "junk"));
}

TEST_F(ExecutorCopyTest, FromAnImageInTheStore) {
  ASSERT_OK(h_.MakeImage("tools:1", {{File("usr/bin/tool", "T", 0755)}}));
  ASSERT_OK(h_.Build("FROM scratch\nCOPY --from=tools:1 /usr/bin/tool /tool\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("tool"));
  auto r = h_.Build("FROM scratch\nCOPY --from=missing:1 /x /x\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("missing"));
}

TEST_F(ExecutorCopyTest, ParentsKeepsTheSourcePath) {
  h_.Context("a/b/c.txt", "c");
  h_.Context("a/x/d.txt", "d");
  ASSERT_OK(h_.Build("FROM scratch\nCOPY --parents a/*/*.txt /dst/\n"));
  EXPECT_THAT(h_.LayerPaths(-1),
              ElementsAre("dst", "dst/a", "dst/a/b", "dst/a/b/c.txt", "dst/a/x", "dst/a/x/d.txt"));
  // "/./" marks where the kept part starts.
  ASSERT_OK(h_.Build("FROM scratch\nCOPY --parents a/./b/c.txt /dst/\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("dst", "dst/b", "dst/b/c.txt"));
}

TEST_F(ExecutorCopyTest, ExcludeLeavesMatchesOut) {
  h_.Context("app/main.go", "m");
  h_.Context("app/debug.log", "l");
  h_.Context("app/sub/trace.log", "t");
  ASSERT_OK(h_.Build("FROM scratch\nCOPY --exclude=*.log --exclude=**/*.log app /app/\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("app", "app/main.go", "app/sub"));
}

TEST_F(ExecutorCopyTest, LinkLayerDoesNotDependOnTheBase) {
  ASSERT_OK(h_.MakeImage("other:1", {{File("other", "o")}}));
  h_.Context("f", "f");
  ASSERT_OK(h_.Build("FROM base\nCOPY --link f /opt/f\n"));
  ASSERT_OK_AND_ASSIGN(auto a, h_.Load());
  ASSERT_OK(h_.Build("FROM other:1\nCOPY --link f /opt/f\n"));
  ASSERT_OK_AND_ASSIGN(auto b, h_.Load());
  EXPECT_EQ(a.config.diff_ids.back(), b.config.diff_ids.back());
  EXPECT_EQ(a.manifest.layers.back().digest, b.manifest.layers.back().digest);
  // ... and it was reused, not made again.
  EXPECT_FALSE(h_.progress().Cached("COPY --link f /opt/f").empty());
}

TEST_F(ExecutorCopyTest, HeredocSourcesBecomeFiles) {
  ASSERT_OK(h_.Build("FROM scratch\nCOPY <<EOF /etc/motd\nhello\nworld\nEOF\n"));
  EXPECT_EQ(h_.ReadImageFile("/etc/motd"), "hello\nworld\n");
  EXPECT_THAT(Top(), ElementsAre("etc 5 755 0:0", "etc/motd 0 644 0:0"));
}

TEST_F(ExecutorCopyTest, MissingSourceAndSourcesOutsideTheContextAreRefused) {
  auto missing = h_.Build("FROM base\nCOPY nope.txt /\n");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(missing.error().message(), HasSubstr("nope.txt"));
  auto outside = h_.Build("FROM base\nCOPY ../secret /\n");
  ASSERT_FALSE(outside.has_value());
  EXPECT_EQ(outside.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(outside.error().message(), HasSubstr("outside the build context"));
}

TEST_F(ExecutorCopyTest, ContextSymlinksAreCopiedAsLinksNeverFollowed) {
  fs::create_symlink("/etc/shadow", h_.context() / "abs");
  fs::create_symlink("../../outside", h_.context() / "rel");
  ASSERT_OK(h_.Build("FROM scratch\nCOPY abs rel /l/\n"));
  EXPECT_THAT(Top(), ElementsAre("l 5 755 0:0", "l/abs 2 777 0:0 -> /etc/shadow",
                                 "l/rel 2 777 0:0 -> ../../outside"));
}

TEST_F(ExecutorCopyTest, ImageDirectoriesKeepTheirMetadataInTheLayer) {
  ASSERT_OK(h_.MakeImage("homes:1", {{Dir("home/app", 0750), File("bin/sh", "")}}));
  h_.Context("f", "f");
  ASSERT_OK(h_.Build("FROM homes:1\nCOPY f /home/app/f\n"));
  EXPECT_THAT(Top(), ElementsAre("home 5 755 0:0", "home/app 5 750 0:0", "home/app/f 0 644 0:0"));
  auto e = h_.LayerEntry(-1, "home/app");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->mtime, 1700000000);  // the image's, not now
}

TEST_F(ExecutorCopyTest, DestinationResolvesThroughTheImagesOwnSymlinks) {
  ASSERT_OK(h_.MakeImage("usrmerge:1", {{Dir("usr/bin"), Symlink("bin", "usr/bin")}}));
  h_.Context("tool", "t", 0755);
  ASSERT_OK(h_.Build("FROM usrmerge:1\nCOPY tool /bin/\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("usr", "usr/bin", "usr/bin/tool"));
  // A link that points out of the image stays inside it.
  ASSERT_OK(h_.MakeImage("evil:1", {{Symlink("etc", h_.root().string())}}));
  ASSERT_OK(h_.Build("FROM evil:1\nCOPY tool /etc/\n"));
  EXPECT_FALSE(fs::exists(h_.root() / "tool"));
  std::string inside = h_.root().relative_path().string() + "/tool";
  EXPECT_THAT(h_.LayerPaths(-1), ::testing::Contains(inside));
}

TEST_F(ExecutorCopyTest, AddUnpacksLocalTarArchives) {
  h_.ContextTar("plain.tar", {File("a/one", "1"), testing::Dir("a/empty")});
  h_.ContextTar("z.tar.gz", {File("two", "2", 0600)}, /*gzip=*/true);
  ASSERT_OK(h_.Build("FROM scratch\nADD plain.tar z.tar.gz /x/\n"));
  std::string listing = h_.Listing();
  EXPECT_THAT(listing, HasSubstr("x/a/one: file 644 1\n"));
  EXPECT_THAT(listing, HasSubstr("x/a/empty: dir 755\n"));
  EXPECT_THAT(listing, HasSubstr("x/two: file 600 2\n"));
  EXPECT_THAT(listing, Not(HasSubstr("plain.tar")));
}

TEST_F(ExecutorCopyTest, AddOfANonArchiveAndCopyOfAnArchiveCopyTheFile) {
  h_.Context("notes.txt", "just text");
  h_.ContextTar("keep.tar", {File("inside", "i")});
  ASSERT_OK(h_.Build("FROM scratch\nADD notes.txt /n/\nCOPY keep.tar /n/\n"));
  EXPECT_EQ(h_.ReadImageFile("/n/notes.txt"), "just text");
  EXPECT_TRUE(h_.ReadImageFile("/n/keep.tar").has_value());
  EXPECT_EQ(h_.ReadImageFile("/n/inside"), std::nullopt);
}

TEST_F(ExecutorCopyTest, AddOfAHostileArchiveCannotEscape) {
  fs::path outside = h_.root() / "outside";
  fs::create_directories(outside);
  h_.Context("dotdot.tar", testing::RawTar({{"../../escaped", '0', "x"}}));
  auto dotdot = h_.Build("FROM scratch\nADD dotdot.tar /d/\n");
  ASSERT_FALSE(dotdot.has_value());
  EXPECT_EQ(dotdot.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(dotdot.error().message(), HasSubstr("Dockerfile:2:"));
  // A link to the host, then a file through it: lands inside the layer (the
  // archive's root is the destination directory, as BuildKit extracts it).
  h_.Context("link.tar",
             testing::RawTar({{"out", '2', outside.string()}, {"out/pwned", '0', "x"}}));
  ASSERT_OK(h_.Build("FROM scratch\nADD link.tar /d/\n"));
  EXPECT_FALSE(fs::exists(outside / "pwned"));
  EXPECT_THAT(h_.LayerPaths(-1), ::testing::Contains("d/out"));
  EXPECT_THAT(h_.LayerPaths(-1),
              ::testing::Contains("d/" + outside.relative_path().string() + "/pwned"));
}

TEST_F(ExecutorCopyTest, AddUrlUsesTheFetcherAndChecksHashes) {
  BuildOptions o = h_.options();
  std::vector<std::string> fetched;
  o.fetcher = [&](const std::string& url, const fs::path& dest, std::string* last_modified) {
    fetched.push_back(url);
    *last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
    return WriteFileAtomic(dest, "downloaded");
  };
  ASSERT_OK(h_.Build("FROM scratch\nADD https://example.com/files/tool.bin /opt/\n", o));
  EXPECT_THAT(fetched, ElementsAre("https://example.com/files/tool.bin"));
  EXPECT_EQ(h_.ReadImageFile("/opt/tool.bin"), "downloaded");
  auto e = h_.LayerEntry(-1, "opt/tool.bin");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->mode & 07777, 0600u);
  EXPECT_EQ(e->mtime, 1445412480);  // Last-Modified
  std::string good = oci::Digest::Of("downloaded").ToString();
  ASSERT_OK(
      h_.Build(fmt::format("FROM scratch\nADD --checksum={} https://example.com/t /t\n", good), o));
  auto bad = h_.Build(fmt::format("FROM scratch\nADD --checksum={} https://example.com/t /t\n",
                                  oci::Digest::Of("other").ToString()),
                      o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("checksum mismatch"));
  BuildOptions none = h_.options();
  auto unconfigured = h_.Build("FROM scratch\nADD https://example.com/x /x\n", none);
  ASSERT_FALSE(unconfigured.has_value());
  EXPECT_EQ(unconfigured.error().code(), ErrorCode::kUnimplemented);
}

TEST_F(ExecutorCopyTest, DockerignoreExcludesAndReincludes) {
  h_.Context("app/main.c", "m");
  h_.Context("app/build/out.o", "o");
  h_.Context("app/build/keep.o", "k");
  h_.Context("secret.env", "s");
  h_.Context(".dockerignore", "secret.env\napp/build\n!app/build/keep.o\n");
  ASSERT_OK(h_.Build("FROM scratch\nCOPY . /src/\n"));
  std::vector<std::string> paths = h_.LayerPaths(-1);
  EXPECT_THAT(paths, ::testing::Contains("src/app/main.c"));
  EXPECT_THAT(paths, ::testing::Contains("src/app/build/keep.o"));
  EXPECT_THAT(paths, Not(::testing::Contains("src/app/build/out.o")));
  EXPECT_THAT(paths, Not(::testing::Contains("src/secret.env")));
  auto r = h_.Build("FROM scratch\nCOPY secret.env /\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr(".dockerignore"));
}

TEST_F(ExecutorCopyTest, WorkdirCreatesTheDirectoryOnlyWhenMissing) {
  ASSERT_OK(h_.Build("FROM base\nWORKDIR /srv/app\nWORKDIR /usr/bin\n"));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_EQ(img.manifest.layers.size(), 2u);  // /srv/app only
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("srv", "srv/app"));
  EXPECT_EQ(img.config.config.working_dir, "/usr/bin");
  EXPECT_TRUE(img.config.history.back().empty_layer);
  ASSERT_OK(h_.Build("FROM base\nWORKDIR rel\nWORKDIR sub\n"));
  ASSERT_OK_AND_ASSIGN(auto rel, h_.Load());
  EXPECT_EQ(rel.config.config.working_dir, "/rel/sub");
}

TEST_F(ExecutorCopyTest, WorkdirUnderAUserBelongsToThatUser) {
  auto r = h_.Build("FROM base\nUSER app\nWORKDIR /data/app\n");
  if (!IsRoot()) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_THAT(r.error().message(), HasSubstr("Dockerfile:3:"));
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_THAT(Top(), ElementsAre("data 5 755 1000:1000", "data/app 5 755 1000:1000"));
}

TEST_F(ExecutorCopyTest, CopyOntoTheRootDirectory) {
  h_.Context("rootfs/etc/hostname", "box");
  ASSERT_OK(h_.Build("FROM scratch\nCOPY rootfs /\n"));
  EXPECT_THAT(h_.LayerPaths(-1), ElementsAre("etc", "etc/hostname"));
}

}  // namespace
}  // namespace strata::builder
