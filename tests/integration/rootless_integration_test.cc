// Rootless `strata build` end to end, as a real unprivileged user that the
// test creates (tools/rootless-test-user.sh: useradd + /etc/subuid and
// /etc/subgid ranges). The binary is copied to a directory that user can
// read, the store lives in the user's home, and every strata command runs
// through `runuser`. Results are checked from the outside: layer tars (ids
// as the container sees them, OCI whiteouts), podman running the saved
// archive, skopeo reading a pushed image.
//
// RUN uses --network none: the default network's NAT needs /dev/net/tun,
// which some hosts (this one: mode 0600) keep from unprivileged users; that
// case has its own test of the one-line error.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "oci/util/file_util.h"
#include "tests/registry/registry_fixture.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::Contains;
using ::testing::ContainsRegex;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUser[] = "strata-rootless-test";

// Single-quotes `s` for sh.
std::string Sh(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}
std::string Q(const fs::path& p) { return Sh(p.string()); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

class RootlessBuildIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create the test user";
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create the test user";
    auto r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/rootless-test-user.sh " + kUser);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = RunCommand(std::string("getent passwd ") + kUser + " | cut -d: -f6");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    home_ = r.output.substr(0, r.output.find('\n'));
    ASSERT_FALSE(home_.empty());
    // A host (or CI sandbox) that refuses unprivileged user namespaces
    // cannot run these; strata's own line for it is tested in rootless_test.cc.
    r = RunCommand(std::string("cd / && runuser -u ") + kUser + " -- unshare --user true");
    if (r.exit_code != 0) GTEST_SKIP() << "no unprivileged user namespaces here: " << r.output;
    // Lowercase (podman names oci-archive images after the path).
    std::string tag = fmt::format("strata-rootless-it-{}-{}", ::getpid(),
                                  std::chrono::steady_clock::now().time_since_epoch().count());
    dir_ = fs::path("/tmp") / tag;
    ASSERT_OK(MakeDirs(dir_));
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // our own dir: the user must read it
    // The build dir may sit under a directory the user cannot enter.
    bin_ = dir_ / "strata";
    ASSERT_EQ(RunCommand("install -m 0755 " + Q(STRATA_BINARY) + " " + Q(bin_)).exit_code, 0);
    r = RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " +
                   Q(dir_ / "rootfs") + " && chmod -R a+rX " + Q(dir_ / "rootfs"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    store_ = fs::path(home_) / tag;
    // Where the user writes archives and caches.
    out_ = dir_ / "out";
    ASSERT_EQ(RunCommand("install -d -o " + std::string(kUser) + " " + Q(out_)).exit_code, 0);
    r = Strata("import " + Q(dir_ / "rootfs") + " busybox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override {
    if (!dir_.empty()) (void)RemoveAll(dir_);
    // The store holds files of the user's subordinate ids: root removes it.
    if (!store_.empty()) (void)RemoveAll(store_);
  }

  // `cmd` (a shell command line) as the test user, in dir_.
  CommandResult AsUser(const std::string& cmd, const std::string& path_env = "") {
    std::string path = path_env.empty() ? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" : path_env;
    return RunCommand("cd " + Q(dir_) + " && runuser -u " + kUser + " -- env -i HOME=" + Q(home_) +
                      " USER=" + kUser + " PATH=" + Sh(path) + " /bin/sh -c " + Sh(cmd));
  }
  CommandResult Strata(const std::string& args, const fs::path& store = {}) {
    return AsUser(Q(bin_) + " --root " + Q(store.empty() ? store_ : store) + " " + args);
  }

  fs::path Context(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path c = dir_ / name;
    for (const auto& [rel, content] : files) testing::WriteTestFile(c / rel, content);
    EXPECT_EQ(RunCommand("chmod -R a+rX " + Q(c)).exit_code, 0);
    return c;
  }

  // `tar tv` of every layer of `ref` (docker-archive: one layer.tar per
  // layer), numeric owners: "LAYER: perms uid/gid ... path" lines.
  std::string LayerListing(const std::string& ref) {
    fs::path archive = out_ / "listing.tar";
    (void)RemoveAll(archive);
    auto r = Strata("save " + ref + " -o " + Q(archive) + " --format docker-archive");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    fs::path x = dir_ / "listing";
    (void)RemoveAll(x);
    r = RunCommand("mkdir -p " + Q(x) + " && tar -C " + Q(x) + " -xf " + Q(archive) +
                   " && for l in " + Q(x) +
                   "/*/layer.tar; do tar -tvf \"$l\" --numeric-owner; done");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  std::string home_;
  fs::path dir_, bin_, store_, out_;
};

TEST_F(RootlessBuildIntegrationTest, MultiStageUserChownAndWhiteoutsKeepContainerIds) {
  auto ctx =
      Context("ms", {{"Dockerfile",
                      "FROM busybox AS build\n"
                      "RUN mkdir -p /data && echo old > /data/old && echo built > /artifact\n"
                      "FROM busybox\n"
                      "COPY --from=build /artifact /artifact\n"
                      "RUN mkdir -p /data && echo old > /data/old1 && echo old > /data/old2\n"
                      "COPY --chown=1000:1000 f.txt /home/app/f.txt\n"
                      // A whiteout (a base file) and an opaque directory.
                      "RUN rm /bin/vi && rm -rf /data && mkdir /data && echo new > /data/new\n"
                      "USER 1000\n"
                      "RUN id -u > /tmp/uid && echo by-app > /tmp/by-app\n"},
                     {"f.txt", "chowned\n"}});
  auto r = Strata("-v build --network none --progress plain -t ms:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rootless: user namespace: uid map 0:"));
  EXPECT_THAT(r.output, HasSubstr("snapshotter: overlay (userxattr)"));

  std::string tv = LayerListing("ms:1");
  EXPECT_THAT(tv, HasSubstr(" 1000/1000 "));
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^-.* 1000/1000 +8 .* home/app/f\.txt$)")));
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^-.* 1000/1000 .* tmp/by-app$)")));
  EXPECT_THAT(tv, HasSubstr("bin/.wh.vi"));
  EXPECT_THAT(tv, HasSubstr("data/.wh..wh..opq"));
  // Only container-side ids: never the user's uid or a subordinate one.
  auto uid = RunCommand(std::string("id -u ") + kUser);
  std::string my_uid = uid.output.substr(0, uid.output.find('\n'));
  EXPECT_THAT(tv, Not(HasSubstr(" " + my_uid + "/")));
  EXPECT_THAT(Lines(tv), Each(Not(ContainsRegex(R"( [0-9]{6,}/[0-9]+ )"))));
  // No overlay marker leaks into a layer as an xattr or a device.
  EXPECT_THAT(Lines(tv), Each(Not(ContainsRegex(R"(^c.* data/)"))));

  // podman (rootful) runs the saved archive.
  if (!testing::HaveTool("podman")) GTEST_SKIP() << "podman not installed";
  fs::path archive = out_ / "ms.tar";
  r = Strata("save ms:1 -o " + Q(archive) + " --format oci-archive");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(
      "podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
      "--network none --user 0 oci-archive:" +
      archive.string() +
      " sh -c 'cat /artifact /tmp/uid; stat -c %u:%g /home/app/f.txt; ls /data; "
      "test -e /bin/vi || echo vi-gone' 2>&1 | grep -v -e '^Getting image' -e '^Copying' "
      "-e '^Writing manifest' -e '^Storing signatures'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "built\n1000\n1000:1000\nnew\nvi-gone\n");
}

