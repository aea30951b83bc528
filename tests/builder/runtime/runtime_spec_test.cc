#include "builder/runtime/runtime_spec.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

RuntimeSpecOptions BaseOptions() {
  RuntimeSpecOptions o;
  o.args = {"/bin/sh", "-c", "echo hi"};
  o.env = {"PATH=/bin", "FOO=bar"};
  o.cwd = "/work";
  o.uid = 1000;
  o.gid = 50;
  o.additional_gids = {10};
  o.rootfs = "/var/lib/strata/mnt/x";
  o.hostname = "builder";
  o.hosts_file = "/b/hosts";
  o.resolv_conf_file = "/b/resolv.conf";
  o.hostname_file = "/b/hostname";
  o.network_namespace = "/b/netns";
  return o;
}

const json* FindMount(const json& spec, std::string_view dest) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == dest) return &m;
  }
  return nullptr;
}

std::vector<std::string> NamespaceTypes(const json& spec) {
  std::vector<std::string> out;
  for (const json& ns : spec["linux"]["namespaces"]) out.push_back(ns["type"]);
  return out;
}

TEST(RuntimeSpecTest, ProcessFields) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  const json& p = spec["process"];
  EXPECT_EQ(p["args"], json({"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(p["env"], json({"PATH=/bin", "FOO=bar"}));
  EXPECT_EQ(p["cwd"], "/work");
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["noNewPrivileges"], true);
  EXPECT_EQ(p["user"], json({{"uid", 1000}, {"gid", 50}, {"additionalGids", {10}}}));
  EXPECT_FALSE(p.contains("rlimits"));
  EXPECT_EQ(spec["root"], json({{"path", "/var/lib/strata/mnt/x"}, {"readonly", false}}));
  EXPECT_EQ(spec["hostname"], "builder");
  EXPECT_EQ(spec["ociVersion"], "1.0.2");
}

TEST(RuntimeSpecTest, DockerDefaultCapabilitiesWithoutNetRawInBoundingEffectivePermitted) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  const std::vector<std::string> want = {
      "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FSETID",     "CAP_FOWNER",  "CAP_MKNOD",
      "CAP_SETGID",     "CAP_SETUID",       "CAP_SETFCAP",    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
      "CAP_SYS_CHROOT", "CAP_KILL",         "CAP_AUDIT_WRITE"};
  const json& caps = spec["process"]["capabilities"];
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_THAT(caps[set].get<std::vector<std::string>>(), UnorderedElementsAreArray(want)) << set;
  }
  EXPECT_FALSE(caps.contains("inheritable"));
  EXPECT_FALSE(caps.contains("ambient"));
  EXPECT_THAT(caps["bounding"].get<std::vector<std::string>>(), Not(Contains("CAP_SYS_ADMIN")));
  EXPECT_THAT(caps["bounding"].get<std::vector<std::string>>(), Not(Contains("CAP_NET_RAW")));
}

