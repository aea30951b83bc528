// The docker-compatible inspection verbs under the strata binary: --format
// for images / inspect / history, diff and df. Images are built with
// `strata build` from FROM scratch + COPY (no runc needed); an image whose
// top layer carries whiteouts is written into the store through the oci
// library, as a registry pull of a RUN rm layer would leave it.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "oci/image_config.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// One ustar entry: type '0' file, '2' symlink (to `link`), '5' dir.
void TarEntry(std::string& tar, const std::string& name, char type, const std::string& data = "",
              int mode = 0644, const std::string& link = "") {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", mode);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011o", static_cast<unsigned>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 1700000000u);
  h[156] = type;
  std::snprintf(h + 157, 100, "%s", link.c_str());
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  tar.append(h, 512);
  tar += data;
  tar.append((512 - data.size() % 512) % 512, '\0');
}

class CliIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (strata build)";
    static int counter = 0;
    owner_ = fs::path("/tmp") /
             fmt::format("strata-cli-it-{}-{}-{}", ::getpid(), ++counter,
                         std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(owner_);
    ASSERT_OK(MakeDirs(owner_));
    root_ = owner_ / "store";
  }
  void TearDown() override {
    if (!owner_.empty()) (void)RemoveAll(owner_);
  }

  // stdout only; stderr goes to err_.
  CommandResult Strata(const std::string& args) {
    // RunCommand adds 2>&1 after the command: the group keeps ours.
    auto r = RunCommand("{ " + std::string(STRATA_BINARY) + " --root " + Q(root_.string()) + " " +
                        args + " 2>" + Q((owner_ / "stderr").string()) + "; }");
    auto e = ReadFile(owner_ / "stderr");
    err_ = e ? *e : "";
    return r;
  }

  // Builds `dockerfile` with `files` as its context and tags it `tag`.
  std::string Build(const std::string& tag, const std::string& dockerfile,
                    const std::vector<std::pair<std::string, std::string>>& files) {
    fs::path ctx = owner_ / ("ctx-" + tag);
    testing::WriteTestFile(ctx / "Dockerfile", dockerfile);
    for (const auto& [p, content] : files) testing::WriteTestFile(ctx / p, content);
    auto r = Strata("build -q -t " + tag + " " + Q(ctx.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output << err_;
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') + 1);
  }

  // base: /app/{a.txt, gone.txt, sub/k, keep/x}; top: base + a changed
  // a.txt and a new n.txt.
  void BuildBaseAndTop() {
    base_id_ = Build("base", "FROM scratch\nENV FOO=bar\nCOPY app /app\n",
                     {{"app/a.txt", "hello\n"},
                      {"app/gone.txt", "bye\n"},
                      {"app/sub/k", "kkkk\n"},
                      {"app/keep/x", "x\n"}});
    top_id_ = Build("top", "FROM base\nCOPY a.txt n.txt /app/\n",
                    {{"a.txt", "changed!\n"}, {"n.txt", "new\n"}});
  }

  // Writes "wh:latest" = base + a layer deleting /app/gone.txt and the
  // directory /app/sub (whiteouts), making /app/keep opaque (with a new
  // file in it) and adding /app/w.txt.
  void WriteWhiteoutImage() {
    auto store = oci::Store::Open(root_);
    ASSERT_OK(store);
    auto base = (*store)->LoadImage("base");
    ASSERT_OK(base);
    std::string tar;
    TarEntry(tar, "app/", '5', "", 0755);
    TarEntry(tar, "app/.wh.gone.txt", '0');
    TarEntry(tar, "app/.wh.sub", '0');
    TarEntry(tar, "app/keep/", '5', "", 0755);
    TarEntry(tar, "app/keep/.wh..wh..opq", '0');
    TarEntry(tar, "app/keep/y", '0', "yy\n");
    TarEntry(tar, "app/w.txt", '0', "www\n");
    tar.append(1024, '\0');
    auto layer = (*store)->Put(tar, std::string(oci::media_type::kLayerTar));
    ASSERT_OK(layer);
    oci::ImageConfig cfg = base->config;
    cfg.diff_ids.push_back(layer->digest);
    oci::HistoryEntry h;
    h.created = cfg.created;
    h.created_by = "RUN rm -rf /app/gone.txt /app/sub";
    cfg.history.push_back(h);
    auto cfg_desc = (*store)->Put(cfg.Serialize(), std::string(oci::media_type::kImageConfig));
    ASSERT_OK(cfg_desc);
    oci::Manifest m = base->manifest;
    m.config = *cfg_desc;
    m.layers.push_back(*layer);
    auto man = (*store)->Put(m.Serialize(), std::string(oci::media_type::kImageManifest));
    ASSERT_OK(man);
    auto ref = oci::Reference::Parse("wh:latest");
    ASSERT_OK(ref);
    ASSERT_OK((*store)->Tag(*ref, *man));
  }

  // Tags `tag` = the image `from` plus one uncompressed layer `tar`.
  void AddLayer(const std::string& from, const std::string& tag, const std::string& tar) {
    auto store = oci::Store::Open(root_);
    ASSERT_OK(store);
    auto base = (*store)->LoadImage(from);
    ASSERT_OK(base);
    auto layer = (*store)->Put(tar, std::string(oci::media_type::kLayerTar));
    ASSERT_OK(layer);
    oci::ImageConfig cfg = base->config;
    cfg.diff_ids.push_back(layer->digest);
    oci::HistoryEntry h;
    h.created = cfg.created;
    h.created_by = "crafted layer";
    cfg.history.push_back(h);
    auto cfg_desc = (*store)->Put(cfg.Serialize(), std::string(oci::media_type::kImageConfig));
    ASSERT_OK(cfg_desc);
    oci::Manifest m = base->manifest;
    m.config = *cfg_desc;
    m.layers.push_back(*layer);
    auto man = (*store)->Put(m.Serialize(), std::string(oci::media_type::kImageManifest));
    ASSERT_OK(man);
    auto ref = oci::Reference::Parse(tag);
    ASSERT_OK(ref);
    ASSERT_OK((*store)->Tag(*ref, *man));
  }

  fs::path owner_;
  fs::path root_;
  std::string err_;
  std::string base_id_, top_id_;
};

TEST_F(CliIntegrationTest, ImagesFormatTemplateJsonTableAndErrors) {
  BuildBaseAndTop();
  auto r = Strata("images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}'");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(r.output, fmt::format("base:latest {} {}\ntop:latest {} {}\n", base_id_.substr(7, 12),
                                  base_id_, top_id_.substr(7, 12), top_id_));

  r = Strata("images --no-trunc --format '{{.ID}}\\t{{.Size}}'");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, StartsWith(base_id_ + "\t"));

  r = Strata("images --format json");
  ASSERT_EQ(r.exit_code, 0) << err_;
  auto first = json::parse(r.output.substr(0, r.output.find('\n')), nullptr, false);
  ASSERT_TRUE(first.is_object()) << r.output;
  EXPECT_EQ(first["Repository"], "base");
  EXPECT_EQ(first["Tag"], "latest");
  EXPECT_EQ(first["Digest"], base_id_);
  EXPECT_THAT(first["CreatedAt"].get<std::string>(), HasSubstr("+0000 UTC"));
  EXPECT_THAT(first["CreatedSince"].get<std::string>(), HasSubstr("ago"));

  r = Strata("images --format 'table {{.Repository}}\\t{{.ID}}\\t{{.CreatedSince}}'");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, StartsWith("REPOSITORY   IMAGE ID       CREATED\nbase         "));

  r = Strata("images -q");
  EXPECT_EQ(r.output, base_id_ + "\n" + top_id_ + "\n");

  // Today's default output is unchanged.
  r = Strata("images");
  EXPECT_THAT(r.output, StartsWith("REPOSITORY"));
  EXPECT_THAT(r.output, HasSubstr(base_id_.substr(7, 12)));

  r = Strata("images --digests");
  EXPECT_THAT(r.output, HasSubstr("DIGEST"));
  EXPECT_THAT(r.output, HasSubstr(base_id_ + " "));
  EXPECT_THAT(r.output, HasSubstr("IMAGE ID"));

  r = Strata("images --format '{{.Repo}}'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "");
  EXPECT_THAT(err_, HasSubstr("unknown field \".Repo\""));
  r = Strata("images --format '{{frob .ID}}'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("unknown function \"frob\""));
}

