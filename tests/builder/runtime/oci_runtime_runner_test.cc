// Unit tests of OciRuntimeRunner against fake runtimes (shell scripts on a
// private PATH): runtime selection and caching, output streaming, exit codes,
// runtime start failures, cleanup and cancellation. No root, no containers.
#include "builder/runtime/oci_runtime_runner.h"

#include <chrono>
#include <stop_token>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {

using ::strata::testing::MakeTempDir;
using ::strata::testing::WriteTestFile;
using ::testing::HasSubstr;

// A fake OCI runtime: `--version` works; `run` records its config, prints to
// both streams and exits with $FAKE_EXIT (from a file); `kill` kills the
// sleeping `run`; every call is appended to DIR/calls.
std::string FakeRuntimeScript(const std::filesystem::path& dir) {
  return fmt::format(R"(#!/bin/sh
D={0}
echo "$*" >> $D/calls
mode=; bundle=; log=; prev=
for a in "$@"; do
  case "$prev" in --bundle) bundle=$a;; --log) log=$a;; esac
  case "$a" in --version) echo "fake-runtime 1.0"; exit 0;; run|delete|kill) [ -z "$mode" ] && mode=$a;; esac
  prev=$a
done
case "$mode" in
run)
  cp "$bundle/config.json" $D/config.json
  cp "$bundle/hosts" $D/hosts
  cp "$bundle/resolv.conf" $D/resolv.conf
  if [ -f $D/start-error ]; then
    echo '{{"level":"error","msg":"container_linux.go: starting container process caused: exec: \"nope\": executable file not found in $PATH","time":"x"}}' > "$log"
    echo "fake: start failed" >&2
    exit 1
  fi
  if [ -f $D/selfkill ]; then kill -9 $$; fi
  if [ -f $D/sleep ]; then echo $$ > $D/pid; echo sleeping; exec sleep 60; fi
  echo out-line-1
  printf 'err-line\n' >&2
  printf 'partial'
  exit $(cat $D/exit-code 2>/dev/null || echo 0)
  ;;
kill)
  [ -f $D/pid ] && kill -9 $(cat $D/pid)
  ;;
esac
exit 0
)",
                     dir.string());
}

void WriteScript(const std::filesystem::path& path, std::string_view text) {
  WriteTestFile(path, text, 0755);
}

class FakeRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = MakeTempDir();
    work_ = MakeTempDir();
    rootfs_ = MakeTempDir();
    WriteTestFile(rootfs_.path() / "etc/passwd",
                  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
    WriteTestFile(rootfs_.path() / "etc/group", "wheel:x:10:app\nstaff:x:50:\n");
    WriteScript(bin_.path() / "runc", FakeRuntimeScript(work_.path()));
  }

  OciRuntimeRunnerOptions Options() {
    OciRuntimeRunnerOptions o;
    o.state_dir = work_.path() / "state";
    o.path_env = bin_.path().string();
    o.host_resolv_conf = work_.path() / "host-resolv.conf";
    return o;
  }

  RunSpec Spec() {
    RunSpec s;
    s.args = {"/bin/sh", "-c", "echo hi"};
    s.env = {"FOO=bar"};
    s.cwd = "/src";
    s.user = "app:staff";
    s.rootfs = rootfs_.path();
    s.hostname = "h1";
    // The default network needs root (a network namespace) and slirp4netns;
    // run_network_integration_test.cc covers it.
    s.network = NetworkMode::kNone;
    return s;
  }

  std::string Calls() { return ReadFile(work_.path() / "calls").value_or(""); }

  ScopedTempDir bin_, work_, rootfs_;
};

// Options for selection tests: no runs, so the state dir is never touched.
OciRuntimeRunnerOptions Opts(const std::string& path_env, const std::string& runtime = "") {
  OciRuntimeRunnerOptions o;
  o.runtime = runtime;
  o.state_dir = "/nonexistent/state";
  o.path_env = path_env;
  return o;
}

TEST(FindExecutableTest, SearchesPathInOrder) {
  auto a = MakeTempDir();
  auto b = MakeTempDir();
  WriteTestFile(a.path() / "tool", "not executable", 0644);
  WriteTestFile(b.path() / "tool", "#!/bin/sh\n", 0755);
  ASSERT_OK_AND_ASSIGN(auto p,
                       FindExecutable("tool", a.path().string() + "::" + b.path().string()));
  EXPECT_EQ(p, b.path() / "tool");
  auto missing = FindExecutable("nope", a.path().string());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto direct, FindExecutable((b.path() / "tool").string(), ""));
  EXPECT_EQ(direct, b.path() / "tool");
}

