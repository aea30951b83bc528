#include "builder/engine/step_progress.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

oci::LayerInfo Info() {
  oci::LayerInfo info;
  info.descriptor.digest = oci::Digest::Of("layer");
  info.descriptor.size = 2500000;
  info.uncompressed_size = 10000000;
  return info;
}

TEST(CommitSummaryTest, SizesCodecAndSpeed) {
  EXPECT_EQ(CommitSummary(Info(), oci::Compression::kGzip, 0.5),
            fmt::format("layer {}: 10.0 MB tar -> 2.5 MB gzip in 0.50s (20 MB/s)",
                        oci::Digest::Of("layer").Short()));
}

TEST(CommitSummaryTest, NamesReusedGzipMembers) {
  oci::LayerInfo info = Info();
  info.chunks = {.reused = 30, .compressed = 2, .stored = 1};
  EXPECT_THAT(CommitSummary(info, oci::Compression::kGzip, 0.5),
              ::testing::EndsWith("(20 MB/s), 30/33 gzip members reused"));
  info.chunks = {.reused = 0, .compressed = 2, .stored = 1};
  EXPECT_THAT(CommitSummary(info, oci::Compression::kGzip, 0.5), ::testing::EndsWith("(20 MB/s)"));
}

}  // namespace
}  // namespace strata::builder
