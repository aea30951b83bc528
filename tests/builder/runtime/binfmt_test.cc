// binfmt_misc handling against fake binfmt_misc and binfmt.d directories.
#include "builder/runtime/binfmt.h"

#include <gmock/gmock.h>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

oci::Platform P(std::string_view s) { return *oci::Platform::Parse(s); }

constexpr std::string_view kAarch64Rule =
    ":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
    "\\x00\\x02\\x00\\xb7\\x00:"
    "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff"
    "\\xff\\xff\\xfe\\xff\\xff\\xff:/bin/sh:OC";

// A fake binfmt_misc: `register` and `status` files, and handlers as the
// kernel shows them.
struct FakeBinfmt {
  ScopedTempDir dir = *ScopedTempDir::Create();
  fs::path misc() const { return dir.path() / "misc"; }
  fs::path conf() const { return dir.path() / "binfmt.d"; }
  void Mount() {
    testing::WriteTestFile(misc() / "register", "");
    testing::WriteTestFile(misc() / "status", "enabled\n");
  }
  void Handler(const std::string& name, bool enabled, const std::string& interpreter,
               const std::string& flags) {
    testing::WriteTestFile(misc() / name,
                           fmt::format("{}\ninterpreter {}\nflags: {}\noffset 0\n"
                                       "magic 7f454c46\nmask ffffffff\n",
                                       enabled ? "enabled" : "disabled", interpreter, flags));
  }
};

TEST(BinfmtTest, QemuArchMapsOciArchitectures) {
  EXPECT_EQ(*QemuArch(P("linux/arm64")), "aarch64");
  EXPECT_EQ(*QemuArch(P("linux/amd64")), "x86_64");
  EXPECT_EQ(*QemuArch(P("linux/arm/v7")), "arm");
  EXPECT_EQ(*QemuArch(P("linux/mips64le")), "mips64el");
  EXPECT_THAT(QemuArch(P("linux/foo")),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("unknown architecture \"foo\"")));
  EXPECT_THAT(QemuArch(P("windows/amd64")),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("linux images only")));
}

TEST(BinfmtTest, QemuArchOfNameTakesPlatformsArchitecturesAndQemuNames) {
  EXPECT_EQ(*QemuArchOfName("linux/arm64"), "aarch64");
  EXPECT_EQ(*QemuArchOfName("arm64"), "aarch64");
  EXPECT_EQ(*QemuArchOfName("aarch64"), "aarch64");
  EXPECT_EQ(*QemuArchOfName("riscv64"), "riscv64");
  EXPECT_THAT(QemuArchOfName("vax"), StatusIs(ErrorCode::kInvalidArgument, HasSubstr("vax")));
  EXPECT_EQ(PlatformOfQemuArch("aarch64")->ToString(), "linux/arm64");
  EXPECT_FALSE(PlatformOfQemuArch("sh4").has_value());
}

TEST(BinfmtTest, NeedsEmulationOnlyForForeignArchitectures) {
  EXPECT_FALSE(NeedsEmulation(P("linux/amd64"), P("linux/amd64")));
  EXPECT_TRUE(NeedsEmulation(P("linux/arm64"), P("linux/amd64")));
  EXPECT_FALSE(NeedsEmulation(P("linux/386"), P("linux/amd64")));
  EXPECT_FALSE(NeedsEmulation(P("linux/arm/v7"), P("linux/arm64")));
  EXPECT_TRUE(NeedsEmulation(P("linux/amd64"), P("linux/arm64")));
}

