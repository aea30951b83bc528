// `strata build` with docker buildx's outputs, metadata file and cache
// syntax, under the binary, checked by real clients: a directory comparison
// for type=local, `tar` for type=tar, `skopeo inspect oci-archive:` and
// `umoci` for type=oci, `skopeo inspect docker-archive:` and `podman load`
// for type=docker, a local registry for type=registry and the cache.
// Images are FROM scratch + COPY (no runc needed).
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/util/file_util.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
std::string Q(const fs::path& p) { return Q(p.string()); }

std::string LastLine(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(s.rfind('\n') + 1);
}

class BuildOutputIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (strata build)";
    static int counter = 0;
    owner_ = fs::path("/tmp") /
             fmt::format("strata-out-it-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(owner_));
    root_ = owner_ / "store";
    // Two stages: the final image has two layers and a file the second
    // replaces, so a flattened filesystem differs from any one layer.
    ctx_ = owner_ / "ctx";
    testing::WriteTestFile(ctx_ / "Dockerfile",
                           "FROM scratch AS base\nCOPY app /app\n"
                           "FROM base\nCOPY top.txt /app/a.txt\nCOPY n.txt /app/sub/n.txt\n");
    testing::WriteTestFile(ctx_ / "app/a.txt", "base\n");
    testing::WriteTestFile(ctx_ / "app/keep.txt", "keep\n");
    testing::WriteTestFile(ctx_ / "top.txt", "top\n");
    testing::WriteTestFile(ctx_ / "n.txt", "new\n");
  }
  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  // stdout only (or into `stdout_file`); stderr goes to err_.
  CommandResult Strata(const std::string& args, const fs::path& root = {}) {
    auto r =
        RunCommand("{ " + std::string(STRATA_BINARY) + " --root " + Q(root.empty() ? root_ : root) +
                   " " + args + " 2>" + Q(owner_ / "stderr") + "; }");
    auto e = ReadFile(owner_ / "stderr");
    err_ = e ? *e : "";
    return r;
  }

  std::string Read(const fs::path& p) {
    auto t = ReadFile(p);
    return t ? *t : "<missing " + p.string() + ">";
  }

  fs::path owner_;
  fs::path root_;
  fs::path ctx_;
  std::string err_;
};

TEST_F(BuildOutputIntegrationTest, LocalWritesTheFlattenedFilesystem) {
  fs::path out = owner_ / "out" / "rootfs";  // parents created too
  auto r = Strata("build -q -o type=local,dest=" + Q(out) + " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  EXPECT_EQ(Read(out / "app/a.txt"), "top\n");
  EXPECT_EQ(Read(out / "app/keep.txt"), "keep\n");
  EXPECT_EQ(Read(out / "app/sub/n.txt"), "new\n");
  std::vector<std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    entries.push_back(fs::relative(e.path(), out).string());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"app", "app/a.txt", "app/keep.txt", "app/sub",
                                               "app/sub/n.txt"}));
  // A bare -o DIR is type=local, as with buildx.
  r = Strata("build -q -o " + Q(owner_ / "bare") + " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  EXPECT_EQ(Read(owner_ / "bare/app/a.txt"), "top\n");
}