TEST(RuntimeSpecTest, RootlessHasNoCgroupLimitAndKeepsSysfsInItsOwnNetwork) {
  RuntimeSpecOptions o = BaseOptions();
  o.pids_limit = 4096;
  ASSERT_OK_AND_ASSIGN(json rootful, GenerateRuntimeSpec(o));
  EXPECT_EQ(rootful["linux"]["resources"]["pids"]["limit"], 4096);
  o.rootless = true;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  EXPECT_FALSE(spec["linux"].contains("resources"));
  const json* sys = FindMount(spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ((*sys)["type"], "sysfs");
  const json* pts = FindMount(spec, "/dev/pts");
  ASSERT_NE(pts, nullptr);
  EXPECT_THAT((*pts)["options"], ::testing::Contains("gid=5"));
}

TEST(RuntimeSpecTest, RootlessHostNetworkBindsSysAndUnmappedTtyGidIsLeftOut) {
  RuntimeSpecOptions o = BaseOptions();
  o.rootless = true;
  o.tty_gid_mapped = false;
  o.network = NetworkMode::kHost;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  const json* sys = FindMount(spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ((*sys)["type"], "bind");
  EXPECT_EQ((*sys)["source"], "/sys");
  EXPECT_THAT((*sys)["options"], ::testing::Contains("ro"));
  const json* pts = FindMount(spec, "/dev/pts");
  ASSERT_NE(pts, nullptr);
  EXPECT_THAT((*pts)["options"], ::testing::Not(::testing::Contains("gid=5")));
}

TEST(RuntimeSpecTest, HostNetworkHasNoNetworkNamespace) {
  auto o = BaseOptions();
  o.network = NetworkMode::kHost;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  EXPECT_THAT(NamespaceTypes(spec), UnorderedElementsAreArray({"pid", "ipc", "uts", "mount"}));
}

TEST(RuntimeSpecTest, DefaultNetworkJoinsThePrivateNamespaceByPath) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  EXPECT_THAT(NamespaceTypes(spec),
              UnorderedElementsAreArray({"pid", "ipc", "uts", "mount", "network"}));
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == "network") {
      EXPECT_EQ(ns["path"], "/b/netns");
    }
  }
  auto o = BaseOptions();
  o.network_namespace.clear();
  auto bad = GenerateRuntimeSpec(o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(RuntimeSpecTest, SandboxHasDockerSeccompProfile) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  const json& sc = spec["linux"]["seccomp"];
  EXPECT_EQ(sc["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc["defaultErrnoRet"], 1);
  EXPECT_FALSE(sc["syscalls"].empty());
  // Resolved for the capabilities the process gets: no CAP_SYS_ADMIN, so
  // mount(2) is not allowed by name.
  EXPECT_EQ(sc.dump().find("\"mount\""), std::string::npos);
}

TEST(RuntimeSpecTest, InsecureHasAllCapabilitiesNoSeccompNoMaskedPaths) {
  auto o = BaseOptions();
  o.security = SecurityMode::kInsecure;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  const json& caps = spec["process"]["capabilities"];
  EXPECT_THAT(caps["effective"].get<std::vector<std::string>>(), Contains("CAP_SYS_ADMIN"));
  EXPECT_THAT(caps["bounding"].get<std::vector<std::string>>(), Contains("CAP_NET_RAW"));
  EXPECT_EQ(caps["bounding"].size(), AllCapabilities().size());
  o.insecure_capabilities = {"CAP_CHOWN", "CAP_SYS_ADMIN"};
  ASSERT_OK_AND_ASSIGN(json limited, GenerateRuntimeSpec(o));
  EXPECT_EQ(limited["process"]["capabilities"]["bounding"], json({"CAP_CHOWN", "CAP_SYS_ADMIN"}));
  EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
  const json* sys = FindMount(spec, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_THAT((*sys)["options"].get<std::vector<std::string>>(), Contains("rw"));
}

TEST(RuntimeSpecTest, NetworkNoneAddsNetworkNamespace) {
  auto o = BaseOptions();
  o.network = NetworkMode::kNone;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  EXPECT_THAT(NamespaceTypes(spec),
              UnorderedElementsAreArray({"pid", "ipc", "uts", "mount", "network"}));
}

TEST(RuntimeSpecTest, PidsLimitIsTheOnlyResource) {
  auto o = BaseOptions();
  o.pids_limit = 100;
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  EXPECT_EQ(spec["linux"]["resources"], json({{"pids", {{"limit", 100}}}}));
  EXPECT_FALSE(spec["linux"].contains("cgroupsPath"));
}

TEST(RuntimeSpecTest, NoCgroupsNoResources) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  EXPECT_FALSE(spec["linux"].contains("resources"));
  EXPECT_FALSE(spec["linux"].contains("cgroupsPath"));
  EXPECT_FALSE(FindMount(spec, "/sys/fs/cgroup"));
  EXPECT_FALSE(spec["linux"]["namespaces"].dump().find("cgroup") != std::string::npos);
}

TEST(RuntimeSpecTest, StandardMounts) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  const json* proc = FindMount(spec, "/proc");
  ASSERT_TRUE(proc);
  EXPECT_EQ((*proc)["type"], "proc");
  const json* dev = FindMount(spec, "/dev");
  ASSERT_TRUE(dev);
  EXPECT_EQ((*dev)["type"], "tmpfs");
  EXPECT_THAT((*dev)["options"].get<std::vector<std::string>>(), Contains("mode=755"));
  const json* pts = FindMount(spec, "/dev/pts");
  ASSERT_TRUE(pts);
  EXPECT_EQ((*pts)["type"], "devpts");
  EXPECT_THAT((*pts)["options"].get<std::vector<std::string>>(), Contains("newinstance"));
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_TRUE(shm);
  EXPECT_THAT((*shm)["options"].get<std::vector<std::string>>(), Contains("mode=1777"));
  ASSERT_TRUE(FindMount(spec, "/dev/mqueue"));
  EXPECT_EQ((*FindMount(spec, "/dev/mqueue"))["type"], "mqueue");
  const json* sys = FindMount(spec, "/sys");
  ASSERT_TRUE(sys);
  EXPECT_EQ((*sys)["type"], "sysfs");
  EXPECT_THAT((*sys)["options"].get<std::vector<std::string>>(), Contains("ro"));
  // /dev comes before the mounts inside it.
  auto pos = [&](std::string_view d) {
    const auto& m = spec["mounts"];
    return std::find_if(m.begin(), m.end(), [&](const json& x) { return x["destination"] == d; }) -
           m.begin();
  };
  EXPECT_LT(pos("/dev"), pos("/dev/pts"));
  EXPECT_LT(pos("/dev"), pos("/dev/shm"));
}

TEST(RuntimeSpecTest, EtcFilesBoundReadOnly) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  for (auto [dest, src] :
       {std::pair{"/etc/hosts", "/b/hosts"}, std::pair{"/etc/resolv.conf", "/b/resolv.conf"},
        std::pair{"/etc/hostname", "/b/hostname"}}) {
    const json* m = FindMount(spec, dest);
    ASSERT_TRUE(m) << dest;
    EXPECT_EQ((*m)["type"], "bind");
    EXPECT_EQ((*m)["source"], src);
    EXPECT_THAT((*m)["options"].get<std::vector<std::string>>(), Contains("ro"));
    EXPECT_THAT((*m)["options"].get<std::vector<std::string>>(), Contains("rbind"));
  }
  auto o = BaseOptions();
  o.hostname_file.clear();
  ASSERT_OK_AND_ASSIGN(json without, GenerateRuntimeSpec(o));
  EXPECT_FALSE(FindMount(without, "/etc/hostname"));
}

