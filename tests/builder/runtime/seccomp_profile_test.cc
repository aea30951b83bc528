#include "builder/runtime/seccomp_profile.h"

#include <algorithm>

#include "builder/runtime/runtime_spec.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

constexpr KernelVersion kKernel{6, 1};

// Every rule naming `name`.
std::vector<json> RulesFor(const json& profile, std::string_view name) {
  std::vector<json> out;
  for (const json& r : profile["syscalls"]) {
    for (const json& n : r["names"]) {
      if (n == name) out.push_back(r);
    }
  }
  return out;
}

// Allowed without argument conditions.
bool PlainAllowed(const json& profile, std::string_view name) {
  auto rules = RulesFor(profile, name);
  return std::any_of(rules.begin(), rules.end(), [](const json& r) {
    return r["action"] == "SCMP_ACT_ALLOW" && !r.contains("args");
  });
}

TEST(SeccompProfileTest, DefaultActionIsEperm) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64", kKernel);
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(p["defaultErrnoRet"], 1);
}

TEST(SeccompProfileTest, ArchitecturesAreNativePlusCompat) {
  EXPECT_EQ(DefaultSeccompProfile({}, "amd64", kKernel)["architectures"],
            json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_EQ(DefaultSeccompProfile({}, "arm64", kKernel)["architectures"],
            json({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_FALSE(DefaultSeccompProfile({}, "sparc", kKernel).contains("architectures"));
}

TEST(SeccompProfileTest, CommonSyscallsAllowedDangerousOnesNot) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64", kKernel);
  for (const char* ok :
       {"read", "write", "execve", "openat", "clone3", "wait4", "io_uring_setup"}) {
    EXPECT_FALSE(RulesFor(p, ok).empty()) << ok;
  }
  for (const char* no : {"mount", "umount2", "unshare", "setns", "kexec_load", "init_module", "bpf",
                         "perf_event_open", "reboot", "swapon", "keyctl", "add_key",
                         "open_by_handle_at", "iopl", "settimeofday", "syslog"}) {
    EXPECT_TRUE(RulesFor(p, no).empty()) << no;
  }
  EXPECT_TRUE(PlainAllowed(p, "chroot"));  // CAP_SYS_CHROOT is a default capability
}

TEST(SeccompProfileTest, CloneWithoutNamespaceFlagsUnlessSysAdmin) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64", kKernel);
  auto clone = RulesFor(p, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_EQ(
      clone[0]["args"],
      json::array(
          {{{"index", 0}, {"value", 0x7E020000}, {"valueTwo", 0}, {"op", "SCMP_CMP_MASKED_EQ"}}}));
  auto clone3 = RulesFor(p, "clone3");
  ASSERT_EQ(clone3.size(), 1u);
  EXPECT_EQ(clone3[0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(clone3[0]["errnoRet"], 38);  // ENOSYS: libc falls back to clone

  // s390 passes the flags second.
  json s390 = DefaultSeccompProfile(DefaultCapabilities(), "s390x", kKernel);
  auto s390_clone = RulesFor(s390, "clone");
  ASSERT_EQ(s390_clone.size(), 1u);
  EXPECT_EQ(s390_clone[0]["args"][0]["index"], 1);

  std::vector<std::string> admin = DefaultCapabilities();
  admin.push_back("CAP_SYS_ADMIN");
  json a = DefaultSeccompProfile(admin, "amd64", kKernel);
  EXPECT_TRUE(PlainAllowed(a, "clone"));
  EXPECT_TRUE(PlainAllowed(a, "clone3"));
  EXPECT_TRUE(PlainAllowed(a, "mount"));
  EXPECT_TRUE(PlainAllowed(a, "unshare"));
}

TEST(SeccompProfileTest, SocketAllowedExceptVsock) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64", kKernel);
  auto socket = RulesFor(p, "socket");
  ASSERT_EQ(socket.size(), 1u);
  EXPECT_EQ(socket[0]["args"],
            json::array({{{"index", 0}, {"value", 40}, {"valueTwo", 0}, {"op", "SCMP_CMP_NE"}}}));
}

TEST(SeccompProfileTest, PersonalityOnlyDockersPersonas) {
  json p = DefaultSeccompProfile(DefaultCapabilities(), "amd64", kKernel);
  std::vector<uint64_t> values;
  for (const json& r : RulesFor(p, "personality")) values.push_back(r["args"][0]["value"]);
  EXPECT_THAT(values, ElementsAre(0x0, 0x8, 0x20000, 0x20008, 0xffffffff));
}

TEST(SeccompProfileTest, ArchSpecificRules) {
  json amd64 = DefaultSeccompProfile({}, "amd64", kKernel);
  EXPECT_TRUE(PlainAllowed(amd64, "arch_prctl"));
  EXPECT_TRUE(PlainAllowed(amd64, "modify_ldt"));
  EXPECT_FALSE(PlainAllowed(amd64, "set_tls"));
  json arm64 = DefaultSeccompProfile({}, "arm64", kKernel);
  EXPECT_FALSE(PlainAllowed(arm64, "arch_prctl"));
  EXPECT_TRUE(PlainAllowed(arm64, "set_tls"));
}

TEST(SeccompProfileTest, CapabilityGatedRules) {
  EXPECT_FALSE(PlainAllowed(DefaultSeccompProfile({}, "amd64", kKernel), "kcmp"));
  EXPECT_TRUE(PlainAllowed(DefaultSeccompProfile({"CAP_SYS_PTRACE"}, "amd64", kKernel), "kcmp"));
  EXPECT_TRUE(
      PlainAllowed(DefaultSeccompProfile({"CAP_SYS_TIME"}, "amd64", kKernel), "settimeofday"));
  EXPECT_FALSE(PlainAllowed(DefaultSeccompProfile({}, "amd64", kKernel), "chroot"));
}

TEST(SeccompProfileTest, PtraceNeedsKernel48) {
  EXPECT_TRUE(PlainAllowed(DefaultSeccompProfile({}, "amd64", {4, 8}), "ptrace"));
  EXPECT_FALSE(PlainAllowed(DefaultSeccompProfile({}, "amd64", {4, 4}), "ptrace"));
}

TEST(SeccompProfileTest, HostHelpers) {
  EXPECT_FALSE(HostSeccompArch().empty());
  EXPECT_GE(HostKernelVersion(), (KernelVersion{3, 0}));
}

}  // namespace
}  // namespace strata::builder