TEST(RuntimeSelectionTest, SkipsARuntimeWhoseVersionFails) {
  auto bin = MakeTempDir();
  WriteScript(bin.path() / "runc", "#!/bin/sh\necho broken >&2\nexit 1\n");
  WriteScript(bin.path() / "crun", "#!/bin/sh\necho crun version 1.8\n");
  OciRuntimeRunner runner(Opts(bin.path().string(), ""));
  ASSERT_OK_AND_ASSIGN(auto rt, runner.Runtime());
  EXPECT_EQ(rt, bin.path() / "crun");
}

TEST(RuntimeSelectionTest, PrefersRuncWhenBothWork) {
  auto bin = MakeTempDir();
  WriteScript(bin.path() / "runc", "#!/bin/sh\necho runc\n");
  WriteScript(bin.path() / "crun", "#!/bin/sh\necho crun\n");
  OciRuntimeRunner runner(Opts(bin.path().string(), ""));
  ASSERT_OK_AND_ASSIGN(auto rt, runner.Runtime());
  EXPECT_EQ(rt, bin.path() / "runc");
}

TEST(RuntimeSelectionTest, ExplicitRuntimeByNameOrPath) {
  auto bin = MakeTempDir();
  WriteScript(bin.path() / "runc", "#!/bin/sh\necho runc\n");
  WriteScript(bin.path() / "my-runtime", "#!/bin/sh\necho mine\n");
  OciRuntimeRunner by_name(Opts(bin.path().string(), "my-runtime"));
  ASSERT_OK_AND_ASSIGN(auto a, by_name.Runtime());
  EXPECT_EQ(a, bin.path() / "my-runtime");
  OciRuntimeRunner by_path(Opts("/nonexistent", (bin.path() / "my-runtime").string()));
  ASSERT_OK_AND_ASSIGN(auto b, by_path.Runtime());
  EXPECT_EQ(b, bin.path() / "my-runtime");
  // An explicit choice never falls back to the defaults.
  OciRuntimeRunner missing(Opts(bin.path().string(), "crun"));
  auto r = missing.Runtime();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(RuntimeSelectionTest, NoneWorkingIsFailedPreconditionWithReasons) {
  auto bin = MakeTempDir();
  WriteScript(bin.path() / "crun", "#!/bin/sh\necho 'cgroups hybrid not supported' >&2\nexit 1\n");
  OciRuntimeRunner runner(Opts(bin.path().string(), ""));
  auto r = runner.Runtime();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("cgroups hybrid not supported"));
  EXPECT_THAT(r.error().message(), HasSubstr("runc: executable file not found"));

  auto empty = MakeTempDir();
  OciRuntimeRunner nothing(Opts(empty.path().string(), ""));
  auto n = nothing.Runtime();
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code(), ErrorCode::kNotFound);
}

TEST(RuntimeSelectionTest, ChoiceIsCachedPerRunnerObject) {
  auto bin = MakeTempDir();
  WriteScript(bin.path() / "runc", "#!/bin/sh\necho runc\n");
  WriteScript(bin.path() / "crun", "#!/bin/sh\necho crun\n");
  OciRuntimeRunner first(Opts(bin.path().string(), ""));
  ASSERT_OK_AND_ASSIGN(auto a, first.Runtime());
  EXPECT_EQ(a, bin.path() / "runc");
  WriteScript(bin.path() / "runc", "#!/bin/sh\nexit 1\n");
  ASSERT_OK_AND_ASSIGN(auto again, first.Runtime());
  EXPECT_EQ(again, bin.path() / "runc");  // cached: not probed again
  OciRuntimeRunner second(Opts(bin.path().string(), ""));
  ASSERT_OK_AND_ASSIGN(auto b, second.Runtime());
  EXPECT_EQ(b, bin.path() / "crun");  // a new object probes afresh
}