// The minimal devices come from the runtime (runtime-spec "Default
// Devices"); an explicit list breaks runc's device cgroup rules.
TEST(RuntimeSpecTest, LeavesDefaultDevicesToTheRuntime) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  EXPECT_FALSE(spec["linux"].contains("devices"));
}

TEST(RuntimeSpecTest, MaskedAndReadonlyPathsAsDocker) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  auto masked = spec["linux"]["maskedPaths"].get<std::vector<std::string>>();
  for (const char* p : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/proc/scsi",
                        "/sys/firmware", "/proc/sched_debug"}) {
    EXPECT_THAT(masked, Contains(p));
  }
  EXPECT_THAT(spec["linux"]["readonlyPaths"].get<std::vector<std::string>>(),
              UnorderedElementsAreArray(
                  {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
}

TEST(RuntimeSpecTest, ExtraBindAndTmpfsMounts) {
  auto o = BaseOptions();
  o.binds = {BindMount{"/host/cache", "/root/.cache", false},
             BindMount{"/host/secret", "/run/secrets/x", true}};
  o.tmpfs = {TmpfsMount{"/tmp/scratch", 1 << 20, 0755}};
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  const json* rw = FindMount(spec, "/root/.cache");
  ASSERT_TRUE(rw);
  EXPECT_EQ((*rw)["source"], "/host/cache");
  EXPECT_THAT((*rw)["options"].get<std::vector<std::string>>(), Not(Contains("ro")));
  const json* ro = FindMount(spec, "/run/secrets/x");
  ASSERT_TRUE(ro);
  EXPECT_THAT((*ro)["options"].get<std::vector<std::string>>(), Contains("ro"));
  const json* t = FindMount(spec, "/tmp/scratch");
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)["type"], "tmpfs");
  EXPECT_THAT((*t)["options"].get<std::vector<std::string>>(), Contains("mode=755"));
  EXPECT_THAT((*t)["options"].get<std::vector<std::string>>(), Contains("size=1048576"));
}