TEST_F(BuildOutputIntegrationTest, TarToAFileAndToStdout) {
  auto r = Strata("build -q -o type=tar,dest=" + Q(owner_ / "fs.tar") + " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  auto list = RunCommand("tar -tf " + Q(owner_ / "fs.tar") + " | sort");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_EQ(list.output, "app/\napp/a.txt\napp/keep.txt\napp/sub/\napp/sub/n.txt\n");
  auto content = RunCommand("tar -xOf " + Q(owner_ / "fs.tar") + " app/a.txt");
  EXPECT_EQ(content.output, "top\n");
  // -o -: the tar on stdout; the image ID moves to stderr.
  r = Strata("build -q -o - " + Q(ctx_) + " >" + Q(owner_ / "stdout.tar"));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  auto list2 = RunCommand("tar -tf " + Q(owner_ / "stdout.tar") + " | sort");
  EXPECT_EQ(list2.output, list.output);
  EXPECT_THAT(err_, HasSubstr("sha256:"));
}

TEST_F(BuildOutputIntegrationTest, OciArchiveAndLayoutReadBySkopeoAndUmoci) {
  auto r = Strata(
      "build -q -t app:1 --annotation org.example.k=v -o type=oci,dest=" + Q(owner_ / "img.tar") +
      " -o type=oci,tar=false,dest=" + Q(owner_ / "layout") + " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  std::string id = LastLine(r.output);
  auto sk = RunCommand("skopeo inspect oci-archive:" + Q(owner_ / "img.tar"));
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  auto j = json::parse(sk.output, nullptr, false);
  EXPECT_EQ(j["Digest"], id);
  EXPECT_EQ(j["Layers"].size(), 3u);
  auto raw = RunCommand("skopeo inspect --raw oci-archive:" + Q(owner_ / "img.tar"));
  auto m = json::parse(raw.output, nullptr, false);
  EXPECT_EQ(m["annotations"]["org.example.k"], "v") << raw.output;
  // The layout directory: named by the tag, readable by umoci.
  auto lay = RunCommand("skopeo inspect oci:" + Q(owner_ / "layout") + ":app:1");
  ASSERT_EQ(lay.exit_code, 0) << lay.output;
  EXPECT_EQ(json::parse(lay.output, nullptr, false)["Digest"], id);
  auto um = RunCommand("cd " + Q(owner_) + " && umoci unpack --rootless --image layout:app:1 " +
                       Q(owner_ / "bundle"));
  ASSERT_EQ(um.exit_code, 0) << um.output;
  EXPECT_EQ(Read(owner_ / "bundle/rootfs/app/a.txt"), "top\n");
}

TEST_F(BuildOutputIntegrationTest, DockerArchiveReadBySkopeoAndPodman) {
  auto r =
      Strata("build -q -o type=docker,dest=" + Q(owner_ / "d.tar") + ",name=outapp:2 " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  auto sk = RunCommand("skopeo inspect docker-archive:" + Q(owner_ / "d.tar"));
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  auto j = json::parse(sk.output, nullptr, false);
  EXPECT_EQ(j["Layers"].size(), 3u);
  // name= tags the image in the store too. (skopeo does not show a
  // docker-archive's RepoTags; podman load below reads them.)
  EXPECT_EQ(Strata("inspect outapp:2 >/dev/null").exit_code, 0) << err_;
  std::string podman = "podman --root " + Q(owner_ / "podman") + " --runroot " +
                       Q(owner_ / "podman-run") + " --storage-driver vfs ";
  auto load = RunCommand(podman + "load -i " + Q(owner_ / "d.tar"));
  ASSERT_EQ(load.exit_code, 0) << load.output;
  EXPECT_THAT(load.output, HasSubstr("outapp:2"));
  auto images = RunCommand(podman + "images --format '{{.Repository}}:{{.Tag}}'");
  EXPECT_THAT(images.output, HasSubstr("outapp:2"));
}

TEST_F(BuildOutputIntegrationTest, MetadataFileHasBuildKitKeys) {
  fs::path md = owner_ / "meta" / "md.json";
  ASSERT_OK(MakeDirs(md.parent_path()));
  auto r = Strata("build -q -t meta:1 -t other/meta:2 --metadata-file " + Q(md) + " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  std::string id = LastLine(r.output);
  auto j = json::parse(Read(md), nullptr, false);
  ASSERT_TRUE(j.is_object()) << Read(md);
  EXPECT_EQ(j["containerimage.digest"], id);
  EXPECT_EQ(j["containerimage.descriptor"]["digest"], id);
  EXPECT_EQ(j["containerimage.descriptor"]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json");
  EXPECT_GT(j["containerimage.descriptor"]["size"].get<int64_t>(), 0);
  EXPECT_EQ(j["image.name"], "docker.io/library/meta:1,docker.io/other/meta:2");
  auto insp = Strata("inspect meta:1");
  auto ij = json::parse(insp.output, nullptr, false);
  EXPECT_EQ(j["containerimage.config.digest"], ij["manifest"]["config"]["digest"]);
}

TEST_F(BuildOutputIntegrationTest, BadOutputAndCacheOptionsFailBeforeTheBuild) {
  for (const std::string& flags :
       {std::string("--cache-to type=registry,mode=max"), std::string("--cache-to type=inline"),
        std::string("--cache-to type=local,dest=/x,compression=zstd"),
        std::string("--cache-from type=local,src=/x,mode=max"), std::string("-o type=tarball"),
        std::string("-o type=oci,dest=x,oci-mediatypes=false"),
        std::string("-o type=image,rewrite-timestamp=true")}) {
    auto r = Strata("build --progress plain -t never:1 " + flags + " " + Q(ctx_));
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << err_;
    EXPECT_THAT(err_, HasSubstr("strata: ")) << flags;
    EXPECT_THAT(err_, Not(HasSubstr("COPY"))) << flags << ": the build ran";
    EXPECT_EQ(Strata("images -q").output, "") << flags;
  }
  EXPECT_EQ(Strata("build -q --cache-to type=inline " + Q(ctx_)).exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("--cache-to type=inline: type=inline is not supported"));
}

TEST_F(BuildOutputIntegrationTest, CompressionOptionSetsTheLayersMediaType) {
  for (const auto& [value, media_type] : std::vector<std::pair<std::string, std::string>>{
           {"zstd", "application/vnd.oci.image.layer.v1.tar+zstd"},
           {"uncompressed", "application/vnd.oci.image.layer.v1.tar"},
           {"gzip", "application/vnd.oci.image.layer.v1.tar+gzip"}}) {
    fs::path out = owner_ / (value + ".tar");
    auto r = Strata("build -q -o type=oci,dest=" + Q(out) + ",compression=" + value +
                    ",compression-level=3 " + Q(ctx_));
    ASSERT_EQ(r.exit_code, 0) << err_;
    auto raw = RunCommand("skopeo inspect --raw oci-archive:" + Q(out));
    auto m = json::parse(raw.output, nullptr, false);
    ASSERT_TRUE(m.is_object()) << raw.output;
    for (const auto& l : m["layers"]) EXPECT_EQ(l["mediaType"], media_type) << value;
  }
  // The layers are made once: outputs (or --compression) that disagree are refused.
  auto r = Strata("build -q --compression gzip -o type=image,compression=zstd " + Q(ctx_));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("--compression gzip contradicts an --output's compression="));
}

TEST_F(BuildOutputIntegrationTest, RewriteTimestampClampsWithSourceDateEpoch) {
  auto r = Strata(
      "build -q --build-arg SOURCE_DATE_EPOCH=1000000000 "
      "-o type=oci,dest=" +
      Q(owner_ / "img.tar") + ",rewrite-timestamp=true -o type=tar,dest=" + Q(owner_ / "fs.tar") +
      " " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  auto list = RunCommand("tar --utc -tvf " + Q(owner_ / "fs.tar") + " app/a.txt");
  EXPECT_THAT(list.output, HasSubstr("2001-09-09 01:46")) << list.output;
}

TEST_F(BuildOutputIntegrationTest, BarePullQuietAndProgressModesAsBuildx) {
  // A bare --pull (docker's boolean) is --pull=always, also right before the
  // context; --pull=true|false as docker.
  for (const std::string& flags : {std::string("--pull"), std::string("--pull=always"),
                                   std::string("--pull=true"), std::string("--pull=false")}) {
    auto r = Strata("build -q " + flags + " " + Q(ctx_));
    EXPECT_EQ(r.exit_code, 0) << flags << ": " << err_;
  }
  // buildx's --load, --provenance=false, --sbom=false: what strata does.
  auto r = Strata("build -q --load --provenance=false --sbom=false " + Q(ctx_));
  EXPECT_EQ(r.exit_code, 0) << err_;
  r = Strata("build -q -t p:1 " + Q(ctx_) + " --pull");
  EXPECT_EQ(r.exit_code, 0) << err_;
  r = Strata("build --pull=sometimes " + Q(ctx_));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("--pull sometimes: want always, missing or never"));
  // --quiet and --progress=quiet: stdout is the image ID alone, stderr empty.
  for (const std::string& flags : {std::string("--quiet"), std::string("--progress=quiet")}) {
    r = Strata("build " + flags + " " + Q(ctx_));
    ASSERT_EQ(r.exit_code, 0) << err_;
    EXPECT_THAT(r.output, ::testing::MatchesRegex("sha256:[0-9a-f]{64}\n")) << flags;
    EXPECT_EQ(err_, "") << flags;
  }
  // rawjson: strata's JSON event stream.
  r = Strata("build --no-cache --progress=rawjson " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(err_, HasSubstr("{\"event\":\"step\""));
  // A failed build ends the JSON stream with an error event.
  testing::WriteTestFile(owner_ / "bad/Dockerfile", "FROM scratch\nCOPY missing.txt /\n");
  r = Strata("build --progress=json " + Q(owner_ / "bad"));
  EXPECT_EQ(r.exit_code, 1);
  auto ev = err_.find("{\"event\":\"error\",\"text\":\"");
  ASSERT_NE(ev, std::string::npos) << err_;
  EXPECT_THAT(err_.substr(ev, err_.find('\n', ev) - ev), HasSubstr("missing.txt"));
  EXPECT_THAT(err_.substr(ev), HasSubstr("\nstrata: "));
  r = Strata("build --progress=fancy " + Q(ctx_));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("--progress fancy: want auto, plain, tty, json, rawjson or quiet"));
}

TEST_F(BuildOutputIntegrationTest, UnsupportedOrBadRunOptionsAreRefusedByName) {
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--add-host db", "--add-host db: want HOST:IP"},
           {"--ulimit files=1", "--ulimit files=1: unknown limit \"files\""},
           {"--shm-size 0", "--shm-size 0: want a positive size"},
           {"--provenance=mode=full", "--provenance=mode=full: mode=full: want min or max"},
           {"--sbom=generator=img", "--sbom=generator=img: generator= is not supported"},
           {"--attest-format cosign --sbom", "--attest-format cosign: want oci or buildkit"}}) {
    auto r = Strata("build -q " + flags + " " + Q(ctx_));
    EXPECT_EQ(r.exit_code, 2) << flags;
    EXPECT_THAT(err_, HasSubstr(message)) << flags;
  }
}

// --no-cache-filter STAGE: that stage is rebuilt, the others hit; a name
// that is no stage fails before any step runs.
TEST_F(BuildOutputIntegrationTest, NoCacheFilterRebuildsTheNamedStageOnly) {
  auto r = Strata("build --progress plain --no-cache-filter nosuch -t never:1 " + Q(ctx_));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("--no-cache-filter nosuch: no stage named \"nosuch\" in Dockerfile"));
  EXPECT_THAT(err_, Not(HasSubstr("COPY"))) << "the build ran";
  EXPECT_EQ(Strata("images -q").output, "");

  ASSERT_EQ(Strata("build -q -t one:1 " + Q(ctx_)).exit_code, 0) << err_;
  r = Strata("build --progress plain --no-cache-filter base -t one:2 " + Q(ctx_));
  ASSERT_EQ(r.exit_code, 0) << err_;
  // base's COPY runs again; the last stage's steps are keyed by what base
  // produced, which is the same layer here, so they hit.
  EXPECT_THAT(err_, HasSubstr("[base 2/2] COPY app /app\n#2 context:"));
  EXPECT_THAT(err_, HasSubstr("(5 steps, 2 cached)")) << err_;
  EXPECT_THAT(err_, HasSubstr("#4 CACHED"));
}

// CONTEXT `-`: a tar on stdin (plain, gzip, zstd) is the context, with its
// Dockerfile at the root unless -f names another inside it; a plain
// Dockerfile on stdin builds with an empty context; nothing is left behind.
TEST_F(BuildOutputIntegrationTest, ContextFromStdinTar) {
  if (!testing::HaveTool("tar") || !testing::HaveTool("zstd")) GTEST_SKIP() << "needs tar, zstd";
  testing::WriteTestFile(ctx_ / ".dockerignore", "n.txt.bak\n");
  testing::WriteTestFile(ctx_ / "n.txt.bak", "ignored\n");
  testing::WriteTestFile(ctx_ / "sub/Other.Dockerfile", "FROM scratch\nCOPY top.txt /other\n");
  const fs::path plain = owner_ / "ctx.tar";
  ASSERT_EQ(RunCommand("tar -C " + Q(ctx_) + " -cf " + Q(plain) + " .").exit_code, 0);
  ASSERT_EQ(RunCommand("gzip -c " + Q(plain) + " > " + Q(plain.string() + ".gz")).exit_code, 0);
  ASSERT_EQ(RunCommand("zstd -q -c " + Q(plain) + " > " + Q(plain.string() + ".zst")).exit_code, 0);

  auto dir = Strata("build -q -t dir:1 " + Q(ctx_));
  ASSERT_EQ(dir.exit_code, 0) << err_;
  for (const std::string ext : {"", ".gz", ".zst"}) {
    auto r = Strata("build -q -t stdin:1 - < " + Q(plain.string() + ext));
    ASSERT_EQ(r.exit_code, 0) << ext << ": " << err_;
    // The same context as the directory: the same image, from the cache.
    EXPECT_EQ(r.output, dir.output) << ext;
  }
  fs::path out = owner_ / "out";
  ASSERT_EQ(Strata("build -q -o type=local,dest=" + Q(out) + " - < " + Q(plain)).exit_code, 0)
      << err_;
  EXPECT_EQ(Read(out / "app/a.txt"), "top\n");

  // -f: a Dockerfile inside the archive.
  fs::path out2 = owner_ / "out2";
  auto r = Strata("build -q -f sub/Other.Dockerfile -o type=local,dest=" + Q(out2) + " - < " +
                  Q(plain.string() + ".gz"));
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(Read(out2 / "other"), "top\n");
  r = Strata("build -q -f nosuch - < " + Q(plain));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("nosuch"));

  // A Dockerfile on stdin: an empty context.
  testing::WriteTestFile(owner_ / "Dockerfile.stdin", "FROM dir:1\nENV FROM_STDIN=1\n");
  r = Strata("build -q -t df:1 - < " + Q(owner_ / "Dockerfile.stdin"));
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(Strata("inspect df:1").output, HasSubstr("FROM_STDIN=1"));
  testing::WriteTestFile(owner_ / "Dockerfile.copy", "FROM scratch\nCOPY top.txt /\n");
  r = Strata("build -q - < " + Q(owner_ / "Dockerfile.copy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("top.txt"));

  // stdin for both, and an entry leaving the archive's root, are refused.
  r = Strata("build -q -f - - < " + Q(plain));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("stdin cannot be both"));
  const fs::path evil = owner_ / "evil.tar";
  ASSERT_EQ(RunCommand("python3 -c " +
                       Q("import io,tarfile\n"
                         "t=tarfile.open('" +
                         evil.string() +
                         "','w')\n"
                         "d=b'FROM scratch\\n'\n"
                         "for n in ('Dockerfile','../escaped'):\n"
                         "  i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n"
                         "t.close()\n"))
                .exit_code,
            0);
  r = Strata("build -q - < " + Q(evil));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("build context from stdin"));
  EXPECT_FALSE(fs::exists(root_ / "escaped"));
  EXPECT_FALSE(fs::exists(root_ / "ingest" / "escaped"));

  // No scratch context, no memo of it, is left in the store.
  EXPECT_TRUE(fs::is_empty(root_ / "ingest"));
  int memos = 0;
  for (const auto& e : fs::directory_iterator(root_ / "cache")) {
    if (e.path().extension() == ".memo") ++memos;
  }
  EXPECT_EQ(memos, 1);  // the directory context's only
}

