// -o/--output and --annotation parsing (tools/strata/build_output.h): every
// type and option, and an error naming each bad type, key or value.
#include "tools/strata/build_output.h"

#include "tests/testing/test_util.h"

namespace strata::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ErrorOf(std::string_view v) {
  auto r = ParseOutputSpec(v);
  return r ? "OK" : r.error().message();
}

TEST(BuildOutputTest, BarePathIsLocalAndDashIsTarToStdout) {
  auto local = ParseOutputSpec("out/dir");
  ASSERT_OK(local);
  EXPECT_EQ(local->type, OutputType::kLocal);
  EXPECT_EQ(local->dest, "out/dir");
  auto dash = ParseOutputSpec("-");
  ASSERT_OK(dash);
  EXPECT_EQ(dash->type, OutputType::kTar);
  EXPECT_TRUE(dash->ToStdout());
}

TEST(BuildOutputTest, LocalAndTarTakeDest) {
  auto local = ParseOutputSpec("type=local,dest=/tmp/x");
  ASSERT_OK(local);
  EXPECT_EQ(local->type, OutputType::kLocal);
  EXPECT_EQ(local->dest, "/tmp/x");
  auto tar = ParseOutputSpec("type=tar,dest=-");
  ASSERT_OK(tar);
  EXPECT_EQ(tar->type, OutputType::kTar);
  EXPECT_TRUE(tar->ToStdout());
  EXPECT_THAT(ErrorOf("type=local"), HasSubstr("type=local needs dest="));
  EXPECT_THAT(ErrorOf("type=tar,dest="), HasSubstr("dest= is empty"));
  EXPECT_THAT(ErrorOf("type=local,dest=-"), HasSubstr("type=local cannot write to stdout"));
  EXPECT_THAT(ErrorOf("type=local,dest=d,compression=zstd"),
              HasSubstr("unknown option \"compression\" for type=local"));
  EXPECT_THAT(ErrorOf("type=tar,dest=d,name=a"), HasSubstr("unknown option \"name\" for type=tar"));
}

TEST(BuildOutputTest, OciWithTarFalseAndNames) {
  auto oci = ParseOutputSpec("type=oci,dest=out,tar=false,\"name=a:1,b:2\"");
  ASSERT_OK(oci);
  EXPECT_EQ(oci->type, OutputType::kOci);
  EXPECT_FALSE(oci->tar);
  EXPECT_THAT(oci->names, ElementsAre("a:1", "b:2"));
  EXPECT_THAT(ErrorOf("type=oci,dest=o,tar=maybe"), HasSubstr("tar=maybe: want true or false"));
  EXPECT_THAT(ErrorOf("type=oci,dest=-,tar=false"), HasSubstr("tar=false writes a directory"));
  EXPECT_THAT(ErrorOf("type=oci"), HasSubstr("type=oci needs dest="));
  EXPECT_THAT(ErrorOf("type=docker,dest=d,tar=false"),
              HasSubstr("unknown option \"tar\" for type=docker"));
  EXPECT_THAT(ErrorOf("type=oci,dest=o,name=a,,b"), HasSubstr("not KEY=VALUE"));
}

TEST(BuildOutputTest, ImageAndRegistry) {
  auto image = ParseOutputSpec("type=image,name=r/app:1,push=true");
  ASSERT_OK(image);
  EXPECT_EQ(image->type, OutputType::kImage);
  EXPECT_TRUE(image->push);
  EXPECT_THAT(image->names, ElementsAre("r/app:1"));
  auto reg = ParseOutputSpec("type=registry,name=r/app:1");
  ASSERT_OK(reg);
  EXPECT_EQ(reg->type, OutputType::kImage);
  EXPECT_TRUE(reg->push);
  EXPECT_THAT(ErrorOf("type=registry,name=a,push=false"), HasSubstr("type=registry always pushes"));
  EXPECT_THAT(ErrorOf("type=image,dest=x"), HasSubstr("unknown option \"dest\" for type=image"));
  EXPECT_THAT(ErrorOf("type=image,push-by-digest=true"),
              HasSubstr("unknown option \"push-by-digest\" for type=image"));
  EXPECT_THAT(ErrorOf("type=image,unpack=true"), HasSubstr("unknown option \"unpack\""));
  EXPECT_THAT(ErrorOf("type=image,push=yes"), HasSubstr("push=yes: want true or false"));
}

TEST(BuildOutputTest, CacheOnlyTakesNothing) {
  auto c = ParseOutputSpec("type=cacheonly");
  ASSERT_OK(c);
  EXPECT_EQ(c->type, OutputType::kCacheOnly);
  EXPECT_THAT(ErrorOf("type=cacheonly,dest=x"), HasSubstr("unknown option \"dest\""));
}