// The fallback where the kernel refuses overlay in a user namespace: the
// copy-based snapshotter (forced here, as this kernel allows overlay).
TEST_F(RootlessBuildIntegrationTest, CopySnapshotterFallbackKeepsIdsAndWhiteouts) {
  auto ctx =
      Context("native", {{"Dockerfile",
                          "FROM busybox\n"
                          "RUN mkdir -p /data && echo old > /data/old1\n"
                          "COPY --chown=1000:1000 f.txt /home/app/f.txt\n"
                          "RUN rm /bin/vi && rm -rf /data && mkdir /data && echo n > /data/n\n"
                          "USER 1000\n"
                          "RUN echo by-app > /tmp/by-app\n"},
                         {"f.txt", "chowned\n"}});
  auto r = AsUser("STRATA_SNAPSHOTTER=native " + Q(bin_) + " --root " + Q(store_) +
                  " -v build --network none --progress plain -t native:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("snapshotter: native (STRATA_SNAPSHOTTER=native)"));
  std::string tv = LayerListing("native:1");
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^-.* 1000/1000 +8 .* home/app/f\.txt$)")));
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^-.* 1000/1000 .* tmp/by-app$)")));
  EXPECT_THAT(tv, HasSubstr("bin/.wh.vi"));
  // The copy snapshotter never marks a directory opaque: one whiteout per
  // lower child that is gone.
  EXPECT_THAT(tv, HasSubstr("data/.wh.old1"));
  EXPECT_THAT(Lines(tv), Each(Not(ContainsRegex(R"( [0-9]{6,}/[0-9]+ )"))));
  r = AsUser("STRATA_SNAPSHOTTER=fuse " + Q(bin_) + " --root " + Q(store_) +
             " build --network none -q " + Q(ctx));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("STRATA_SNAPSHOTTER=fuse: want overlay or native"));
}