TEST_F(CliIntegrationTest, InspectFormat) {
  BuildBaseAndTop();
  auto r = Strata("inspect --format '{{.Id}}' top");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(r.output, top_id_ + "\n");
  r = Strata("inspect -f '{{.Config.Env}}|{{.Os}}|{{index .RepoTags 0}}' base");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("FOO=bar"));
  EXPECT_THAT(r.output, HasSubstr("|linux|base:latest\n"));
  r = Strata("inspect -f '{{range .Config.Env}}{{println .}}{{end}}' base");
  EXPECT_THAT(r.output, HasSubstr("\nFOO=bar\n"));
  r = Strata("inspect --format '{{json .Config}}' base");
  ASSERT_EQ(r.exit_code, 0) << err_;
  auto cfg = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(cfg.is_object()) << r.output;
  EXPECT_EQ(cfg["Env"].size(), 2u);  // PATH and FOO
  r = Strata("inspect --format '{{json .}}' top");
  auto all = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(all.is_object()) << r.output;
  EXPECT_EQ(all["Id"], top_id_);
  EXPECT_EQ(all["RootFS"]["Layers"].size(), 2u);
  EXPECT_FALSE(all["Architecture"].get<std::string>().empty());
  r = Strata("inspect --format json top base");
  auto arr = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << r.output;
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[1]["Id"], base_id_);
  // The default output is strata's {"ref","digest","manifest","config"}.
  r = Strata("inspect top");
  auto def = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(def.is_object()) << r.output;
  EXPECT_EQ(def["digest"], top_id_);
  EXPECT_TRUE(def.contains("manifest"));

  r = Strata("inspect --format '{{.Config.Nope}}' top");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("unknown field \".Config.Nope\""));
  r = Strata("inspect --format '{{.Id}}' nosuch");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("nosuch"));
}

