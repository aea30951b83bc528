#include "builder/runtime/run_network.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;

TEST(RunNetworkTest, NatHelperArgsBlockHostLoopbackAndTieLifetimeToUs) {
  auto args = NatHelperArgs("/usr/bin/slirp4netns", "/b/netns", 3, 4);
  EXPECT_THAT(args,
              ElementsAre("/usr/bin/slirp4netns", "--configure", "--mtu=65520",
                          "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp",
                          "--ready-fd=3", "--exit-fd=4", "--netns-type=path", "/b/netns", "tap0"));
}

TEST(RunNetworkTest, ResolvConfReplacesEveryNameserverWithTheForwarder) {
  EXPECT_EQ(NatResolvConf("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"),
            "options edns0 trust-ad\nsearch lan\nnameserver 10.0.2.3\n");
  EXPECT_EQ(NatResolvConf("  nameserver 10.255.255.53\n# comment\n"), "nameserver 10.0.2.3\n");
  EXPECT_EQ(NatResolvConf(""), "nameserver 10.0.2.3\n");
  EXPECT_EQ(NatResolvConf("domain example.org"), "domain example.org\nnameserver 10.0.2.3\n");
}

}  // namespace
}  // namespace strata::builder