// --build-context NAME=DIR|docker-image://REF|oci-layout://DIR under the binary: the stage
// or image NAME is replaced in FROM and COPY --from; refused forms exit 2.
TEST_F(BuildOutputIntegrationTest, NamedBuildContextsDirAndDockerImage) {
  const fs::path extra = owner_ / "extra";
  testing::WriteTestFile(extra / "e.txt", "extra dir\n");
  const fs::path layout = owner_ / "layout";
  ASSERT_EQ(
      Strata("build -q -t img:1 -o type=oci,tar=false,dest=" + Q(layout) + " " + Q(ctx_)).exit_code,
      0)
      << err_;
  const fs::path ctx2 = owner_ / "ctx2";
  // "base" (a stage that cannot build) and "busybox:9" (an image that is
  // nowhere) are both overridden.
  testing::WriteTestFile(ctx2 / "Dockerfile",
                         "FROM scratch AS base\nCOPY nosuch /\n"
                         "FROM busybox:9\nCOPY --from=base /e.txt /from-dir.txt\n"
                         "COPY --from=img /app/keep.txt /from-image.txt\n"
                         "COPY --from=lay /app/sub/n.txt /from-layout.txt\n");
  fs::path out = owner_ / "out";
  auto r = Strata("build -q --build-context base=" + Q(extra) +
                  " --build-context busybox:9=docker-image://img:1"
                  " --build-context img=docker-image://img:1 --build-context lay=oci-layout://" +
                  Q(layout) + " -o type=local,dest=" + Q(out) + " " + Q(ctx2));
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(Read(out / "from-dir.txt"), "extra dir\n");
  EXPECT_EQ(Read(out / "from-image.txt"), "keep\n");
  EXPECT_EQ(Read(out / "from-layout.txt"), "new\n");
  EXPECT_EQ(Read(out / "app/a.txt"), "top\n");  // FROM busybox:9 = img:1

  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"x=oci-layout://" + (owner_ / "nosuch").string(), "is not a directory"},
           {"x=https://github.com/a/b#main", "a git context is not supported"},
           {"x=" + (owner_ / "nosuch").string(), "is not a directory"},
           {"novalue", "want NAME=VALUE"}}) {
    r = Strata("build -q --build-context " + Q(flag) + " " + Q(ctx2));
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_THAT(err_, HasSubstr(message)) << flag;
  }
}