TEST(BinfmtTest, ParsesAHandlersStatus) {
  auto h = ParseBinfmtHandler(
      "qemu-aarch64",
      "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n");
  ASSERT_OK(h);
  EXPECT_TRUE(h->enabled);
  EXPECT_EQ(h->interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
  EXPECT_EQ(h->flags, "POF");
  EXPECT_THAT(ParseBinfmtHandler("x", "garbage\n"), StatusIs(ErrorCode::kInvalidArgument));
}

TEST(BinfmtTest, RuleFlagsGainFAndKeepTheOthers) {
  auto r = ParseBinfmtRule(std::string(kAarch64Rule) + "\n");
  ASSERT_OK(r);
  EXPECT_EQ(r->name, "qemu-aarch64");
  EXPECT_EQ(r->interpreter, "/bin/sh");
  EXPECT_EQ(r->flags, "OCF");
  EXPECT_TRUE(r->line.ends_with(":/bin/sh:OCF"));
  auto already = ParseBinfmtRule(":x:M::\\x7f:\\xff:/bin/sh:POF");
  ASSERT_OK(already);
  EXPECT_EQ(already->flags, "POF");
  EXPECT_THAT(ParseBinfmtRule(":x:M::a:b"), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseBinfmtRule(":x:Q::a:b:/bin/sh:F"), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(ParseBinfmtRule(":x:M::a:b:/bin/sh:Z"),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("unknown flag 'Z'")));
}

TEST(BinfmtTest, NativePlatformsNeedNothing) {
  FakeBinfmt fake;  // not even mounted
  EXPECT_OK(CheckEmulation(P("linux/amd64"), P("linux/amd64"), fake.misc()));
}

TEST(BinfmtTest, CheckSaysWhatToRun) {
  FakeBinfmt fake;
  ASSERT_OK(MakeDirs(fake.misc()));
  EXPECT_THAT(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kFailedPrecondition,
                       AllOf(HasSubstr("binfmt_misc is not mounted"),
                             HasSubstr("strata binfmt --install aarch64"))));
  fake.Mount();
  EXPECT_THAT(
      CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
      StatusIs(ErrorCode::kFailedPrecondition,
               AllOf(HasSubstr("no binfmt_misc handler qemu-aarch64"),
                     HasSubstr("strata binfmt --install aarch64"), HasSubstr("qemu-user-static"))));
  fake.Handler("qemu-aarch64", false, "/bin/sh", "F");
  EXPECT_THAT(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("is disabled")));
  fake.Handler("qemu-aarch64", true, "/bin/sh", "OC");
  EXPECT_THAT(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("lacks the F flag")));
  fake.Handler("qemu-aarch64", true, "/nonexistent/qemu-aarch64", "F");
  EXPECT_THAT(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("does not exist")));
  fake.Handler("qemu-aarch64", true, "/bin/sh", "POF");
  EXPECT_OK(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()));
  testing::WriteTestFile(fake.misc() / "status", "disabled\n");
  EXPECT_THAT(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("echo 1 >")));
  testing::WriteTestFile(fake.misc() / "status", "enabled\n");
  EXPECT_OK(CheckEmulation(P("linux/arm64"), P("linux/amd64"), fake.misc()));
  EXPECT_THAT(CheckEmulation(P("linux/foo"), P("linux/amd64"), fake.misc()),
              StatusIs(ErrorCode::kInvalidArgument, HasSubstr("unknown architecture")));
}

TEST(BinfmtTest, InstallRegistersTheRuleWithF) {
  FakeBinfmt fake;
  fake.Mount();
  testing::WriteTestFile(fake.conf() / "qemu-aarch64.conf",
                         "# comment\n" + std::string(kAarch64Rule) + "\n");
  EXPECT_EQ(AvailableQemuArches(fake.conf()), std::vector<std::string>{"aarch64"});
  auto r = InstallBinfmtHandler("aarch64", fake.misc(), fake.conf());
  ASSERT_OK(r);
  EXPECT_TRUE(*r);
  auto reg = ReadFile(fake.misc() / "register");
  ASSERT_OK(reg);
  EXPECT_TRUE(reg->starts_with(":qemu-aarch64:M::"));
  EXPECT_TRUE(reg->ends_with(":/bin/sh:OCF")) << *reg;
  // What the kernel would show now: registered with F, left alone.
  fake.Handler("qemu-aarch64", true, "/bin/sh", "OCF");
  auto again = InstallBinfmtHandler("aarch64", fake.misc(), fake.conf());
  ASSERT_OK(again);
  EXPECT_FALSE(*again);
  EXPECT_THAT(InstallBinfmtHandler("riscv64", fake.misc(), fake.conf()),
              StatusIs(ErrorCode::kNotFound, HasSubstr("qemu-user-static")));
  EXPECT_THAT(InstallBinfmtHandler("../x", fake.misc(), fake.conf()),
              StatusIs(ErrorCode::kInvalidArgument));
  ASSERT_EQ(ListQemuHandlers(fake.misc()).size(), 1u);
  EXPECT_EQ(ListQemuHandlers(fake.misc())[0].name, "qemu-aarch64");
  // Uninstall writes -1 to the handler's file (the kernel then removes it).
  auto un = UninstallBinfmtHandler("aarch64", fake.misc());
  ASSERT_OK(un);
  EXPECT_TRUE(*un);
  EXPECT_TRUE(ReadFile(fake.misc() / "qemu-aarch64")->starts_with("-1"));
  auto none = UninstallBinfmtHandler("riscv64", fake.misc());
  ASSERT_OK(none);
  EXPECT_FALSE(*none);
}

}  // namespace
}  // namespace strata::builder
