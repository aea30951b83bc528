// `strata build` end to end: real Dockerfiles on a busybox base made with
// `strata import`, RUN through runc, results checked with real clients
// (podman run, skopeo inspect) and with `strata unpack`/`fsck`.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "oci/digest.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

class BuildIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlayfs, runc)";
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    // podman names images pulled from oci:PATH after the path, and refuses
    // upper case: keep the whole path lowercase.
    static int counter = 0;
    owner_ = fs::path("/tmp") /
             fmt::format("strata-it-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(Dir()));
    root_ = Dir() / "store";
    auto rootfs = Dir() / "busybox-rootfs";
    auto r =
        RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " + Q(rootfs));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = Strata("import " + Q(rootfs) + " busybox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  // Writes a context dir with the given files; returns its path.
  fs::path Context(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path c = Dir() / name;
    for (const auto& [rel, content] : files) testing::WriteTestFile(c / rel, content);
    return c;
  }

  // Builds and returns the printed digest (last stdout line); fails the test
  // on a non-zero exit.
  std::string Build(const fs::path& ctx, const std::string& flags = "") {
    auto r = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " build -q " + flags +
                        " " + Q(ctx) + " 2>" + Q(Dir() / "stderr.txt"));
    auto err = ReadFile(Dir() / "stderr.txt");
    EXPECT_EQ(r.exit_code, 0) << r.output << (err ? *err : "");
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    auto nl = out.rfind('\n');
    return nl == std::string::npos ? out : out.substr(nl + 1);
  }

  // podman run of an image in the store (through the oci: transport).
  CommandResult Podman(const std::string& ref, const std::string& cmd = "") {
    return RunCommand(
        "podman run --rm --runtime runc --ulimit nofile=1024:1024 "
        "--ulimit nproc=1024:1024 --network none oci:" +
        root_.string() + ":" + ref + " " + cmd +
        " 2>&1 | grep -v -e '^Getting image' -e '^Copying' "
        "-e '^Writing manifest' -e '^Storing signatures'");
  }

  nlohmann::json Inspect(const std::string& ref) {
    auto r = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " inspect " + ref +
                        " 2>/dev/null");
    return nlohmann::json::parse(r.output, nullptr, false);
  }

  // Every blob file: name -> (sha256 of content, ino, mtime ns, ctime ns, mode).
  std::map<std::string, std::string> BlobFingerprints() {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(root_ / "blobs" / "sha256")) {
      struct stat st;
      ::stat(e.path().c_str(), &st);
      auto d = oci::DigestFile(e.path().string());
      out[e.path().filename().string()] = fmt::format(
          "{} {} {}.{} {}.{} {:o}", d ? d->hex() : "?", st.st_ino, st.st_mtim.tv_sec,
          st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec, st.st_mode & 07777);
    }
    return out;
  }

  void ExpectFsckClean() {
    auto r = Strata("fsck");
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }

  fs::path Dir() const { return owner_ / "w"; }

  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  fs::path owner_;
  fs::path root_;
};

TEST_F(BuildIntegrationTest, ConfigSemanticsSeenByPodmanAndSkopeo) {
  auto ctx = Context("cfg", {{"Dockerfile",
                              "FROM busybox\n"
                              "ENV GREETING=hello NAME=world\n"
                              "WORKDIR /srv/app\n"
                              "RUN echo \"$GREETING $NAME\" > msg.txt\n"
                              "USER app\n"
                              "LABEL org.example.k=v\n"
                              "EXPOSE 8080/udp 80\n"
                              "ENTRYPOINT [\"/bin/sh\", \"-c\"]\n"
                              "CMD [\"echo $(id -u) $(pwd) $(cat msg.txt)\"]\n"}});
  Build(ctx, "-t cfg:1");
  auto out = Podman("cfg:1");
  EXPECT_THAT(out.output, HasSubstr("1000 /srv/app hello world")) << out.output;
  auto j = Inspect("cfg:1");
  ASSERT_TRUE(j.is_object());
  const auto& c = j["config"]["config"];
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["WorkingDir"], "/srv/app");
  EXPECT_EQ(c["Labels"]["org.example.k"], "v");
  EXPECT_TRUE(c["ExposedPorts"].contains("8080/udp"));
  EXPECT_TRUE(c["ExposedPorts"].contains("80/tcp"));
  auto sk = RunCommand("skopeo inspect --config oci:" + root_.string() + ":cfg:1");
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  EXPECT_THAT(sk.output, HasSubstr("GREETING=hello"));
  // History: one entry per instruction, RUN with a layer.
  int layers = 0;
  for (const auto& h : j["config"]["history"]) layers += h.value("empty_layer", false) ? 0 : 1;
  EXPECT_EQ(layers, static_cast<int>(j["manifest"]["layers"].size()));
}

TEST_F(BuildIntegrationTest, EntrypointResetsInheritedCmd) {
  auto base = Context("base", {{"Dockerfile", "FROM busybox\nCMD [\"echo\", \"base\"]\n"}});
  Build(base, "-t base:1");
  auto ctx = Context("ep", {{"Dockerfile", "FROM base:1\nENTRYPOINT [\"echo\", \"ep\"]\n"}});
  Build(ctx, "-t ep:1");
  auto j = Inspect("ep:1");
  EXPECT_FALSE(j["config"]["config"].contains("Cmd")) << j["config"]["config"].dump();
  EXPECT_THAT(Podman("ep:1").output, HasSubstr("ep"));
}

TEST_F(BuildIntegrationTest, RunDeletingLowerFileIsAWhiteoutPodmanHonours) {
  auto ctx = Context("wh", {{"Dockerfile",
                             "FROM busybox\nRUN rm /bin/vi && mkdir -p /d && touch /d/a /d/b\n"
                             "RUN rm /d/a\n"}});
  Build(ctx, "-t wh:1");
  auto out = Podman("wh:1", "sh -c 'ls /bin/vi; ls /d'");
  EXPECT_THAT(out.output, HasSubstr("No such file"));
  EXPECT_THAT(out.output, HasSubstr("b"));
  EXPECT_THAT(out.output, Not(HasSubstr(".wh.")));
  auto unpack = Dir() / "unpacked";
  auto r = Strata("unpack wh:1 " + Q(unpack));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(unpack / "bin" / "vi", *std::make_unique<std::error_code>()));
  EXPECT_FALSE(fs::exists(unpack / "d" / "a"));
  EXPECT_TRUE(fs::exists(unpack / "d" / "b"));
  EXPECT_FALSE(fs::exists(unpack / "d" / ".wh.a"));
}

TEST_F(BuildIntegrationTest, MultiStageCopyFromAndTarget) {
  auto ctx = Context("ms", {{"Dockerfile",
                             "FROM busybox AS builder\n"
                             "RUN mkdir /out && echo built > /out/artifact.txt\n"
                             "FROM busybox AS broken\n"
                             "RUN exit 7\n"
                             "FROM busybox AS final\n"
                             "COPY --from=builder /out/artifact.txt /artifact.txt\n"
                             "CMD [\"cat\", \"/artifact.txt\"]\n"}});
  // The broken stage is not needed by the target, so it never runs.
  Build(ctx, "-t ms:1 --target final");
  EXPECT_THAT(Podman("ms:1").output, HasSubstr("built"));
  Build(ctx, "-t ms:builder --target builder");
  EXPECT_THAT(Podman("ms:builder", "cat /out/artifact.txt").output, HasSubstr("built"));
  auto r = Strata("build -q --target nosuch " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("nosuch"));
}