TEST(RuntimeSpecTest, RejectsInvalidOptions) {
  auto check = [](RuntimeSpecOptions o) {
    auto r = GenerateRuntimeSpec(o);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  };
  auto o = BaseOptions();
  o.args.clear();
  check(o);
  o = BaseOptions();
  o.cwd = "relative";
  check(o);
  o = BaseOptions();
  o.rootfs = "rel/root";
  check(o);
  o = BaseOptions();
  o.env = {"NOEQUALS"};
  check(o);
  o = BaseOptions();
  o.binds = {BindMount{"/a", "b", true}};
  check(o);
  o = BaseOptions();
  o.tmpfs = {TmpfsMount{"t"}};
  check(o);
}

TEST(RuntimeSpecTest, RlimitsWrittenWhenGiven) {
  auto o = BaseOptions();
  o.rlimits = {Rlimit{"RLIMIT_NOFILE", 512, 1024}};
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(o));
  EXPECT_EQ(spec["process"]["rlimits"],
            json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 512}}}));
}

TEST(RuntimeSpecTest, ClampRlimitsNeverExceedsCurrentHardLimit) {
  struct rlimit cur;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &cur), 0);
  ASSERT_OK_AND_ASSIGN(auto clamped, ClampRlimits({Rlimit{"RLIMIT_NOFILE", UINT64_MAX, UINT64_MAX},
                                                   Rlimit{"RLIMIT_NPROC", 10, 5}}));
  ASSERT_EQ(clamped.size(), 2u);
  if (cur.rlim_max != RLIM_INFINITY) {
    EXPECT_EQ(clamped[0].hard, cur.rlim_max);
    EXPECT_EQ(clamped[0].soft, cur.rlim_max);
  }
  EXPECT_EQ(clamped[1].hard, 5u);
  EXPECT_EQ(clamped[1].soft, 5u);  // soft never above hard
  auto bad = ClampRlimits({Rlimit{"RLIMIT_BOGUS", 1, 1}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(RuntimeSpecTest, WithDefaultEnvAddsPathAndHomeOnlyWhenMissing) {
  EXPECT_THAT(
      WithDefaultEnv({"A=1"}, "/home/app"),
      ElementsAre("A=1", std::string("PATH=") + std::string(kDefaultPath), "HOME=/home/app"));
  EXPECT_THAT(WithDefaultEnv({"PATH=/x", "HOME=/h", "A=1", "A=2"}, "/root"),
              ElementsAre("PATH=/x", "HOME=/h", "A=2"));
}

TEST(RuntimeSpecTest, HostsFileHasLocalhostAndHostname) {
  std::string hosts = GenerateHostsFile("builder");
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost builder\n"), std::string::npos);
  EXPECT_NE(hosts.find("::1\tlocalhost"), std::string::npos);
}

TEST(RuntimeSpecTest, HostsFileAppendsExtraHostsAsDocker) {
  std::string hosts = GenerateHostsFile("builder", {{"db", "10.0.0.5"}, {"v6", "fd00::1"}});
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost builder\n"), std::string::npos);
  EXPECT_TRUE(hosts.ends_with("10.0.0.5\tdb\nfd00::1\tv6\n")) << hosts;
}

TEST(RuntimeSpecTest, ShmSizeDefaultsTo64MiBAndCanBeSet) {
  ASSERT_OK_AND_ASSIGN(json spec, GenerateRuntimeSpec(BaseOptions()));
  const json* shm = FindMount(spec, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_THAT(shm->at("options").dump(), ::testing::HasSubstr("\"size=65536k\""));
  auto o = BaseOptions();
  o.shm_size_bytes = 128ull << 20;
  ASSERT_OK_AND_ASSIGN(json big, GenerateRuntimeSpec(o));
  shm = FindMount(big, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_THAT(shm->at("options").dump(), ::testing::HasSubstr("\"size=134217728\""));
}

TEST(RuntimeSpecTest, ResolvConfHostNetworkKeepsHostFile) {
  std::string host = "search example.com\nnameserver 127.0.0.53\noptions edns0\n";
  EXPECT_EQ(GenerateResolvConf(host, NetworkMode::kHost), host);
}

TEST(RuntimeSpecTest, ResolvConfNoneDropsLoopbackAndFallsBack) {
  std::string host = "search example.com\nnameserver 127.0.0.53\n";
  std::string got = GenerateResolvConf(host, NetworkMode::kNone);
  EXPECT_EQ(got.find("127.0.0.53"), std::string::npos);
  EXPECT_NE(got.find("search example.com\n"), std::string::npos);
  EXPECT_NE(got.find("nameserver 8.8.8.8\n"), std::string::npos);
  EXPECT_EQ(GenerateResolvConf("nameserver 10.0.0.2\n", NetworkMode::kNone),
            "nameserver 10.0.0.2\n");
  EXPECT_NE(GenerateResolvConf("", NetworkMode::kHost).find("nameserver 8.8.8.8"),
            std::string::npos);
}

TEST(RuntimeSpecTest, ResolvConfDefaultNetworkUsesTheNatForwarder) {
  std::string host = "search example.com\nnameserver 127.0.0.53\nnameserver 10.1.1.1\n";
  EXPECT_EQ(GenerateResolvConf(host, NetworkMode::kPrivate),
            "search example.com\nnameserver 10.0.2.3\n");
}

TEST(RuntimeSpecTest, ParseNetworkMode) {
  EXPECT_EQ(ParseNetworkMode("host").value(), NetworkMode::kHost);
  EXPECT_EQ(ParseNetworkMode("none").value(), NetworkMode::kNone);
  EXPECT_EQ(ParseNetworkMode("default").value(), NetworkMode::kPrivate);
  EXPECT_EQ(ParseNetworkMode("").value(), NetworkMode::kPrivate);
  EXPECT_FALSE(ParseNetworkMode("bridge").has_value());
  // Distinct names: they are part of the RUN cache key.
  EXPECT_EQ(NetworkModeName(NetworkMode::kPrivate), "default");
  EXPECT_EQ(NetworkModeName(NetworkMode::kNone), "none");
  EXPECT_EQ(NetworkModeName(NetworkMode::kHost), "host");
}

TEST(RuntimeSpecTest, ParseSecurityMode) {
  EXPECT_EQ(ParseSecurityMode("").value(), SecurityMode::kSandbox);
  EXPECT_EQ(ParseSecurityMode("sandbox").value(), SecurityMode::kSandbox);
  EXPECT_EQ(ParseSecurityMode("insecure").value(), SecurityMode::kInsecure);
  auto bad = ParseSecurityMode("privileged");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(RuntimeSpecTest, BoundingCapabilitiesAreThoseThisProcessHas) {
  auto caps = BoundingCapabilities();
  for (size_t i = 0; i < AllCapabilities().size(); ++i) {
    bool has = ::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(i), 0, 0, 0) == 1;
    EXPECT_EQ(std::find(caps.begin(), caps.end(), AllCapabilities()[i]) != caps.end(), has) << i;
  }
}

TEST(RuntimeSpecTest, DefaultRlimitsAreContainerdsNofile) {
  EXPECT_EQ(DefaultRlimits(), std::vector<Rlimit>({Rlimit{"RLIMIT_NOFILE", 1024, 1024}}));
}

}  // namespace
}  // namespace strata::builder
