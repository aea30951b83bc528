// --add-host, --ulimit, --shm-size parsing (tools/strata/run_options.h).
#include "tools/strata/run_options.h"

#include <limits>

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using ::testing::HasSubstr;

template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r ? "OK" : r.error().message();
}

TEST(RunOptionsTest, AddHostForms) {
  auto a = ParseAddHost("db:10.0.0.5");
  ASSERT_OK(a);
  EXPECT_EQ(a->host, "db");
  EXPECT_EQ(a->ip, "10.0.0.5");
  auto eq = ParseAddHost("db=fd00::1");
  ASSERT_OK(eq);
  EXPECT_EQ(eq->ip, "fd00::1");
  auto v6 = ParseAddHost("v6:[::1]");
  ASSERT_OK(v6);
  EXPECT_EQ(v6->ip, "::1");
  auto colon6 = ParseAddHost("v6:fd00::2");  // split at the first colon, as docker
  ASSERT_OK(colon6);
  EXPECT_EQ(colon6->ip, "fd00::2");
}

TEST(RunOptionsTest, AddHostErrorsNameTheValue) {
  EXPECT_THAT(ErrorOf(ParseAddHost("db")), HasSubstr("--add-host db: want HOST:IP"));
  EXPECT_THAT(ErrorOf(ParseAddHost(":1.2.3.4")), HasSubstr("want HOST:IP"));
  EXPECT_THAT(ErrorOf(ParseAddHost("db:")), HasSubstr("want HOST:IP"));
  EXPECT_THAT(ErrorOf(ParseAddHost("db:not-an-ip")),
              HasSubstr("--add-host db:not-an-ip: \"not-an-ip\" is not an IP address"));
  EXPECT_THAT(ErrorOf(ParseAddHost("db:host-gateway")), HasSubstr("host-gateway is not supported"));
  EXPECT_THAT(ErrorOf(ParseAddHost("a b:1.2.3.4")), HasSubstr("bad host name"));
}

TEST(RunOptionsTest, UlimitForms) {
  auto one = ParseUlimit("nofile=1024");
  ASSERT_OK(one);
  EXPECT_EQ(one->type, "RLIMIT_NOFILE");
  EXPECT_EQ(one->soft, 1024u);
  EXPECT_EQ(one->hard, 1024u);
  auto two = ParseUlimit("nproc=100:200");
  ASSERT_OK(two);
  EXPECT_EQ(two->type, "RLIMIT_NPROC");
  EXPECT_EQ(two->soft, 100u);
  EXPECT_EQ(two->hard, 200u);
  auto inf = ParseUlimit("core=-1");
  ASSERT_OK(inf);
  EXPECT_EQ(inf->hard, std::numeric_limits<uint64_t>::max());
}

TEST(RunOptionsTest, UlimitErrorsNameTheValue) {
  EXPECT_THAT(ErrorOf(ParseUlimit("nofile")), HasSubstr("--ulimit nofile: want NAME=SOFT[:HARD]"));
  EXPECT_THAT(ErrorOf(ParseUlimit("files=10")),
              HasSubstr("unknown limit \"files\" (want as, core"));
  EXPECT_THAT(ErrorOf(ParseUlimit("nofile=ten")), HasSubstr("\"ten\" is not a number"));
  EXPECT_THAT(ErrorOf(ParseUlimit("nofile=10:x")), HasSubstr("\"x\" is not a number"));
  EXPECT_THAT(ErrorOf(ParseUlimit("nofile=20:10")), HasSubstr("soft limit is above the hard"));
}

TEST(RunOptionsTest, ShmSizeUnitsAsDocker) {
  EXPECT_EQ(ParseShmSize("1024").value(), 1024u);
  EXPECT_EQ(ParseShmSize("64k").value(), 64u << 10);
  EXPECT_EQ(ParseShmSize("128m").value(), 128u << 20);
  EXPECT_EQ(ParseShmSize("128MB").value(), 128u << 20);
  EXPECT_EQ(ParseShmSize("1g").value(), 1u << 30);
  EXPECT_EQ(ParseShmSize("2GiB").value(), 2ull << 30);
  for (const char* bad : {"", "0", "m", "1x", "-1m", "1.5g"}) {
    EXPECT_THAT(ErrorOf(ParseShmSize(bad)), HasSubstr("want a positive size")) << bad;
  }
}

}  // namespace
}  // namespace strata::cli