// Independent stages run at the same time: each records when its RUN ran
// (/proc/uptime inside the container is the host's), and the intervals overlap.
TEST_F(BuildIntegrationTest, IndependentStagesRunInParallel) {
  auto ctx = Context("par", {{"Dockerfile",
                              "FROM busybox AS a\n"
                              "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && "
                              "cut -d' ' -f1 /proc/uptime > /end\n"
                              "FROM busybox AS b\n"
                              "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && "
                              "cut -d' ' -f1 /proc/uptime > /end\n"
                              "FROM busybox\n"
                              "COPY --from=a /start /a.start\nCOPY --from=a /end /a.end\n"
                              "COPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n"}});
  Build(ctx, "-t par:1");
  auto u = Dir() / "par-unpacked";
  ASSERT_EQ(Strata("unpack par:1 " + Q(u)).exit_code, 0);
  auto num = [&](const char* f) { return std::stod(ReadFile(u / f).value_or("0")); };
  EXPECT_LT(num("a.start"), num("b.end"));
  EXPECT_LT(num("b.start"), num("a.end"));
}

// docker's COPY destination rules: globs, directory contents, trailing
// slashes, relative destinations under WORKDIR, --parents, --exclude,
// symlinks copied as symlinks.
TEST_F(BuildIntegrationTest, CopyDestinationRulesMatchDocker) {
  auto ctx = Context("rules", {{"Dockerfile",
                                "FROM busybox\n"
                                "COPY src/*.txt /glob/\n"
                                "COPY dir /dircopy\n"
                                "COPY file /newdir/\n"
                                "COPY file /newname\n"
                                "COPY --parents a/b/c.txt /out/\n"
                                "COPY --exclude=*.md --exclude=sub src/ /ex/\n"
                                "COPY link /links/\n"
                                "WORKDIR /w\n"
                                "COPY file rel/\n"},
                               {"src/one.txt", "1"},
                               {"src/two.txt", "2"},
                               {"src/top.md", "t"},
                               {"src/sub/x.md", "x"},
                               {"dir/inner/d.txt", "d"},
                               {"a/b/c.txt", "c"},
                               {"file", "f"}});
  fs::create_symlink("file", ctx / "link");
  Build(ctx, "-t rules:1");
  auto u = Dir() / "rules-unpacked";
  ASSERT_EQ(Strata("unpack rules:1 " + Q(u)).exit_code, 0);
  auto r = RunCommand("cd " + Q(u) + " && find glob dircopy newdir newname out ex links w | sort");
  EXPECT_EQ(r.output,
            "dircopy\ndircopy/inner\ndircopy/inner/d.txt\nex\nex/one.txt\nex/two.txt\nglob\n"
            "glob/one.txt\nglob/two.txt\nlinks\nlinks/link\nnewdir\nnewdir/file\nnewname\nout\n"
            "out/a\nout/a/b\nout/a/b/c.txt\nw\nw/rel\nw/rel/file\n");
  EXPECT_TRUE(fs::is_symlink(u / "links/link"));
  EXPECT_EQ(fs::read_symlink(u / "links/link"), "file");
  // More than one source needs a directory destination.
  testing::WriteTestFile(ctx / "Dockerfile", "FROM busybox\nCOPY src/one.txt src/two.txt /x\n");
  auto bad = Strata("build -q " + Q(ctx));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("must be a directory and end with a /"));
}

TEST_F(BuildIntegrationTest, DockerfileFromFileFlagAndStdin) {
  auto ctx = Context("ff", {{"build/app.Dockerfile", "FROM busybox\nCOPY x /x\n"},
                            {"build/app.Dockerfile.dockerignore", "ignored\n"},
                            {"x", "x"},
                            {"ignored", "i"}});
  Build(ctx, "-f " + Q(ctx / "build/app.Dockerfile") + " -t ff:1");
  auto r = RunCommand("printf 'FROM busybox\\nCOPY ignored /i\\n' | " + std::string(STRATA_BINARY) +
                      " --root " + Q(root_) + " build -q -f - -t ff:2 " + Q(ctx));
  EXPECT_EQ(r.exit_code, 0) << r.output;  // the per-Dockerfile ignore file does not apply
  // With the per-Dockerfile .dockerignore, `ignored` is not in the context.
  testing::WriteTestFile(ctx / "build/app.Dockerfile", "FROM busybox\nCOPY ignored /i\n");
  auto bad = Strata("build -q -f " + Q(ctx / "build/app.Dockerfile") + " " + Q(ctx));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("app.Dockerfile:2:"));
  EXPECT_THAT(bad.output, HasSubstr("excluded by .dockerignore"));
}