TEST_F(FakeRuntimeTest, StreamsOutputMapsExitCodeAndDeletesContainer) {
  WriteTestFile(work_.path() / "exit-code", "7\n");
  WriteTestFile(work_.path() / "host-resolv.conf", "nameserver 192.0.2.1\n");
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  ASSERT_OK_AND_ASSIGN(int code, runner.Run(Spec(), sink));
  EXPECT_EQ(code, 7);
  EXPECT_EQ(sink.Text(OutputStream::kStdout), "out-line-1\npartial\n");
  EXPECT_EQ(sink.Text(OutputStream::kStderr), "err-line\n");

  // run, then delete -f of the same id, with the state dir as --root.
  std::string calls = Calls();
  std::string state = (work_.path() / "state").string();
  EXPECT_THAT(calls, HasSubstr("--root " + state + " --log "));
  size_t run = calls.find(" run --bundle ");
  size_t del = calls.find(" delete -f strata-");
  ASSERT_NE(run, std::string::npos) << calls;
  ASSERT_NE(del, std::string::npos) << calls;
  EXPECT_LT(run, del);
  std::string id = calls.substr(del + std::string(" delete -f ").size());
  id = id.substr(0, id.find('\n'));
  EXPECT_THAT(calls.substr(run), HasSubstr(" " + id + "\n"));

  // The config it ran with.
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(work_.path() / "config.json"));
  auto config = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(config.is_discarded());
  EXPECT_EQ(config["process"]["args"], nlohmann::json({"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(config["process"]["cwd"], "/src");
  EXPECT_EQ(config["process"]["user"]["uid"], 1000);
  EXPECT_EQ(config["process"]["user"]["gid"], 50);
  EXPECT_EQ(config["process"]["user"]["additionalGids"], nlohmann::json({10}));
  EXPECT_EQ(config["process"]["env"],
            nlohmann::json(
                {"FOO=bar", std::string("PATH=") + std::string(kDefaultPath), "HOME=/home/app"}));
  EXPECT_EQ(config["root"]["path"], rootfs_.path().string());
  EXPECT_EQ(config["hostname"], "h1");
  EXPECT_EQ(ReadFile(work_.path() / "resolv.conf").value_or(""), "nameserver 192.0.2.1\n");
  EXPECT_THAT(ReadFile(work_.path() / "hosts").value_or(""), HasSubstr("localhost h1"));

  // The bundle is gone afterwards.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(work_.path() / "bundles", ec)) << ec.message();
}

TEST_F(FakeRuntimeTest, RuntimeKilledBySignalIs128PlusSignal) {
  WriteTestFile(work_.path() / "selfkill", "");
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  ASSERT_OK_AND_ASSIGN(int code, runner.Run(Spec(), sink));
  EXPECT_EQ(code, 137);
  EXPECT_THAT(Calls(), HasSubstr(" delete -f strata-"));
}

TEST_F(FakeRuntimeTest, RuntimeStartFailureIsAnErrorNotAnExitCode) {
  WriteTestFile(work_.path() / "start-error", "");
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  auto r = runner.Run(Spec(), sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("executable file not found"));
  EXPECT_THAT(sink.Text(OutputStream::kStderr), HasSubstr("fake: start failed"));
  EXPECT_THAT(Calls(), HasSubstr(" delete -f strata-"));
}

TEST_F(FakeRuntimeTest, UnknownUserFailsBeforeStarting) {
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  RunSpec spec = Spec();
  spec.user = "ghost";
  auto r = runner.Run(spec, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(), "unable to find user ghost: no matching entries in passwd file");
  EXPECT_THAT(Calls(), ::testing::Not(HasSubstr(" run ")));
}

TEST_F(FakeRuntimeTest, CancelKillsTheContainer) {
  WriteTestFile(work_.path() / "sleep", "");
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  std::stop_source stop;
  RunSpec spec = Spec();
  spec.cancel = stop.get_token();
  std::jthread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.request_stop();
  });
  auto start = std::chrono::steady_clock::now();
  auto r = runner.Run(spec, sink);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  EXPECT_LT(took, std::chrono::seconds(20));
  std::string calls = Calls();
  EXPECT_THAT(calls, HasSubstr(" kill strata-"));
  EXPECT_THAT(calls, HasSubstr(" KILL\n"));
  EXPECT_THAT(calls, HasSubstr(" delete -f strata-"));
}

TEST_F(FakeRuntimeTest, AlreadyCancelledDoesNotStart) {
  OciRuntimeRunner runner(Options());
  RecordingSink sink;
  std::stop_source stop;
  stop.request_stop();
  RunSpec spec = Spec();
  spec.cancel = stop.get_token();
  auto r = runner.Run(spec, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  EXPECT_EQ(Calls(), "");
}

}  // namespace
}  // namespace strata::builder