TEST(BuildOutputTest, CompressionOptions) {
  auto z = ParseOutputSpec("type=image,compression=zstd,compression-level=9");
  ASSERT_OK(z);
  EXPECT_EQ(z->compression, oci::Compression::kZstd);
  EXPECT_EQ(z->compression_level, 9);
  auto u = ParseOutputSpec("type=docker,dest=d,compression=uncompressed,force-compression=false");
  ASSERT_OK(u);
  EXPECT_EQ(u->compression, oci::Compression::kNone);
  EXPECT_THAT(ErrorOf("type=image,compression=lz4"),
              HasSubstr("compression=lz4: want gzip, zstd or uncompressed"));
  EXPECT_THAT(ErrorOf("type=image,compression=estargz"),
              HasSubstr("compression=estargz is not supported"));
  EXPECT_THAT(ErrorOf("type=image,compression-level=x"),
              HasSubstr("compression-level=x: want a number"));
  EXPECT_THAT(ErrorOf("type=image,compression-level=99"), HasSubstr("compression-level=99"));
  EXPECT_THAT(ErrorOf("type=image,force-compression=true"),
              HasSubstr("force-compression=true is not supported"));
}

TEST(BuildOutputTest, MediaTypesTimestampsAndAnnotations) {
  auto o = ParseOutputSpec(
      "type=image,oci-mediatypes=true,rewrite-timestamp=true,annotation.org.a=1,"
      "annotation-manifest.B=2");
  ASSERT_OK(o);
  EXPECT_EQ(o->rewrite_timestamp, true);
  EXPECT_EQ(o->annotations.at("org.a"), "1");
  EXPECT_EQ(o->annotations.at("B"), "2");  // the key after the prefix keeps its case
  EXPECT_THAT(ErrorOf("type=image,oci-mediatypes=false"),
              HasSubstr("oci-mediatypes=false is not supported"));
  EXPECT_THAT(ErrorOf("type=image,rewrite-timestamp=sure"),
              HasSubstr("rewrite-timestamp=sure: want true or false"));
  EXPECT_THAT(ErrorOf("type=image,annotation-index.k=v"),
              HasSubstr("annotation-index.k: only manifest annotations"));
  EXPECT_THAT(ErrorOf("type=image,annotation.=v"), HasSubstr("empty annotation key"));
}

TEST(BuildOutputTest, TypeErrors) {
  EXPECT_THAT(ErrorOf("type=foo,dest=x"), HasSubstr("unknown output type \"foo\""));
  EXPECT_THAT(ErrorOf("dest=x,name=y"), HasSubstr("type= is required"));
  EXPECT_THAT(ErrorOf("type=tar,dest=a,dest=b"), HasSubstr("dest given twice"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("empty value"));
  EXPECT_THAT(ErrorOf("type=tar,\"dest=a"), HasSubstr("unterminated quote"));
}

TEST(BuildOutputTest, SeveralOutputsShareNoDestinationAndOneStdout) {
  auto ok = ParseOutputSpecs({"type=local,dest=a", "type=oci,dest=b.tar", "type=image"});
  ASSERT_OK(ok);
  EXPECT_EQ(ok->size(), 3u);
  auto two_stdout = ParseOutputSpecs({"-", "type=docker,dest=-"});
  ASSERT_FALSE(two_stdout);
  EXPECT_THAT(two_stdout.error().message(), HasSubstr("only one output can write to stdout"));
  auto same = ParseOutputSpecs({"type=local,dest=a", "type=tar,dest=a"});
  ASSERT_FALSE(same);
  EXPECT_THAT(same.error().message(), HasSubstr("dest a is used by another output"));
}

TEST(BuildOutputTest, AnnotationFlags) {
  auto a = ParseAnnotationFlags({"org.x=1", "manifest:org.y=a=b"});
  ASSERT_OK(a);
  EXPECT_EQ(a->at("org.x"), "1");
  EXPECT_EQ(a->at("org.y"), "a=b");
  auto bad = ParseAnnotationFlags({"novalue"});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("--annotation novalue: want KEY=VALUE"));
  auto index = ParseAnnotationFlags({"index:k=v"});
  ASSERT_FALSE(index);
  EXPECT_THAT(index.error().message(), HasSubstr("\"index:\" annotations are not supported"));
}

TEST(BuildOutputTest, CompressionMergesAcrossOutputs) {
  auto outs = ParseOutputSpecs({"type=image,compression=zstd", "type=oci,dest=o,compression=zstd"});
  ASSERT_OK(outs);
  auto lc = MergeOutputCompression(*outs);
  ASSERT_OK(lc);
  EXPECT_EQ(lc->compression, oci::Compression::kZstd);
  auto clash =
      ParseOutputSpecs({"type=image,compression=zstd", "type=oci,dest=o,compression=gzip"});
  ASSERT_OK(clash);
  auto m = MergeOutputCompression(*clash);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message(), HasSubstr("compression differs"));
}

}  // namespace
}  // namespace strata::cli