// Regression: a --compression zstd build reused the gzip layers cached by an
// earlier build. The codec is part of the cache key now.
TEST_F(BuildIntegrationTest, CompressionZstdIsHonouredAfterACachedGzipBuild) {
  auto ctx =
      Context("zs", {{"Dockerfile", "FROM busybox\nRUN echo z > /z\nCOPY f /f\n"}, {"f", "f"}});
  Build(ctx, "-t zs:gzip");
  Build(ctx, "--compression zstd -t zs:zstd");
  auto j = Inspect("zs:zstd");
  const auto& layers = j["manifest"]["layers"];
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(layers[2]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_THAT(Podman("zs:zstd", "cat /z").output, HasSubstr("z"));
  EXPECT_EQ(Inspect("zs:gzip")["manifest"]["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip");
}

TEST_F(BuildIntegrationTest, RmiByTagOrImageIdKeepsBlobsUntilPrune) {
  auto ctx = Context("rmi", {{"Dockerfile", "FROM busybox\nRUN echo r > /r\n"}});
  std::string d = Build(ctx, "-t rmi:1");
  ASSERT_EQ(Strata("tag rmi:1 rmi:2").exit_code, 0);
  auto r = Strata("rmi rmi:2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Untagged: rmi:2"));
  ASSERT_EQ(Strata("tag rmi:1 rmi:3").exit_code, 0);
  r = Strata("rmi " + d.substr(7, 12));  // short image ID: every tag of the image
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Untagged: rmi:1"));
  EXPECT_THAT(r.output, HasSubstr("Untagged: rmi:3"));
  EXPECT_EQ(Strata("inspect " + d).exit_code, 0);  // still there by digest until prune
  EXPECT_EQ(Strata("rmi rmi:1").exit_code, 1);
  ASSERT_EQ(Strata("prune --all").exit_code, 0);
  EXPECT_EQ(Strata("inspect " + d).exit_code, 1);
  ExpectFsckClean();
}

TEST_F(BuildIntegrationTest, CopyChownChmodAndAddTarExtracts) {
  auto ctx = Context("cp", {{"Dockerfile",
                             "FROM busybox\n"
                             "COPY --chown=app:staff --chmod=0640 f.txt /data/f.txt\n"
                             "COPY --chmod=u+x,g-r dir/ /dir/\n"
                             "ADD arch.tar.gz /x/\n"
                             "ADD arch.tar.xz /xz/\n"
                             "ADD data.json.gz /y/\n"},
                            {"data.json", "{}"},
                            {"f.txt", "content"},
                            {"dir/a.sh", "echo a"},
                            {"dir/sub/b.txt", "b"},
                            {"src/inner/hello.txt", "from tar"}});
  auto r = RunCommand("tar -C " + Q(ctx / "src") + " -czf " + Q(ctx / "arch.tar.gz") + " inner");
  ASSERT_EQ(r.exit_code, 0);
  r = RunCommand("tar -C " + Q(ctx / "src") + " -cJf " + Q(ctx / "arch.tar.xz") +
                 " inner && gzip " + Q(ctx / "data.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Build(ctx, "-t cp:1");
  auto out = Podman("cp:1",
                    "sh -c 'stat -c \"%u %g %a\" /data/f.txt; stat -c %a /dir/a.sh; "
                    "cat /dir/sub/b.txt; echo; cat /x/inner/hello.txt; echo; "
                    "cat /xz/inner/hello.txt; echo; ls /y'");
  EXPECT_THAT(out.output, HasSubstr("1000 50 640"));
  EXPECT_THAT(out.output, HasSubstr("704"));                 // 0644, u+x -> 0744, g-r -> 0704
  EXPECT_THAT(out.output, HasSubstr("from tar\nfrom tar"));  // gzip and xz archives
  EXPECT_THAT(out.output, HasSubstr("data.json.gz"));        // not a tar: copied as is
}

TEST_F(BuildIntegrationTest, CacheHitsThenMissesWhenContentChangesWithSameSizeAndMtime) {
  auto ctx = Context("cache", {{"Dockerfile",
                                "FROM busybox\nRUN echo one > /one\nCOPY f.txt /f.txt\n"
                                "RUN cat /f.txt > /copy.txt\n"},
                               {"f.txt", "AAAA"}});
  std::string d1 = Build(ctx, "-t cache:1");
  // Fully cached: the same digest, every step CACHED.
  auto r = Strata("build --progress plain -t cache:1 " + Q(ctx) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(d1));
  int cached = 0;
  for (size_t p = r.output.find("CACHED"); p != std::string::npos;
       p = r.output.find("CACHED", p + 1))
    ++cached;
  EXPECT_EQ(cached, 3) << r.output;
  // Change the content, restore size and mtime: a stat-trusting cache would
  // serve the stale file (BuildKit #4950); ours must miss.
  struct stat before;
  ASSERT_EQ(::stat((ctx / "f.txt").c_str(), &before), 0);
  { std::ofstream(ctx / "f.txt", std::ios::trunc) << "BBBB"; }
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx / "f.txt").c_str(), times, 0), 0);
  std::string d2 = Build(ctx, "-t cache:1");
  EXPECT_NE(d1, d2);
  EXPECT_THAT(Podman("cache:1", "cat /copy.txt").output, HasSubstr("BBBB"));
  // --no-cache runs everything again.
  auto nc = Strata("build --progress plain --no-cache " + Q(ctx) + " 2>&1");
  EXPECT_THAT(nc.output, Not(HasSubstr("CACHED")));
}

TEST_F(BuildIntegrationTest, DockerignoreExcludesFromCopyAndCacheKey) {
  auto ctx = Context("ign", {{"Dockerfile", "FROM busybox\nCOPY . /ctx/\n"},
                             {".dockerignore", "secret.txt\nlogs/\n!logs/keep.log\n"},
                             {"secret.txt", "s3cr3t"},
                             {"logs/a.log", "a"},
                             {"logs/keep.log", "k"},
                             {"app.txt", "app"}});
  std::string d1 = Build(ctx, "-t ign:1");
  auto out = Podman("ign:1", "find /ctx -type f");
  EXPECT_THAT(out.output, HasSubstr("/ctx/app.txt"));
  EXPECT_THAT(out.output, HasSubstr("/ctx/logs/keep.log"));
  EXPECT_THAT(out.output, Not(HasSubstr("secret.txt")));
  EXPECT_THAT(out.output, Not(HasSubstr("a.log")));
  // Changing an ignored file does not invalidate the cache.
  testing::WriteTestFile(ctx / "secret.txt", "changed");
  EXPECT_EQ(Build(ctx, "-t ign:1"), d1);
}

TEST_F(BuildIntegrationTest, NetworkNoneLeavesOnlyLoopback) {
  auto ctx = Context("net", {{"Dockerfile", "FROM busybox\nRUN ls /sys/class/net > /net.txt\n"}});
  Build(ctx, "-t net:1 --network none");
  auto unpack = Dir() / "net-unpacked";
  ASSERT_EQ(Strata("unpack net:1 " + Q(unpack)).exit_code, 0);
  auto net = ReadFile(unpack / "net.txt");
  ASSERT_OK(net);
  EXPECT_EQ(*net, "lo\n");
}

TEST_F(BuildIntegrationTest, FailedRunNamesLineAndExitCodeAndTagsNothing) {
  auto good = Context("good", {{"Dockerfile", "FROM busybox\nRUN echo ok > /ok\n"}});
  std::string d1 = Build(good, "-t app:1");
  auto fp_before = BlobFingerprints();
  auto bad = Context("bad", {{"Dockerfile", "FROM busybox\nRUN echo about to fail && exit 3\n"}});
  auto r = Strata("build --progress plain -t app:1 " + Q(bad));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2: RUN echo about to fail && exit 3: exit code 3"));
  EXPECT_THAT(r.output, HasSubstr("about to fail"));
  auto j = Inspect("app:1");
  EXPECT_EQ(j["digest"], d1);
  auto fp_after = BlobFingerprints();
  for (const auto& [k, v] : fp_before) EXPECT_EQ(fp_after[k], v) << k;
  ExpectFsckClean();
}

TEST_F(BuildIntegrationTest, UnknownInstructionAndMissingBaseAreClearErrors) {
  auto ctx = Context("err", {{"Dockerfile", "FROM busybox\nCOPPY a b\n"}});
  auto r = Strata("build " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2: unknown instruction: COPPY"));
  auto ctx2 = Context("err2", {{"Dockerfile", "FROM nosuchimage:1\n"}});
  r = Strata("build " + Q(ctx2));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("nosuchimage:1"));
  auto ctx3 = Context("err3", {{"Dockerfile", "FROM busybox\nCOPY missing.txt /\n"}});
  r = Strata("build " + Q(ctx3));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.output, HasSubstr("missing.txt"));
  auto ctx4 = Context("err4", {{"Dockerfile", "FROM busybox\nCOPY ../outside /\n"}});
  r = Strata("build " + Q(ctx4));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("outside the build context"));
}