// A Dockerfile whose target t1 takes a file from an intermediate stage
// "builder" that is not part of its image; t2 builds on "builder".
void WriteStagedContext(const fs::path& ctx) {
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM scratch AS builder\nCOPY a.txt /a.txt\n"
                         "FROM scratch AS t1\nCOPY --from=builder /a.txt /copied.txt\n"
                         "FROM builder AS t2\nCOPY c.txt /c.txt\n");
  testing::WriteTestFile(ctx / "a.txt", "aaa\n");
  testing::WriteTestFile(ctx / "c.txt", "ccc\n");
}

TEST_F(BuildOutputIntegrationTest, LocalCacheModeMaxServesIntermediateStagesToAnotherTarget) {
  fs::path ctx = owner_ / "staged";
  WriteStagedContext(ctx);
  for (std::string mode : {"max", "min"}) {
    fs::path cache = owner_ / ("cache-" + mode);
    auto r = Strata("build -q --target t1 --cache-to type=local,dest=" + Q(cache) +
                    ",mode=" + mode + " " + Q(ctx));
    ASSERT_EQ(r.exit_code, 0) << r.output << err_;
    ASSERT_TRUE(fs::is_regular_file(cache / "index.json"));
    // A fresh store building the other target.
    fs::path fresh = owner_ / ("fresh-" + mode);
    r = Strata(
        "build --progress plain --target t2 --cache-from type=local,src=" + Q(cache) + " " + Q(ctx),
        fresh);
    ASSERT_EQ(r.exit_code, 0) << r.output << err_;
    auto at = err_.find("COPY a.txt /a.txt");
    ASSERT_NE(at, std::string::npos) << err_;
    bool hit = err_.find("CACHED", at) != std::string::npos &&
               err_.find("CACHED", at) < err_.find("COPY c.txt", at);
    if (mode == "max") {
      EXPECT_TRUE(hit) << "mode=max must export the intermediate stage:\n" << err_;
    } else {
      EXPECT_FALSE(hit) << "mode=min exports only the final image's layers:\n" << err_;
    }
  }
}

TEST_F(BuildOutputIntegrationTest, RegistryOutputAndCacheThroughALocalRegistry) {
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  std::string host = reg.host();
  fs::path ctx = owner_ / "staged";
  WriteStagedContext(ctx);
  auto r = Strata("--tls-verify=false build -q --target t1 -o type=registry,name=" + host +
                  "/team/t1:1 --cache-to type=registry,ref=" + host +
                  "/cache/app:main,mode=max,image-manifest=true " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  std::string id = LastLine(r.output);
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + host + "/team/t1:1");
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  EXPECT_EQ(json::parse(sk.output, nullptr, false)["Digest"], id);
  r = Strata(
      "--tls-verify=false build --progress plain --target t2 --cache-from type=registry,ref=" +
          host + "/cache/app:main " + Q(ctx),
      owner_ / "fresh");
  ASSERT_EQ(r.exit_code, 0) << r.output << err_;
  auto at = err_.find("COPY a.txt /a.txt");
  ASSERT_NE(at, std::string::npos) << err_;
  EXPECT_LT(err_.find("CACHED", at), err_.find("COPY c.txt", at)) << err_;
}

}  // namespace
}  // namespace strata