TEST_F(CliIntegrationTest, HistoryFormatAndQuiet) {
  BuildBaseAndTop();
  auto r = Strata("history --format '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}' top");
  ASSERT_EQ(r.exit_code, 0) << err_;
  auto first = r.output.substr(0, r.output.find('\n'));
  EXPECT_THAT(first, StartsWith(top_id_.substr(7, 12) + "|COPY a.txt n.txt /app/"));
  EXPECT_THAT(r.output, HasSubstr("<missing>|COPY app /app"));
  r = Strata("history --no-trunc --format '{{.ID}} {{.CreatedSince}}' top");
  EXPECT_THAT(r.output, StartsWith(top_id_ + " "));
  r = Strata("history -q top");
  EXPECT_THAT(r.output, StartsWith(top_id_.substr(7, 12) + "\n<missing>\n"));
  r = Strata("history --format json top");
  auto line = json::parse(r.output.substr(0, r.output.find('\n')), nullptr, false);
  ASSERT_TRUE(line.is_object()) << r.output;
  EXPECT_THAT(line["CreatedBy"].get<std::string>(), HasSubstr("COPY a.txt"));
  r = Strata("history --format '{{.Created}}' top");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("unknown field \".Created\""));
}

TEST_F(CliIntegrationTest, DiffAgainstParentAndAnotherImage) {
  BuildBaseAndTop();
  auto r = Strata("diff top");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(r.output, "C /app/a.txt\nA /app/n.txt\n");
  // The other way round: n.txt is deleted.
  r = Strata("diff base top");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(r.output, "C /app/a.txt\nD /app/n.txt\n");
  // A one-layer image against its (empty) parent: everything is added.
  r = Strata("diff base");
  EXPECT_THAT(r.output, HasSubstr("A /app\n"));
  EXPECT_THAT(r.output, HasSubstr("A /app/sub/k\n"));
  r = Strata("diff -s top");
  EXPECT_THAT(r.output, HasSubstr("A        4B /app/n.txt\n"));
  EXPECT_THAT(r.output, HasSubstr("1 added (4B), 1 changed (9B), 0 deleted (0B)"));
  r = Strata("diff --json top");
  auto j = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  ASSERT_EQ(j["changes"].size(), 2u);
  EXPECT_EQ(j["changes"][0]["kind"], "C");
  EXPECT_EQ(j["changes"][0]["old_size"], 6);
  EXPECT_EQ(j["changes"][0]["size"], 9);
  EXPECT_EQ(j["changes"][1]["path"], "/app/n.txt");
  EXPECT_EQ(j["summary"]["added"], 1);

  r = Strata("diff nosuch");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("nosuch"));
  r = Strata("diff top nosuch2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(err_, HasSubstr("nosuch2"));
  r = Strata("diff");
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(CliIntegrationTest, DiffHandlesWhiteoutsAndOpaqueDirectories) {
  BuildBaseAndTop();
  WriteWhiteoutImage();
  auto r = Strata("diff wh");
  ASSERT_EQ(r.exit_code, 0) << err_;
  // A deleted directory is one line; the opaque directory loses x, gains y.
  EXPECT_THAT(r.output, HasSubstr("D /app/gone.txt\n"));
  EXPECT_THAT(r.output, HasSubstr("D /app/sub\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("/app/sub/k")));
  EXPECT_THAT(r.output, HasSubstr("D /app/keep/x\n"));
  EXPECT_THAT(r.output, HasSubstr("A /app/keep/y\n"));
  EXPECT_THAT(r.output, HasSubstr("A /app/w.txt\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("a.txt")));
  r = Strata("diff --json wh");
  auto j = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  bool saw_sub = false;
  for (const auto& c : j["changes"]) {
    if (c["path"] == "/app/sub") {
      saw_sub = true;
      EXPECT_EQ(c["kind"], "D");
      EXPECT_EQ(c["type"], "dir");
      EXPECT_EQ(c["size"], 5);  // k's bytes
    }
  }
  EXPECT_TRUE(saw_sub) << r.output;
  // Against top (two layers apart, sharing base): a.txt and n.txt differ
  // as well.
  r = Strata("diff wh top");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("C /app/a.txt\n"));
  EXPECT_THAT(r.output, HasSubstr("D /app/n.txt\n"));
  EXPECT_THAT(r.output, HasSubstr("D /app/sub\n"));
}

// Whiteouts as a real RUN writes them (overlay upper dir -> OCI whiteouts),
// checked against what `strata unpack` makes of the same image.
TEST_F(CliIntegrationTest, DiffOfRunLayersMatchesTheUnpackedImage) {
  if (!testing::HaveTool("runc")) GTEST_SKIP() << "needs runc";
  auto rootfs = owner_ / "busybox-rootfs";
  auto mk = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                       Q(rootfs.string()));
  ASSERT_EQ(mk.exit_code, 0) << mk.output;
  ASSERT_EQ(Strata("import " + Q(rootfs.string()) + " busybox:latest").exit_code, 0) << err_;
  Build("w",
        "FROM busybox\n"
        "RUN mkdir -p /d/e && echo 1 > /d/e/f && echo 2 > /d/g && echo 3 > /d/h\n"
        "RUN rm -rf /d/e /d/h && echo more >> /d/g && mkdir /d/n\n",
        {});
  auto r = Strata("diff w");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("D /d/e\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("/d/e/f")));
  EXPECT_THAT(r.output, HasSubstr("D /d/h\n"));
  EXPECT_THAT(r.output, HasSubstr("C /d/g\n"));
  EXPECT_THAT(r.output, HasSubstr("A /d/n\n"));
  // Against the base: /d/e and /d/h never existed there.
  r = Strata("diff w busybox");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("A /d\n"));
  EXPECT_THAT(r.output, HasSubstr("A /d/g\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("/d/e")));
  EXPECT_THAT(r.output, Not(HasSubstr("/d/h")));
  auto un = owner_ / "unpacked";
  ASSERT_EQ(Strata("unpack w " + Q(un.string())).exit_code, 0) << err_;
  EXPECT_FALSE(fs::exists(un / "d" / "e"));
  EXPECT_FALSE(fs::exists(un / "d" / "h"));
  EXPECT_TRUE(fs::exists(un / "d" / "n"));
}

// import --platform records the platform in the config (how foreign base
// images are made offline); a malformed one names the flag.
TEST_F(CliIntegrationTest, ImportRecordsTheGivenPlatform) {
  auto rootfs = owner_ / "tiny";
  fs::create_directories(rootfs / "etc");
  std::ofstream(rootfs / "etc" / "hello") << "hi\n";
  ASSERT_EQ(Strata("import --platform linux/arm/v7 " + Q(rootfs.string()) + " arm:1").exit_code, 0)
      << err_;
  auto r = Strata("inspect arm:1");
  ASSERT_EQ(r.exit_code, 0) << err_;
  auto j = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["config"]["os"], "linux");
  EXPECT_EQ(j["config"]["architecture"], "arm");
  EXPECT_EQ(j["config"]["variant"], "v7");
  EXPECT_NE(Strata("import --platform arm64 " + Q(rootfs.string()) + " bad:1").exit_code, 0);
  EXPECT_THAT(err_, HasSubstr("--platform"));
}

// An entry below a symlinked directory is where the applier puts it.
TEST_F(CliIntegrationTest, DiffFollowsSymlinkedDirectoriesInsideTheRoot) {
  BuildBaseAndTop();
  std::string l1;
  TarEntry(l1, "lnk", '2', "", 0777, "app/keep");
  TarEntry(l1, "abs", '2', "", 0777, "/app/../app/sub");
  l1.append(1024, '\0');
  AddLayer("base", "links:1", l1);
  std::string l2;
  TarEntry(l2, "lnk/z", '0', "zz\n");
  TarEntry(l2, "abs/.wh.k", '0');
  l2.append(1024, '\0');
  AddLayer("links:1", "links:2", l2);
  auto r = Strata("diff links:2");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_EQ(r.output, "A /app/keep/z\nD /app/sub/k\n");
  auto un = owner_ / "unpacked";
  ASSERT_EQ(Strata("unpack links:2 " + Q(un.string())).exit_code, 0) << err_;
  EXPECT_TRUE(fs::exists(un / "app" / "keep" / "z"));
  EXPECT_FALSE(fs::exists(un / "app" / "sub" / "k"));
}

TEST_F(CliIntegrationTest, DfReportsUsageAndReclaimable) {
  BuildBaseAndTop();
  auto r = Strata("df");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, StartsWith("TYPE"));
  for (const char* row : {"Images", "Blobs", "Build cache", "Snapshots", "Cache mounts"}) {
    EXPECT_THAT(r.output, HasSubstr(row));
  }
  r = Strata("df --json");
  auto j = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  auto row = [&](const json& doc, const std::string& type) {
    for (const auto& u : doc["usage"]) {
      if (u["type"] == type) return u;
    }
    ADD_FAILURE() << "no row " << type;
    return json();
  };
  EXPECT_EQ(row(j, "Images")["total"], 2);
  EXPECT_GT(row(j, "Images")["size"].get<int64_t>(), 0);
  EXPECT_EQ(row(j, "Blobs")["reclaimable"], 0);
  EXPECT_GE(row(j, "Build cache")["total"].get<int64_t>(), 2);  // a record per step
  const int64_t blobs_before = row(j, "Blobs")["total"].get<int64_t>();

  // Untagging top leaves its manifest and config for prune, its layer kept
  // by a cache record (reclaimable by prune --all).
  ASSERT_EQ(Strata("rmi top").exit_code, 0) << err_;
  r = Strata("df --json");
  j = json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(row(j, "Images")["total"], 1);
  EXPECT_EQ(row(j, "Blobs")["total"], blobs_before);
  EXPECT_GT(row(j, "Blobs")["reclaimable"].get<int64_t>(), 0);
  EXPECT_GT(row(j, "Build cache")["reclaimable"].get<int64_t>(), 0);

  // A RUN cache mount directory is counted.
  testing::WriteTestFile(root_ / "cache-mounts" / "0123abcd" / "f", std::string(1000, 'x'));
  r = Strata("df --json");
  j = json::parse(r.output, nullptr, false);
  EXPECT_EQ(row(j, "Cache mounts")["total"], 1);
  EXPECT_EQ(row(j, "Cache mounts")["size"], 1000);

  ASSERT_EQ(Strata("prune").exit_code, 0) << err_;
  r = Strata("df --json");
  j = json::parse(r.output, nullptr, false);
  EXPECT_EQ(row(j, "Blobs")["reclaimable"], 0);
}

// prune clears the build cache as `docker buildx prune` does: --all drops
// every cache record and RUN cache mount except one a build holds locked;
// --filter until= and --keep-storage drop the least recently used first.
TEST_F(CliIntegrationTest, PruneClearsCacheMountsButNotBusyOnes) {
  BuildBaseAndTop();
  ASSERT_EQ(Strata("rmi top").exit_code, 0) << err_;
  auto row = [&](const std::string& type) {
    auto r = Strata("df --json");
    auto j = json::parse(r.output, nullptr, false);
    for (const auto& u : j["usage"]) {
      if (u["type"] == type) return u;
    }
    ADD_FAILURE() << "no row " << type << ": " << r.output << err_;
    return json();
  };
  fs::path cm = root_ / "cache-mounts";
  // A cache mount as RUN --mount=type=cache leaves it: <id>/ and <id>.lock,
  // whose mtime is its last use.
  auto make_mount = [&](const std::string& id, int bytes, int64_t age_seconds) {
    testing::WriteTestFile(cm / id / "data", std::string(bytes, 'x'));
    testing::WriteTestFile(cm / (id + ".lock"), "");
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ::time(nullptr) - age_seconds;
    t[0].tv_nsec = t[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, (cm / id).c_str(), t, 0), 0);
    ASSERT_EQ(::utimensat(AT_FDCWD, (cm / (id + ".lock")).c_str(), t, 0), 0);
  };
  make_mount("aaaa", 1000, 7200);
  make_mount("bbbb", 2000, 60);
  EXPECT_EQ(row("Cache mounts")["size"], 3000);

  // Options are checked before anything is touched.
  auto r = Strata("prune --filter type=regular");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("\"type\""));
  r = Strata("prune --filter until=3days");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("3days"));
  r = Strata("prune --keep-storage lots");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(err_, HasSubstr("--keep-storage"));
  EXPECT_EQ(row("Cache mounts")["total"], 2);

  // A plain prune keeps the build cache.
  ASSERT_EQ(Strata("prune").exit_code, 0) << err_;
  EXPECT_EQ(row("Cache mounts")["total"], 2);
  const int64_t records = row("Build cache")["total"].get<int64_t>();
  EXPECT_GE(records, 2);

  // until=1h: only the mount last used two hours ago goes (the records were
  // just used).
  r = Strata("prune --filter until=1h");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("0 cache records, 1 cache mounts"));
  EXPECT_FALSE(fs::exists(cm / "aaaa"));
  EXPECT_TRUE(fs::exists(cm / "bbbb"));
  EXPECT_EQ(row("Cache mounts")["size"], 2000);
  EXPECT_EQ(row("Build cache")["total"], records);

  // --keep-storage: least recently used first until the cache fits. Here
  // bbbb (a minute old) is the oldest entry; removing it alone is enough.
  make_mount("cccc", 1500, 30);
  const int64_t usage =
      row("Build cache")["size"].get<int64_t>() + row("Cache mounts")["size"].get<int64_t>();
  r = Strata(fmt::format("prune --keep-storage {}", usage - 1500));
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("0 cache records, 1 cache mounts"));
  EXPECT_FALSE(fs::exists(cm / "bbbb"));
  EXPECT_TRUE(fs::exists(cm / "cccc"));
  EXPECT_EQ(row("Build cache")["total"], records);
  EXPECT_EQ(row("Cache mounts")["size"], 1500);

  // --all, with cccc held by a "running build": cccc survives, and says so.
  make_mount("dddd", 500, 10);
  auto lock = OpenFile(cm / "cccc.lock", O_RDWR);
  ASSERT_OK(lock);
  ASSERT_EQ(::flock(lock->get(), LOCK_SH), 0);
  r = Strata("prune --all");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("Skipped cache mount cccc: in use"));
  EXPECT_TRUE(fs::exists(cm / "cccc" / "data"));
  EXPECT_FALSE(fs::exists(cm / "dddd"));
  EXPECT_EQ(row("Cache mounts")["total"], 1);
  EXPECT_EQ(row("Cache mounts")["size"], 1500);
  EXPECT_EQ(row("Build cache")["total"], 0);
  EXPECT_EQ(row("Build cache")["size"], 0);
  EXPECT_EQ(row("Blobs")["reclaimable"], 0);

  // Released, it goes too; and the git cache (a bare repository per remote,
  // ROOT/git/<hash>.git with <hash>.lock) is build cache as well: one held by
  // a build is skipped, the other goes.
  lock = UniqueFd();
  fs::path git = root_ / "git";
  testing::WriteTestFile(git / "1111.git" / "HEAD", std::string(700, 'g'));
  testing::WriteTestFile(git / "1111.lock", "");
  testing::WriteTestFile(git / "2222.git" / "HEAD", std::string(300, 'g'));
  testing::WriteTestFile(git / "2222.lock", "");
  EXPECT_EQ(row("Git cache")["total"], 2);
  EXPECT_EQ(row("Git cache")["size"], 1000);
  auto git_lock = OpenFile(git / "2222.lock", O_RDWR);
  ASSERT_OK(git_lock);
  ASSERT_EQ(::flock(git_lock->get(), LOCK_SH), 0);
  r = Strata("prune -a");
  ASSERT_EQ(r.exit_code, 0) << err_;
  EXPECT_THAT(r.output, HasSubstr("1 cache mounts, 1 git caches"));
  EXPECT_THAT(r.output, HasSubstr("Skipped git cache 2222: in use"));
  EXPECT_EQ(row("Cache mounts")["total"], 0);
  EXPECT_EQ(row("Cache mounts")["size"], 0);
  EXPECT_FALSE(fs::exists(git / "1111.git"));
  EXPECT_TRUE(fs::exists(git / "2222.git" / "HEAD"));
  EXPECT_EQ(row("Git cache")["size"], 300);
  // The image still builds from scratch afterwards.
  Build("again", "FROM base\nCOPY a.txt /\n", {{"a.txt", "a\n"}});
}

// A corrupt index.json is reported as such by every verb of this file, with
// or without --format; none of them prints a partial answer.
TEST_F(CliIntegrationTest, CorruptIndexJsonIsReportedByTheInspectionVerbs) {
  BuildBaseAndTop();
  testing::WriteTestFile(root_ / "index.json", "{\"schemaVersion\": 2, \"manifests\": [");
  const std::string want = (root_ / "index.json").string() + " is corrupt";
  for (const std::string cmd :
       {"images --format json", "images --format '{{.ID}}'", "inspect --format '{{.Id}}' top",
        "history --format '{{.ID}}' top", "diff top", "diff top base", "df", "df --json"}) {
    auto r = Strata(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output << err_;
    EXPECT_EQ(r.output, "") << cmd;
    EXPECT_THAT(err_, HasSubstr(want)) << cmd;
  }
}

}  // namespace
}  // namespace strata