// The mission's core promise: building never changes what was built before.
TEST_F(BuildIntegrationTest, RebuildingATagNeverAltersOlderImages) {
  auto a = Context("a", {{"Dockerfile", "FROM busybox\nRUN echo A1 > /a\n"}});
  std::string a1 = Build(a, "-t a:latest");
  auto b = Context("b", {{"Dockerfile", "FROM a:latest\nRUN echo B > /b && rm /a\n"}});
  std::string b1 = Build(b, "-t b:latest");
  auto fp_before = BlobFingerprints();
  for (const auto& [name, fp] : fp_before) {
    EXPECT_THAT(fp, ::testing::EndsWith(" 444")) << name << " is not read-only";
  }
  testing::WriteTestFile(a / "Dockerfile", "FROM busybox\nRUN echo A2 > /a\n");
  std::string a2 = Build(a, "-t a:latest");
  EXPECT_NE(a1, a2);
  // Every blob that existed is byte-for-byte and inode-for-inode unchanged.
  auto fp_after = BlobFingerprints();
  for (const auto& [name, fp] : fp_before) {
    ASSERT_TRUE(fp_after.count(name)) << name << " disappeared";
    EXPECT_EQ(fp_after[name], fp) << name << " changed";
  }
  // The old A is still there by digest, and B still sees A1.
  EXPECT_EQ(Inspect("a@" + a1)["digest"], a1);
  ASSERT_EQ(Strata("tag a@" + a1 + " a:old").exit_code, 0);
  EXPECT_THAT(Podman("a:old", "cat /a").output, HasSubstr("A1"));
  EXPECT_THAT(Podman("b:latest", "sh -c 'cat /b; ls /a'").output, HasSubstr("No such file"));
  ExpectFsckClean();
}

