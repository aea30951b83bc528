#include "oci/util/userns.h"

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/test_util.h"

namespace strata {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(UserNamespaceTest, InitialMapIsTheFullIdentity) {
  EXPECT_TRUE(IsInitialUidMap("         0          0 4294967295\n"));
  EXPECT_FALSE(IsInitialUidMap("         0       1000          1\n"));
  EXPECT_FALSE(IsInitialUidMap("0 1000 1\n1 100000 65536\n"));
  EXPECT_FALSE(IsInitialUidMap("0 0 4294967295\n1 2 3\n"));
  EXPECT_FALSE(IsInitialUidMap(""));
}

TEST(UserNamespaceTest, IdInMapLooksAtEveryRange) {
  const char* map = "0 1000 1\n1 100000 65536\n";
  EXPECT_TRUE(IdInMap(map, 0));
  EXPECT_TRUE(IdInMap(map, 5));
  EXPECT_TRUE(IdInMap(map, 65536));
  EXPECT_FALSE(IdInMap(map, 65537));
  EXPECT_FALSE(IdInMap("0 1000 1\n", 5));
  EXPECT_TRUE(IdInMap("0 0 4294967295\n", 4294967294u));
  EXPECT_FALSE(IdInMap("", 0));
}

TEST(UserNamespaceTest, ProcessPrefixesGoTogether) {
  if (InUserNamespace()) {
    EXPECT_EQ(OverlayXattrPrefixForProcess(), "user.overlay.");
    EXPECT_EQ(OverlayOpaqueXattrForProcess(), "user.overlay.opaque");
  } else {
    EXPECT_EQ(OverlayXattrPrefixForProcess(), "trusted.overlay.");
    EXPECT_EQ(OverlayOpaqueXattrForProcess(), "trusted.overlay.opaque");
  }
}

TEST(UserNamespaceTest, ChownErrorNamesSubuidOnlyForAnUnmappedIdInAUserNamespace) {
  Error e = ChownError(EPERM, "a/b", 1000, 1000).error();
  EXPECT_THAT(e.message(), HasSubstr("chown a/b to 1000:1000"));
  EXPECT_THAT(e.message(), Not(HasSubstr("/etc/subuid")));
  Error inval = ChownError(EINVAL, "a/b", 1000, 1000).error();
  if (InUserNamespace()) {
    EXPECT_EQ(inval.code(), ErrorCode::kFailedPrecondition);
    EXPECT_THAT(inval.message(), HasSubstr("/etc/subuid"));
  } else {
    EXPECT_THAT(inval.message(), Not(HasSubstr("/etc/subuid")));
  }
}

}  // namespace
}  // namespace strata
