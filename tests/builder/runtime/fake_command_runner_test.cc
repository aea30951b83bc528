#include "builder/runtime/fake_command_runner.h"

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

TEST(FakeCommandRunnerTest, RecordsCallsAndReplaysResponses) {
  FakeCommandRunner fake;
  fake.PushExit(3, "boom");
  RecordingSink sink;
  RunSpec spec;
  spec.args = {"/bin/sh", "-c", "exit 3"};
  ASSERT_OK_AND_ASSIGN(int code, fake.Run(spec, sink));
  EXPECT_EQ(code, 3);
  EXPECT_EQ(sink.Text(OutputStream::kStdout), "boom\n");
  ASSERT_OK_AND_ASSIGN(int second, fake.Run(spec, sink));  // default response
  EXPECT_EQ(second, 0);
  ASSERT_EQ(fake.calls().size(), 2u);
  EXPECT_EQ(fake.calls()[0].args, spec.args);
}

TEST(FakeCommandRunnerTest, EffectAndErrorResponses) {
  FakeCommandRunner fake;
  bool ran = false;
  FakeCommandRunner::Response r;
  r.effect = [&](const RunSpec&) -> Status {
    ran = true;
    return OkStatus();
  };
  r.error = Error(ErrorCode::kNotFound, "unable to find user x");
  fake.Push(std::move(r));
  RecordingSink sink;
  auto result = fake.Run(RunSpec{}, sink);
  EXPECT_TRUE(ran);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kNotFound);
}

TEST(TailSinkTest, ForwardsAndKeepsLastLines) {
  RecordingSink all;
  TailSink tail(&all, 2);
  tail.Line(OutputStream::kStdout, "a");
  tail.Line(OutputStream::kStderr, "b");
  tail.Line(OutputStream::kStdout, "c");
  EXPECT_THAT(tail.Tail(), ::testing::ElementsAre("b", "c"));
  EXPECT_EQ(all.entries().size(), 3u);
}

}  // namespace
}  // namespace strata::builder