TEST_F(BuildIntegrationTest, KilledBuildLeavesStoreAndTagsIntact) {
  auto good = Context("k0", {{"Dockerfile", "FROM busybox\nRUN echo ok > /ok\n"}});
  std::string d1 = Build(good, "-t keep:1");
  auto slow = Context(
      "k1",
      {{"Dockerfile", "FROM busybox\nRUN head -c 20000000 /dev/urandom > /big && sleep 30\n"}});
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(STRATA_BINARY, STRATA_BINARY, "--root", root_.c_str(), "build", "-q", "-t", "keep:1",
            slow.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  // The container the killed build started may still run; stop it.
  RunCommand("for c in $(runc --root " + Q(root_ / "runtime") +
             " list -q 2>/dev/null); do runc --root " + Q(root_ / "runtime") +
             " kill $c KILL; sleep 0.2; runc --root " + Q(root_ / "runtime") +
             " delete -f $c; done");
  EXPECT_EQ(Inspect("keep:1")["digest"], d1);
  ExpectFsckClean();
  auto pr = Strata("prune");
  EXPECT_EQ(pr.exit_code, 0) << pr.output;
  ExpectFsckClean();
  EXPECT_THAT(Podman("keep:1", "cat /ok").output, HasSubstr("ok"));
}

TEST_F(BuildIntegrationTest, SourceDateEpochMakesBuildsReproducible) {
  auto ctx =
      Context("sde", {{"Dockerfile", "FROM busybox\nCOPY f /f\nRUN echo x > /x\n"}, {"f", "same"}});
  // Two fresh stores, base imported at different times, the context file
  // rewritten in between: with SOURCE_DATE_EPOCH the digests are equal.
  std::vector<std::string> digests;
  for (const char* name : {"sde-store-1", "sde-store-2"}) {
    std::string env = "SOURCE_DATE_EPOCH=1700000000 ";
    std::string cmd = env + STRATA_BINARY + " --root " + Q(Dir() / name);
    auto imp = RunCommand(cmd + " import " + Q(Dir() / "busybox-rootfs") + " busybox:latest");
    ASSERT_EQ(imp.exit_code, 0) << imp.output;
    auto r = RunCommand(cmd + " build -q " + Q(ctx) + " 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    digests.push_back(r.output);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    testing::WriteTestFile(ctx / "f", "same");
  }
  EXPECT_EQ(digests[0], digests[1]);
}

TEST_F(BuildIntegrationTest, RunMountsCacheBindTmpfsSecret) {
  testing::WriteTestFile(Dir() / "secret.txt", "topsecret-value");
  auto ctx = Context(
      "mnt",
      {{"Dockerfile",
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/var/cache/app "
        "sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /runs.txt'\n"
        "RUN --mount=type=bind,source=src,target=/mnt/src "
        "cat /mnt/src/version.txt > /version.txt\n"
        "RUN --mount=type=tmpfs,target=/scratch "
        "sh -c 'echo tmp > /scratch/x && cat /scratch/x > /tmp.txt'\n"
        "RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /secretlen.txt\n"
        "RUN --mount=type=bind,source=src,target=/src,rw "
        "sh -c 'echo changed > /src/version.txt && cat /src/version.txt > /rw.txt'\n"},
       {"src/version.txt", "v1\n"}});
  std::string secret = "--secret id=tok,src=" + Q(Dir() / "secret.txt");
  Build(ctx, secret + " -t mnt:1");
  auto check = [&](const std::string& dir) {
    auto u = Dir() / dir;
    EXPECT_EQ(Strata("unpack mnt:1 " + Q(u)).exit_code, 0);
    EXPECT_EQ(*ReadFile(u / "version.txt"), *ReadFile(ctx / "src/version.txt"));
    EXPECT_EQ(*ReadFile(u / "tmp.txt"), "tmp\n");
    EXPECT_EQ(*ReadFile(u / "secretlen.txt"), "15\n");
    // A rw bind sees its own writes, which never reach the context.
    EXPECT_EQ(*ReadFile(u / "rw.txt"), "changed\n");
    EXPECT_NE(*ReadFile(ctx / "src/version.txt"), "changed\n");
    EXPECT_FALSE(fs::exists(u / "src"));
    // Mount points leave nothing behind in the image.
    EXPECT_FALSE(fs::exists(u / "var/cache/app"));
    EXPECT_FALSE(fs::exists(u / "mnt/src"));
    EXPECT_FALSE(fs::exists(u / "run/secrets"));
    return ReadFile(u / "runs.txt").value_or("");
  };
  EXPECT_EQ(check("u1"), "1\n");
  // A changed bind source invalidates its step; the cache dir persists.
  testing::WriteTestFile(ctx / "src/version.txt", "v2\n");
  Build(ctx, secret + " --no-cache -t mnt:1");
  EXPECT_EQ(check("u2"), "2\n");
  // The secret's bytes are in no blob.
  auto grep = RunCommand("for f in " + Q(root_ / "blobs/sha256") +
                         "/*; do zcat -f \"$f\"; done "
                         "| grep -c topsecret-value");
  EXPECT_EQ(grep.output, "0\n");
  // A required secret that was not passed is a clear error.
  auto r = Strata("build -q --no-cache " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:5: secret tok not found"));
}

// ADD <url> downloads through libcurl (a loopback python http.server here),
// keeps Last-Modified as the mtime, verifies --checksum, and names the URL on
// failure.
// Issue 9, item 4: a .env listed in .dockerignore was read by a RUN through
// a bind mount of the context and ended up in an image. BuildKit applies
// .dockerignore to bind mounts of the context, ro and rw alike.
TEST_F(BuildIntegrationTest, DockerignoreAppliesToRunBindMountsOfTheContext) {
  auto ctx = Context("ignbind", {{"Dockerfile",
                                  "FROM busybox\n"
                                  "RUN --mount=type=bind,target=/ctx "
                                  "ls -a /ctx /ctx/sub > /seen.txt; cat /ctx/.env >> /seen.txt; "
                                  "cat /ctx/sub/secret.key >> /seen.txt; true\n"
                                  "RUN --mount=type=bind,source=sub,target=/s,rw "
                                  "ls -a /s > /seen-rw.txt; true\n"},
                                 {".dockerignore", ".env\nsub/*.key\n"},
                                 {".env", "PASSWORD=hunter2\n"},
                                 {"app.txt", "app\n"},
                                 {"sub/secret.key", "KEY\n"},
                                 {"sub/ok.txt", "ok\n"}});
  Build(ctx, "-t ignbind:1");
  auto out = Podman("ignbind:1", "cat /seen.txt /seen-rw.txt");
  EXPECT_THAT(out.output, HasSubstr("app.txt"));
  EXPECT_THAT(out.output, HasSubstr("ok.txt"));
  EXPECT_THAT(out.output, Not(HasSubstr("hunter2")));
  EXPECT_THAT(out.output, Not(HasSubstr(".env")));
  EXPECT_THAT(out.output, Not(HasSubstr("secret.key")));
  EXPECT_THAT(out.output, Not(HasSubstr("KEY")));
  // Changing an ignored file does not invalidate the step; a bound one does.
  testing::WriteTestFile(ctx / ".env", "PASSWORD=changed\n");
  auto r = Strata("build --progress plain -t ignbind:2 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("changed")));
  EXPECT_EQ(Inspect("ignbind:1")["digest"], Inspect("ignbind:2")["digest"]) << r.output;
  // A bind of an excluded source is an error naming it.
  auto bad = Context("ignbind-bad", {{"Dockerfile",
                                      "FROM busybox\n"
                                      "RUN --mount=type=bind,source=.env,target=/e cat /e\n"},
                                     {".dockerignore", ".env\n"},
                                     {".env", "PASSWORD=hunter2\n"}});
  r = Strata("build -q " + Q(bad));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.output, HasSubstr(".env"));
  EXPECT_THAT(r.output, Not(HasSubstr("hunter2")));
}

// Issue 11: mounts without target= go to the WORKDIR; secret env= reaches the
// RUN's environment (and nothing else); cache sharing=locked waits for sole
// use and sharing=private takes a fresh directory when the cache is busy.
// A cache mount a real RUN filled is build cache: `prune --all` removes it
// (and `df` shows it gone); a plain prune keeps it.
TEST_F(BuildIntegrationTest, PruneAllRemovesRunCacheMounts) {
  auto ctx = Context("cm", {{"Dockerfile",
                             "FROM busybox\n"
                             "RUN --mount=type=cache,id=big,target=/c "
                             "sh -c 'head -c 200000 /dev/zero > /c/blob'\n"}});
  Build(ctx, "-t cm:1");
  fs::path cache_dir = root_ / "cache-mounts" / oci::Digest::Of("big").hex().substr(0, 32);
  ASSERT_TRUE(fs::exists(cache_dir / "blob"));
  ASSERT_EQ(Strata("prune").exit_code, 0);
  EXPECT_TRUE(fs::exists(cache_dir / "blob"));
  auto r = Strata("prune --all");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 cache mounts"));
  EXPECT_FALSE(fs::exists(cache_dir));
  r = Strata("df --json");
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  for (const auto& u : j["usage"]) {
    if (u["type"] == "Cache mounts") {
      EXPECT_EQ(u["size"], 0);
    }
  }
}

TEST_F(BuildIntegrationTest, RunMountDefaultsSecretEnvAndCacheSharing) {
  auto secret = Dir() / "token.txt";
  testing::WriteTestFile(secret, "s3cr3t-value");
  auto ctx = Context("mnt", {{"Dockerfile",
                              "FROM busybox\n"
                              "WORKDIR /w\n"
                              "RUN --mount=type=bind,source=sub cat /w/f.txt > /bound.txt\n"
                              "RUN --mount=type=secret,id=tok,env=TOKEN "
                              "--mount=type=secret,id=tok,target=/s/t,uid=1000,mode=0440 "
                              "sh -c 'echo len=${#TOKEN} $(stat -c %u:%a /s/t) > /tok.txt'\n"
                              "RUN --mount=type=cache,id=shr,target=/c,sharing=private "
                              "sh -c 'echo private > /c/mark; ls /c > /private.txt'\n"},
                             {"sub/f.txt", "from-sub\n"}});
  // Hold the cache's lock as another user would: the private mount must not
  // wait, and must not write into the shared directory.
  fs::path cache_dir = root_ / "cache-mounts" / oci::Digest::Of("shr").hex().substr(0, 32);
  ASSERT_OK(MakeDirs(cache_dir.parent_path()));
  int lock = ::open((cache_dir.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);
  Build(ctx, "--secret id=tok,src=" + Q(secret) + " -t mnt:1");
  auto out = Podman("mnt:1", "cat /bound.txt /tok.txt /private.txt");
  EXPECT_THAT(out.output, HasSubstr("from-sub"));
  EXPECT_THAT(out.output, HasSubstr("len=12 1000:440"));
  EXPECT_THAT(out.output, HasSubstr("mark"));
  EXPECT_FALSE(fs::exists(cache_dir / "mark"));
  auto cfg = Inspect("mnt:1").dump();
  EXPECT_THAT(cfg, Not(HasSubstr("s3cr3t")));
  // The CLI's buildx forms: env=VAR, and id alone (the variable, then a file).
  auto envs = Context("envsec", {{"Dockerfile",
                                  "FROM busybox\n"
                                  "RUN --mount=type=secret,id=a,env=A --mount=type=secret,id=B "
                                  "sh -c 'echo \"$A $(cat /run/secrets/B)\" > /s.txt'\n"}});
  auto r =
      RunCommand("A_SRC=from-env B=by-id " + std::string(STRATA_BINARY) + " --root " + Q(root_) +
                 " build -q --secret id=a,env=A_SRC --secret id=B -t envsec:1 " + Q(envs));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Podman("envsec:1", "cat /s.txt").output, "from-env by-id\n");
  r = Strata("build -q --secret id=a,src=x,bogus=1 " + Q(envs));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bogus=1"));
  // sharing=locked waits while another user holds the cache.
  auto locked = Context("locked", {{"Dockerfile",
                                    "FROM busybox\n"
                                    "RUN --mount=type=cache,id=shr,target=/c,sharing=locked "
                                    "sh -c 'date +%s > /c/when; cp /c/when /when'\n"}});
  auto start = std::chrono::steady_clock::now();
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    ::flock(lock, LOCK_UN);
  });
  Build(locked, "-t locked:1");
  release.join();
  ::close(lock);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1900));
  EXPECT_TRUE(fs::exists(cache_dir / "when"));
}

