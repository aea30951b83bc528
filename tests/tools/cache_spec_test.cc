// --cache-from / --cache-to parsing (tools/strata/cache_spec.h).
#include "tools/strata/cache_spec.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(std::string_view v, CacheDirection d = CacheDirection::kTo) {
  auto r = ParseCacheSpec(v, d);
  return r ? "OK" : r.error().message();
}

TEST(CacheSpecTest, PlainRefIsRegistryWithEveryRecord) {
  auto s = ParseCacheSpec("localhost:5000/cache:main", CacheDirection::kTo);
  ASSERT_OK(s);
  EXPECT_EQ(s->type, CacheType::kRegistry);
  EXPECT_EQ(s->ref->ToString(), "localhost:5000/cache:main");
  EXPECT_EQ(s->mode, CacheMode::kMax);
  EXPECT_THAT(ErrorOf("Not A Ref"), HasSubstr("--cache-to Not A Ref"));
}

TEST(CacheSpecTest, RegistrySyntax) {
  auto s = ParseCacheSpec(
      "type=registry,ref=r.io/c:1,mode=max,image-manifest=true,"
      "oci-mediatypes=true,ignore-error=true",
      CacheDirection::kTo);
  ASSERT_OK(s);
  EXPECT_EQ(s->type, CacheType::kRegistry);
  EXPECT_EQ(s->ref->ToString(), "r.io/c:1");
  EXPECT_EQ(s->mode, CacheMode::kMax);
  EXPECT_TRUE(s->ignore_error);
  auto min = ParseCacheSpec("type=registry,ref=r.io/c:1", CacheDirection::kTo);
  ASSERT_OK(min);
  EXPECT_EQ(min->mode, CacheMode::kMin);  // BuildKit's default
  auto no_type = ParseCacheSpec("ref=r.io/c:1", CacheDirection::kFrom);
  ASSERT_OK(no_type);
  EXPECT_EQ(no_type->type, CacheType::kRegistry);
}

TEST(CacheSpecTest, RegistryErrorsNameTheOption) {
  EXPECT_THAT(ErrorOf("type=registry,mode=max"), HasSubstr("type=registry needs ref="));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,mode=all"), HasSubstr("mode=all: want min or max"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,image-manifest=false"),
              HasSubstr("image-manifest=false is not supported"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,oci-mediatypes=false"),
              HasSubstr("oci-mediatypes=false is not supported"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,compression=zstd"),
              HasSubstr("compression is not supported"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,compression-level=3"),
              HasSubstr("compression-level is not supported"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,force-compression=true"),
              HasSubstr("force-compression is not supported"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,ignore-error=maybe"),
              HasSubstr("ignore-error=maybe: want true or false"));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,store=true"),
              HasSubstr("unknown option \"store\" for type=registry"));
  EXPECT_THAT(ErrorOf("type=registry,ref=BAD REF"),
              HasSubstr("--cache-to type=registry,ref=BAD REF: ref"));
  // Export-only options are unknown to --cache-from.
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,mode=max", CacheDirection::kFrom),
              HasSubstr("--cache-from type=registry,ref=r/c,mode=max: unknown option \"mode\""));
}

TEST(CacheSpecTest, LocalSyntax) {
  auto to = ParseCacheSpec("type=local,dest=/c,mode=max,tag=v1", CacheDirection::kTo);
  ASSERT_OK(to);
  EXPECT_EQ(to->type, CacheType::kLocal);
  EXPECT_EQ(to->dir, "/c");
  EXPECT_EQ(to->tag, "v1");
  auto from = ParseCacheSpec("type=local,src=/c", CacheDirection::kFrom);
  ASSERT_OK(from);
  EXPECT_EQ(from->dir, "/c");
  EXPECT_EQ(from->tag, "latest");
  EXPECT_THAT(ErrorOf("type=local,src=/c"), HasSubstr("unknown option \"src\" for type=local"));
  EXPECT_THAT(ErrorOf("type=local,dest=/c", CacheDirection::kFrom),
              HasSubstr("unknown option \"dest\""));
  EXPECT_THAT(ErrorOf("type=local"), HasSubstr("type=local needs dest=DIR"));
  EXPECT_THAT(ErrorOf("type=local", CacheDirection::kFrom), HasSubstr("needs src=DIR"));
  EXPECT_THAT(ErrorOf("type=local,dest="), HasSubstr("dest= is empty"));
  EXPECT_THAT(ErrorOf("type=local,dest=/c,tag=a/b"), HasSubstr("tag=a/b is not a tag"));
  EXPECT_THAT(ErrorOf("type=local,src=/c,digest=sha256:00", CacheDirection::kFrom),
              HasSubstr("unknown option \"digest\""));
}

TEST(CacheSpecTest, UnsupportedTypesAreRefused) {
  EXPECT_THAT(ErrorOf("type=inline"), HasSubstr("type=inline is not supported"));
  EXPECT_THAT(ErrorOf("type=gha,scope=x"), HasSubstr("type=gha is not supported"));
  EXPECT_THAT(ErrorOf("type=s3,bucket=x"), HasSubstr("type=s3 is not supported"));
  EXPECT_THAT(ErrorOf("type=nope,ref=x"), HasSubstr("unknown cache type \"nope\""));
  EXPECT_THAT(ErrorOf("type=registry,ref=r/c,ref=r/d"), HasSubstr("ref given twice"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("--cache-to: empty value"));
  EXPECT_THAT(ErrorOf("type=registry,,ref=r/c"), HasSubstr("not KEY=VALUE"));
}

}  // namespace
}  // namespace strata::cli