// A base image with device nodes (old images ship /dev entries): the
// snapshot leaves them out, as moby and podman do rootless, and the base
// layer is unchanged.
TEST_F(RootlessBuildIntegrationTest, BaseWithDeviceNodesBuilds) {
  auto r = RunCommand("mknod -m 0666 " + Q(dir_ / "rootfs/dev/null") + " c 1 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("import " + Q(dir_ / "rootfs") + " devbase:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ctx = Context("dev", {{"Dockerfile", "FROM devbase:1\nRUN echo ok > /ok\n"}});
  r = Strata("build --network none -q -t dev:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string tv = LayerListing("dev:1");
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^crw-rw-rw- 0/0 +1,3 .* dev/null$)")));
  EXPECT_THAT(tv, HasSubstr(" ok\n"));
}

TEST_F(RootlessBuildIntegrationTest, CacheHitsAndLocalCacheExportImport) {
  auto ctx = Context("cache",
                     {{"Dockerfile", "FROM busybox\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g.txt\n"},
                      {"f.txt", "cache me\n"}});
  fs::path cache = out_;
  auto r = Strata("build --network none -q -t c:1 --cache-to type=local,dest=" + Q(cache / "c") +
                  " " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string first = r.output.substr(r.output.rfind("sha256:"));
  r = Strata("build --network none --progress plain -t c:2 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto at = r.output.find("RUN cat /f.txt");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CACHED", at), std::string::npos) << r.output;
  EXPECT_THAT(r.output, HasSubstr(first));

  // A fresh store with the same base image, the cache from the local directory.
  fs::path fresh = fs::path(home_) / (store_.filename().string() + "-fresh");
  r = Strata("save busybox:latest --format oci-archive -o " + Q(out_ / "base.tar"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("load -i " + Q(out_ / "base.tar"), fresh);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("build --network none --progress plain --cache-from type=local,src=" + Q(cache / "c") +
                 " " + Q(ctx),
             fresh);
  (void)RemoveAll(fresh);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  at = r.output.find("RUN cat /f.txt");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CACHED", at), std::string::npos) << r.output;
  EXPECT_THAT(r.output, HasSubstr(first));
}

// Snapshots hold files of subordinate ids in directories of subordinate ids:
// prune runs in the user namespace too, or it could not remove them.
TEST_F(RootlessBuildIntegrationTest, PruneRemovesSnapshotsOfSubordinateIds) {
  auto ctx = Context("prune", {{"Dockerfile",
                                "FROM busybox\n"
                                "RUN mkdir -m 0700 /home/app2 && chown 1000:1000 /home/app2\n"
                                "USER 1000\n"
                                "RUN mkdir -p /home/app2/d/e && echo x > /home/app2/d/e/f\n"}});
  auto r = Strata("build --network none -q -t prune:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto owned_by_subids = [&] {
    return RunCommand("find " + Q(store_ / "snapshots") + " -uid +99999 -path '*home/app2/d/e/f'")
        .output;
  };
  ASSERT_FALSE(owned_by_subids().empty());
  r = Strata("rmi prune:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("rmi busybox:latest");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("prune -a");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("ermission denied")));
  EXPECT_EQ(owned_by_subids(), "");
  EXPECT_TRUE(fs::is_empty(store_ / "snapshots"))
      << RunCommand("ls -la " + Q(store_ / "snapshots")).output;
}

TEST_F(RootlessBuildIntegrationTest, PushesToALocalRegistry) {
  if (!testing::HaveTool("docker-registry") || !testing::HaveTool("skopeo")) {
    GTEST_SKIP() << "docker-registry and skopeo needed";
  }
  registry::testing::RegistryProcess reg({});
  ASSERT_TRUE(reg.ok()) << reg.error();
  auto ctx = Context("push", {{"Dockerfile", "FROM busybox\nRUN echo pushed > /p\n"}});
  auto r = Strata("build --network none -q -t p:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string id = r.output.substr(r.output.rfind("sha256:"), 71);
  r = Strata("--tls-verify=false push p:1 " + reg.host() + "/rootless/p:1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto sk = RunCommand("skopeo inspect --tls-verify=false docker://" + reg.host() +
                       "/rootless/p:1 2>/dev/null");
  ASSERT_EQ(sk.exit_code, 0) << sk.output;
  auto j = nlohmann::json::parse(sk.output, nullptr, false);
  EXPECT_EQ(j["Digest"], id);
  EXPECT_EQ(j["Layers"].size(), 2u);
}

TEST_F(RootlessBuildIntegrationTest, SingleIdMappingBuildsRootFilesAndNamesSubuidForChown) {
  // `unshare --map-root-user` gives strata the mapping it makes itself for a
  // user without /etc/subuid ranges: 0 -> the user, nothing else. The base
  // must then be all root's (make-busybox-rootfs.sh gives /home/app to 1000).
  auto r0 = RunCommand("chown -R 0:0 " + Q(dir_ / "rootfs"));
  ASSERT_EQ(r0.exit_code, 0) << r0.output;
  r0 = Strata("import " + Q(dir_ / "rootfs") + " busybox:latest");
  ASSERT_EQ(r0.exit_code, 0) << r0.output;
  auto ctx = Context("single", {{"Dockerfile", "FROM busybox\nCOPY f /f\nRUN echo ok > /ok\n"},
                                {"f", "root-owned\n"}});
  auto r = AsUser("unshare --user --map-root-user --mount " + Q(bin_) + " --root " + Q(store_) +
                  " build --network none -q -t single:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string tv = LayerListing("single:1");
  EXPECT_THAT(Lines(tv), Contains(ContainsRegex(R"(^-.* 0/0 +11 .* f$)")));
  EXPECT_THAT(tv, HasSubstr(" ok"));

  auto bad = Context("chown",
                     {{"Dockerfile", "FROM busybox\nCOPY --chown=1000:1000 f /f\n"}, {"f", "x\n"}});
  r = AsUser("unshare --user --map-root-user --mount " + Q(bin_) + " --root " + Q(store_) +
             " build --network none -q " + Q(bad));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.output, HasSubstr("/etc/subuid"));
  EXPECT_THAT(r.output, Not(HasSubstr("Invalid argument")));
}

// The default RUN network (slirp4netns NAT) from inside a user namespace.
// The test user cannot open this host's /dev/net/tun (0600), so root runs
// strata in a namespace of its own (`unshare --map-root-user`: 0 -> 0), where
// the device's owner is mapped: the same code path as a rootless build on a
// host with Debian's 0666 device.
TEST_F(RootlessBuildIntegrationTest, DefaultNatNetworkInAUserNamespace) {
  if (!testing::HaveTool("slirp4netns")) GTEST_SKIP() << "slirp4netns not installed";
  auto r = RunCommand("chown -R 0:0 " + Q(dir_ / "rootfs"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::path root_store = dir_ / "root-store";
  r = RunCommand(Q(bin_) + " --root " + Q(root_store) + " import " + Q(dir_ / "rootfs") +
                 " busybox:latest");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ctx = Context("nat", {{"Dockerfile",
                              "FROM busybox\n"
                              "RUN ls /sys/class/net > /ifs && grep nameserver /etc/resolv.conf > "
                              "/ns\n"}});
  r = RunCommand("unshare --user --map-root-user --mount " + Q(bin_) + " --root " + Q(root_store) +
                 " -v build --progress plain -t nat:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("snapshotter: overlay (userxattr)"));
  r = RunCommand(Q(bin_) + " --root " + Q(root_store) + " unpack nat:1 " + Q(dir_ / "nat-fs"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ifs = ReadFile(dir_ / "nat-fs/ifs");
  ASSERT_TRUE(ifs.has_value());
  EXPECT_EQ(*ifs, "lo\ntap0\n");
  auto ns = ReadFile(dir_ / "nat-fs/ns");
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(*ns, "nameserver 10.0.2.3\n");
}

TEST_F(RootlessBuildIntegrationTest, MissingPrerequisitesGetOneLineEach) {
  auto ctx = Context("pre", {{"Dockerfile", "FROM busybox\nRUN true\n"}});
  // No newuidmap in PATH while the user has ranges.
  auto r = Strata("build --network none -q " + Q(ctx), {});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = AsUser(Q(bin_) + " --root " + Q(store_) + " build --network none -q " + Q(ctx),
             "/nonexistent");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output,
            fmt::format("strata: rootless build: newuidmap not found in PATH; install Debian's "
                        "uidmap (apt-get install uidmap) to use {}'s ranges in /etc/subuid\n",
                        kUser));
  // The default network where /dev/net/tun is closed to the user.
  struct stat st {};
  if (::stat("/dev/net/tun", &st) == 0 && (st.st_mode & 06) != 06) {
    r = Strata("build -q --no-cache " + Q(ctx));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr("Dockerfile:2: "));
    EXPECT_THAT(r.output, HasSubstr("/dev/net/tun is not open to unprivileged users here"));
    EXPECT_THAT(r.output, HasSubstr("--network none"));
  }
}

}  // namespace
}  // namespace strata