// A COPY into /home/u re-created /home/u as root:root 0755 in its layer,
// taking the user's home away; WORKDIR under USER made root-owned dirs.
TEST_F(BuildIntegrationTest, CopyAndWorkdirKeepTheImagesDirectoriesAndOwners) {
  auto ctx = Context("own", {{"Dockerfile",
                              "FROM busybox\n"
                              "RUN mkdir -p /home/u && chown 1000:1000 /home/u && "
                              "chmod 700 /home/u\n"
                              "COPY f /home/u/f\n"
                              "USER 1000\n"
                              "WORKDIR /home/u/work\n"
                              "RUN touch /home/u/work/ok\n"
                              "COPY --chown=7:7 f /new/dir/f\n"},
                             {"f", "x\n"}});
  Build(ctx, "-t own:1");
  auto out = Dir() / "own-unpacked";
  ASSERT_EQ(Strata("unpack own:1 " + Q(out)).exit_code, 0);
  auto owner = [](const fs::path& p) {
    struct stat st {};
    ::lstat(p.c_str(), &st);
    return fmt::format("{}:{} {:o}", st.st_uid, st.st_gid, st.st_mode & 07777);
  };
  EXPECT_EQ(owner(out / "home" / "u"), "1000:1000 700");
  EXPECT_EQ(owner(out / "home"), "0:0 755");
  EXPECT_EQ(owner(out / "home" / "u" / "work"), "1000:1000 755");
  EXPECT_TRUE(fs::exists(out / "home" / "u" / "work" / "ok"));
  EXPECT_EQ(owner(out / "new" / "dir"), "7:7 755");
  // --parents: the parents below the destination keep the image's metadata.
  testing::WriteTestFile(ctx / "home" / "u" / "p.txt", "p\n");
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\n"
                         "RUN mkdir -p /home/u && chown 1000:1000 /home/u && chmod 700 /home/u\n"
                         "COPY --parents home/u/p.txt /\n");
  Build(ctx, "-t own:2");
  auto out2 = Dir() / "own2-unpacked";
  ASSERT_EQ(Strata("unpack own:2 " + Q(out2)).exit_code, 0);
  EXPECT_EQ(owner(out2 / "home" / "u"), "1000:1000 700");
  EXPECT_TRUE(fs::exists(out2 / "home" / "u" / "p.txt"));
}

// Issue 11: flags and semantics that were accepted and ignored, or differed
// from BuildKit.
TEST_F(BuildIntegrationTest, UnpackLinkOnbuildScratchAndEpochBuildArg) {
  auto tree = Dir() / "tree";
  testing::WriteTestFile(tree / "inside.txt", "inside\n");
  auto ctx = Context("fid", {{"f", "f\n"}});
  auto r = RunCommand("tar -C " + Q(tree) + " -cf " + Q(ctx / "a.tar") + " inside.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // ADD --unpack=false keeps the archive; the default extracts it.
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox AS base\n"
                         "ONBUILD RUN echo triggered > /trig\n"
                         "FROM base\n"
                         "ADD --unpack=false a.tar /kept/\n"
                         "ADD a.tar /unpacked/\n"
                         "RUN cat /trig > /trig-seen\n");
  Build(ctx, "-t fid:1");
  auto out = Dir() / "fid-unpacked";
  ASSERT_EQ(Strata("unpack fid:1 " + Q(out)).exit_code, 0);
  EXPECT_TRUE(fs::exists(out / "kept" / "a.tar"));
  EXPECT_TRUE(fs::exists(out / "unpacked" / "inside.txt"));
  EXPECT_EQ(*ReadFile(out / "trig-seen"), "triggered\n");
  // FROM scratch: WorkingDir "/" and the default PATH; the epoch build arg.
  testing::WriteTestFile(ctx / "Dockerfile", "FROM scratch\nCOPY f /f\n");
  Build(ctx, "--build-arg SOURCE_DATE_EPOCH=1700000000 -t scratch:1");
  auto j = Inspect("scratch:1");
  EXPECT_EQ(j["config"]["config"]["WorkingDir"], "/");
  EXPECT_THAT(j["config"]["config"]["Env"].dump(), HasSubstr("PATH=/usr/local/sbin"));
  EXPECT_EQ(j["config"]["created"], "2023-11-14T22:13:20Z");
  // COPY --link: a changed base reuses the cached layer (BuildKit's rebase).
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\nRUN echo one > /base\nCOPY --link f /linked\n");
  Build(ctx, "-t link:1");
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\nRUN echo two > /base\nCOPY --link f /linked\n");
  r = Strata("build --progress plain -t link:2 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::MatchesRegex("(.|\n)*COPY --link f /linked(.|\n)*CACHED(.|\n)*"))
      << r.output;
  auto l1 = Inspect("link:1")["manifest"]["layers"];
  auto l2 = Inspect("link:2")["manifest"]["layers"];
  ASSERT_EQ(l1.size(), l2.size());
  EXPECT_NE(l1[l1.size() - 2]["digest"], l2[l2.size() - 2]["digest"]);
  EXPECT_EQ(l1.back()["digest"], l2.back()["digest"]);
  EXPECT_EQ(Podman("link:2", "cat /base /linked").output, "two\nf\n");
  // A RUN that changes nothing adds no layer (the runtime's mount points for
  // /etc/hosts and secrets never reach one), as with BuildKit.
  auto secret = Dir() / "s.txt";
  testing::WriteTestFile(secret, "s");
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\nRUN true\n"
                         "RUN --mount=type=secret,id=s,target=/run/deep/s true\n");
  Build(ctx, "--no-cache --secret id=s,src=" + Q(secret) + " -t nochange:1");
  auto nc = Inspect("nochange:1");
  EXPECT_EQ(nc["manifest"]["layers"].size(), Inspect("busybox:latest")["manifest"]["layers"].size())
      << nc.dump();
  // COPY --parents with the "/./" pivot keeps only what follows it.
  testing::WriteTestFile(ctx / "src" / "sub" / "deep" / "x.txt", "x\n");
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM scratch\nCOPY --parents ./src/./sub/deep/x.txt /p1/\n"
                         "COPY --parents src/sub /p2/\nCOPY --parents ./src/./sub /p3/\n");
  Build(ctx, "-t parents:1");
  auto pout = Dir() / "parents-unpacked";
  ASSERT_EQ(Strata("unpack parents:1 " + Q(pout)).exit_code, 0);
  EXPECT_TRUE(fs::exists(pout / "p1" / "sub" / "deep" / "x.txt"));
  EXPECT_TRUE(fs::exists(pout / "p2" / "src" / "sub" / "deep" / "x.txt"));
  EXPECT_TRUE(fs::exists(pout / "p3" / "sub" / "deep" / "x.txt"));
  // A RUN heredoc with a shebang runs with that interpreter (not /bin/sh).
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\nRUN <<EOF\n#!/bin/awk -f\n"
                         "BEGIN { print \"from awk\" > \"/awk.txt\" }\nEOF\n");
  Build(ctx, "-t shebang:1");
  EXPECT_EQ(Podman("shebang:1", "cat /awk.txt").output, "from awk\n");
  // FROM --platform: the stage is built for that platform; this busybox has
  // no arm64 image, which the error names (multi_platform_integration_test.cc
  // builds arm64 for real); the build's own platform works.
  testing::WriteTestFile(ctx / "Dockerfile", "FROM --platform=linux/arm64 busybox\nRUN true\n");
  r = Strata("build -q --pull=never " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:1: FROM busybox:latest: image busybox:latest is for "
                                  "linux/amd64, not linux/arm64 (it offers: linux/amd64)"));
  testing::WriteTestFile(ctx / "Dockerfile", "FROM --platform=$BUILDPLATFORM busybox\nRUN true\n");
  Build(ctx);
}

TEST_F(BuildIntegrationTest, AddUrlDownloadsAndVerifiesChecksum) {
  if (!testing::HaveTool("python3")) GTEST_SKIP() << "python3 not installed";
  auto www = Dir() / "www";
  testing::WriteTestFile(www / "file.txt", "remote content\n");
  int port = registry::testing::FreePort();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::chdir(www.c_str());
    ::execlp("python3", "python3", "-m", "http.server", std::to_string(port).c_str(), "--bind",
             "127.0.0.1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{pid};
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  for (int i = 0; i < 50 && RunCommand("wget -q -O /dev/null " + base + "/file.txt || curl -sf " +
                                       base + "/file.txt")
                                    .exit_code != 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string sum = oci::Digest::Of("remote content\n").ToString();
  auto ctx =
      Context("addurl", {{"Dockerfile", "FROM busybox\nADD " + base +
                                            "/file.txt /dl/\n"
                                            "ADD --checksum=" +
                                            sum + " " + base + "/file.txt /dl/again.txt\n"}});
  Build(ctx, "-t addurl:1");
  auto u = Dir() / "addurl-unpacked";
  ASSERT_EQ(Strata("unpack addurl:1 " + Q(u)).exit_code, 0);
  EXPECT_EQ(*ReadFile(u / "dl/file.txt"), "remote content\n");
  EXPECT_EQ(*ReadFile(u / "dl/again.txt"), "remote content\n");
  struct stat st;
  ASSERT_EQ(::stat((u / "dl/file.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM busybox\nADD --checksum=sha256:" + std::string(64, 'a') + " " +
                             base + "/file.txt /x\n");
  auto r = Strata("build -q " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2:"));
  EXPECT_THAT(r.output, HasSubstr("checksum mismatch"));
  testing::WriteTestFile(ctx / "Dockerfile", "FROM busybox\nADD " + base + "/missing.txt /x\n");
  r = Strata("build -q " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("missing.txt"));
  EXPECT_THAT(r.output, HasSubstr("404"));
}

// --cache-to exports the build cache to a registry; a fresh store with
// --cache-from reuses every step (no RUN runs) and gets the same digest.
// docker buildx's --add-host, --ulimit and --shm-size reach every RUN; the
// result is read through -o type=local. A changed value is a cache miss.
TEST_F(BuildIntegrationTest, AddHostUlimitAndShmSizeReachEveryRun) {
  auto ctx = Context("runopts", {{"Dockerfile",
                                  "FROM busybox\n"
                                  "RUN grep db /etc/hosts > /hosts.txt; ulimit -n > /nofile.txt; "
                                  "df -k /dev/shm | tail -1 > /shm.txt\n"}});
  fs::path out = Dir() / "out";
  Build(ctx,
        "--add-host db:10.1.2.3 --add-host db6=fd00::7 --ulimit nofile=512:1024 "
        "--shm-size 96m -o type=local,dest=" +
            Q(out));
  auto hosts = ReadFile(out / "hosts.txt");
  ASSERT_OK(hosts);
  EXPECT_EQ(*hosts, "10.1.2.3\tdb\nfd00::7\tdb6\n");
  auto nofile = ReadFile(out / "nofile.txt");
  ASSERT_OK(nofile);
  EXPECT_EQ(*nofile, "512\n");
  auto shm = ReadFile(out / "shm.txt");
  ASSERT_OK(shm);
  EXPECT_THAT(*shm, HasSubstr(" 98304 ")) << *shm;  // 96 MiB in KiB
  // Other values: the RUN runs again (part of its cache key).
  auto r = RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) +
                      " build --progress plain --add-host db:10.1.2.4 --ulimit nofile=512:1024 "
                      "--shm-size 96m " +
                      Q(ctx) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("CACHED"))) << r.output;
  // Above this process's hard limit: refused, never silently lowered.
  r = Strata("build --ulimit nofile=1:99999999999 " + Q(ctx) + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output,
              HasSubstr("--ulimit nofile=1:99999999999: above this process's hard limit"));
}

// The default network is set up once per build and reused by its RUN steps
// (a namespace and slirp4netns cost 33-57 ms per step); it is gone after.
TEST_F(BuildIntegrationTest, RunStepsOfOneBuildShareOneDefaultNetworkStoppedAfterIt) {
  auto ctx =
      Context("netpool", {{"Dockerfile",
                           "FROM busybox\n"
                           "RUN readlink /proc/self/ns/net > /n1 && grep tap0 /proc/net/dev\n"
                           "RUN readlink /proc/self/ns/net > /n2 && grep tap0 /proc/net/dev\n"}});
  fs::path out = Dir() / "out";
  Build(ctx, "-o type=local,dest=" + Q(out));
  auto n1 = ReadFile(out / "n1");
  auto n2 = ReadFile(out / "n2");
  ASSERT_OK(n1);
  ASSERT_OK(n2);
  EXPECT_THAT(*n1, HasSubstr("net:["));
  EXPECT_EQ(*n1, *n2);
  auto host_ns = fs::read_symlink("/proc/self/ns/net");
  EXPECT_NE(*n1, host_ns.string() + "\n");
  // Nothing of the network outlives the build: no bundle or network dir.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "bundles", ec)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

TEST_F(BuildIntegrationTest, CacheToAndFromARegistryShareTheCacheAcrossStores) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::string host = reg.host();
  ASSERT_EQ(
      Strata("--tls-verify=false push busybox:latest " + host + "/lib/busybox:1 2>&1").exit_code,
      0);
  auto ctx = Context("cc", {{"Dockerfile", "FROM " + host +
                                               "/lib/busybox:1\nENV A=1\n"
                                               "RUN echo ran && date +%s%N > /stamp\n"
                                               "COPY f /f\n"},
                            {"f", "f"}});
  root_ = Dir() / "ci-runner-1";
  std::string d1 = Build(ctx, "--tls-verify=false --cache-to " + host + "/cache/app:main");
  root_ = Dir() / "ci-runner-2";
  auto r = Strata("--tls-verify=false build --progress plain --cache-from " + host +
                  "/cache/app:main " + Q(ctx) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(d1));
  EXPECT_THAT(r.output, Not(HasSubstr("#3 ran")));  // the RUN did not run again
  // A cache image that does not exist yet is a warning, not a failure.
  root_ = Dir() / "ci-runner-3";
  auto first = Strata("--tls-verify=false build -q --cache-from " + host + "/cache/app:none " +
                      Q(ctx) + " 2>&1");
  EXPECT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("WARNING: --cache-from"));
}

// FROM a registry image that is not in the store pulls it; --push sends the
// result; a real client (skopeo) and a fresh strata store read it back.
TEST_F(BuildIntegrationTest, BuildPullsBaseAndPushesResultToARealRegistry) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::string host = reg.host();
  auto push = Strata("--tls-verify=false push busybox:latest " + host + "/lib/busybox:1 2>&1");
  ASSERT_EQ(push.exit_code, 0) << push.output;
  auto ctx = Context("pp", {{"Dockerfile", "FROM " + host +
                                               "/lib/busybox:1\n"
                                               "RUN echo from-registry > /r.txt\n"
                                               "CMD [\"cat\", \"/r.txt\"]\n"}});
  root_ = Dir() / "fresh-store";  // the base is not here: it must be pulled
  std::string d = Build(ctx, "--tls-verify=false --push -t " + host + "/team/app:1");
  ASSERT_FALSE(d.empty());
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + host + "/team/app:1");
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  EXPECT_THAT(sk.output, HasSubstr(d));
  root_ = Dir() / "third-store";
  auto pull = Strata("--tls-verify=false pull " + host + "/team/app:1 2>&1");
  ASSERT_EQ(pull.exit_code, 0) << pull.output;
  EXPECT_THAT(pull.output, HasSubstr(d));
  EXPECT_THAT(Podman(host + "/team/app:1").output, HasSubstr("from-registry"));
  ExpectFsckClean();
}

// The base was pulled from the destination registry: --push mounts its
// layers from the repository they came from and uploads only the new ones.
TEST_F(BuildIntegrationTest, BuildPushMountsBaseLayersFromWhereTheyWerePulled) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::string host = reg.host();
  auto push = Strata("--tls-verify=false push busybox:latest " + host + "/lib/busybox:1 2>&1");
  ASSERT_EQ(push.exit_code, 0) << push.output;
  EXPECT_THAT(push.output, HasSubstr("Blobs: 2 uploaded"));
  auto ctx = Context(
      "mnt-push", {{"Dockerfile", "FROM " + host + "/lib/busybox:1\nCOPY f /f\n"}, {"f", "app"}});
  root_ = Dir() / "fresh-store";  // pulls the base, recording where its blobs are
  auto r = Strata("--tls-verify=false build --progress plain --push -t " + host + "/team/app:1 " +
                  Q(ctx) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("mounted from lib/busybox"));
  EXPECT_THAT(r.output, HasSubstr("Blobs: 2 uploaded"));  // the COPY layer and the config
  EXPECT_THAT(r.output, HasSubstr("1 mounted"));          // busybox's one layer
  // A push of the same image to a third repository mounts everything.
  auto again =
      Strata("--tls-verify=false push " + host + "/team/app:1 " + host + "/team/copy:1 2>&1");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("Blobs: 0 uploaded (0B), 3 mounted, 0 already present"));
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + host + "/team/copy:1");
  EXPECT_EQ(sk.exit_code, 0) << sk.output;
  ExpectFsckClean();
}

// A build that never reads its base's file system (COPY --link, metadata)
// fetches only the base's manifest and config; push mounts the base layer;
// the verbs that read layers (unpack) fetch it from its recorded source.
TEST_F(BuildIntegrationTest, LazyBaseIsNeverDownloadedUnlessRead) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::string host = reg.host();
  ASSERT_EQ(
      Strata("--tls-verify=false push busybox:latest " + host + "/lib/busybox:1 2>&1").exit_code,
      0);
  auto ctx = Context(
      "lazy", {{"Dockerfile", "FROM " + host + "/lib/busybox:1\nCOPY --link f /f\nENV A=1\n"},
               {"f", "app"}});
  root_ = Dir() / "lazy-store";
  auto r = Strata("--tls-verify=false build --progress plain --push -t " + host + "/team/lazy:1 " +
                  Q(ctx) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("mounted from lib/busybox"));
  auto j = Inspect(host + "/team/lazy:1");
  ASSERT_EQ(j["manifest"]["layers"].size(), 2u);
  const std::string base_layer = j["manifest"]["layers"][0]["digest"].get<std::string>();
  EXPECT_FALSE(fs::exists(root_ / "blobs" / "sha256" / base_layer.substr(7)));
  EXPECT_EQ(Strata("history " + host + "/team/lazy:1").exit_code, 0);
  EXPECT_EQ(Strata("images").exit_code, 0);
  ExpectFsckClean();  // an absent layer with a recorded source is no problem
  // A real client pulls the pushed image whole.
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + host + "/team/lazy:1");
  EXPECT_EQ(sk.exit_code, 0) << sk.output;
  // unpack reads the layers: the base layer is fetched, verified, on demand.
  auto u = Dir() / "lazy-unpacked";
  auto un = Strata("--tls-verify=false unpack " + host + "/team/lazy:1 " + Q(u) + " 2>&1");
  ASSERT_EQ(un.exit_code, 0) << un.output;
  EXPECT_TRUE(fs::exists(u / "bin" / "busybox"));
  EXPECT_TRUE(fs::exists(u / "f"));
  EXPECT_TRUE(fs::exists(root_ / "blobs" / "sha256" / base_layer.substr(7)));
  // An output that reads layers fetches a lazy base first (fresh store).
  root_ = Dir() / "lazy-store-output";
  auto out = Dir() / "lazy-out";
  auto o =
      Strata("--tls-verify=false build -q -o type=local,dest=" + Q(out) + " " + Q(ctx) + " 2>&1");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_TRUE(fs::exists(out / "bin" / "busybox"));
  EXPECT_TRUE(fs::exists(out / "f"));
}

// BuildKit's build checks: printed by a build, fatal with check=error=true
// before any step runs, and alone with --check (exit 1 on violations).
TEST_F(BuildIntegrationTest, BuildChecksWarnFailAndCheckOnly) {
  auto ctx = Context("lint", {{"Dockerfile",
                               "FROM busybox AS Build\n"
                               "ENV HOME_DIR /root\n"
                               "COPY f /x$NOPE\n"
                               "RUN touch /ran\n"
                               "CMD echo hi\n"},
                              {"f", "x"}});
  auto r = Strata("build -q -t lint:1 " + Q(ctx) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("WARNING: StageNameCasing: Stage name 'Build' should be "
                                  "lowercase (line 1)"));
  EXPECT_THAT(r.output, HasSubstr("WARNING: LegacyKeyValueFormat:"));
  // busybox is in the store, so its ENV is known: $NOPE is undefined.
  EXPECT_THAT(r.output, HasSubstr("WARNING: UndefinedVar: Usage of undefined variable '$NOPE' "
                                  "(line 3)"));
  EXPECT_THAT(r.output, HasSubstr("WARNING: JSONArgsRecommended:"));

  auto check = Strata("build --check " + Q(ctx));
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.output, HasSubstr("Check complete, 4 warnings have been found!"));
  EXPECT_THAT(check.output, HasSubstr("WARNING: UndefinedVar - "
                                      "https://docs.docker.com/go/dockerfile/rule/undefined-var/"));

  // error=true: fails before anything runs (no RUN, no image).
  testing::WriteTestFile(ctx / "Dockerfile",
                         "# check=error=true\nFROM busybox\nRUN touch /ran\nCMD echo hi\n");
  auto failed = Strata("build -q -t lint:2 " + Q(ctx) + " 2>&1");
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.output,
              HasSubstr("Dockerfile: lint violation found for rules: JSONArgsRecommended"));
  EXPECT_FALSE(Inspect("lint:2").is_object());
  // The build argument wins over the directive, as in BuildKit.
  Build(ctx, "-t lint:3 --build-arg BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended");
  EXPECT_TRUE(Inspect("lint:3").is_object());
  testing::WriteTestFile(ctx / "Dockerfile", "FROM busybox\nCMD [\"true\"]\n");
  auto clean = Strata("build --check " + Q(ctx));
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_THAT(clean.output, HasSubstr("Check complete, no warnings found."));
}

}  // namespace
}  // namespace strata
