// ADD <git source> and RUN --mount=type=ssh on the hermetic harness: a fake
// GitClient (refs -> commits -> trees) and a unix-socket "agent" in the test.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "builder/engine/executor.h"
#include "builder/engine/lockfile.h"
#include "builder/engine/ssh_relay.h"
#include "oci/util/file_util.h"
#include "tests/builder/engine/engine_harness.h"

namespace strata::builder {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::EngineHarness;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class FakeGit : public GitClient {
 public:
  // remote#ref -> commit; commit -> files.
  std::map<std::string, std::string> refs;
  std::map<std::string, std::map<std::string, std::string>> trees;
  std::vector<GitRef> resolved;
  int checkouts = 0;
  bool last_keep = false;

  Result<std::string> Resolve(const GitRef& ref) override {
    std::lock_guard<std::mutex> l(mu_);
    resolved.push_back(ref);
    auto it = refs.find(ref.remote + "#" + ref.ref);
    if (it == refs.end()) {
      return MakeError(ErrorCode::kNotFound, "git ref {} not found at {}", ref.ref, ref.remote);
    }
    return it->second;
  }
  Status Checkout(const GitRef&, const std::string& commit, const fs::path& dest,
                  bool keep_git_dir) override {
    std::lock_guard<std::mutex> l(mu_);
    ++checkouts;
    last_keep = keep_git_dir;
    for (const auto& [rel, content] : trees.at(commit)) {
      STRATA_RETURN_IF_ERROR(MakeDirs((dest / rel).parent_path()));
      STRATA_RETURN_IF_ERROR(WriteScratchFile(dest / rel, content, 0644));
    }
    if (keep_git_dir) STRATA_RETURN_IF_ERROR(WriteScratchFile(dest / ".git", "gitdir", 0644));
    return OkStatus();
  }

 private:
  std::mutex mu_;
};

const std::string kC1(40, '1');
const std::string kC2(40, '2');

class ExecutorGitSshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(h_.MakeBase());
    git_.refs["https://example.com/r.git#main"] = kC1;
    git_.refs["https://example.com/r.git#v1"] = kC1;
    git_.trees[kC1] = {{"README", "one\n"}, {"sub/a.txt", "a1\n"}};
    git_.trees[kC2] = {{"README", "two\n"}, {"sub/a.txt", "a2\n"}};
    h_.options().git = &git_;
    // Any download would be a bug: git sources never reach the fetcher.
    h_.options().fetcher = [](const std::string& url, const fs::path&, std::string*) -> Status {
      ADD_FAILURE() << "fetched " << url;
      return MakeError(ErrorCode::kInternal, "fetched {}", url);
    };
  }
  const RunSpec& Last() {
    EXPECT_FALSE(h_.runner().calls().empty());
    return h_.runner().calls().back();
  }
  EngineHarness h_;
  FakeGit git_;
};

TEST_F(ExecutorGitSshTest, AddGitCopiesTheCommitsTreeWithoutGitDir) {
  ASSERT_OK(h_.Build("FROM base\nADD https://example.com/r.git#main /src\n"));
  EXPECT_EQ(h_.ReadImageFile("src/README"), "one\n");
  EXPECT_EQ(h_.ReadImageFile("src/sub/a.txt"), "a1\n");
  EXPECT_EQ(h_.ReadImageFile("src/.git"), std::nullopt);
  EXPECT_FALSE(git_.last_keep);
  ASSERT_EQ(git_.resolved.size(), 1u);
  EXPECT_EQ(git_.resolved[0].remote, "https://example.com/r.git");
  EXPECT_EQ(git_.resolved[0].ref, "main");
}

TEST_F(ExecutorGitSshTest, HttpUrlWithGitFragmentIsGitNotADownload) {
  git_.refs["http://127.0.0.1:1/repo.git#main"] = kC1;
  ASSERT_OK(h_.Build("FROM base\nADD http://127.0.0.1:1/repo.git#main /src/\n"));
  EXPECT_EQ(h_.ReadImageFile("src/README"), "one\n");
  EXPECT_EQ(h_.ReadImageFile("src/index.html"), std::nullopt);
}

TEST_F(ExecutorGitSshTest, SubdirAndKeepGitDir) {
  ASSERT_OK(h_.Build("FROM base\nADD --keep-git-dir https://example.com/r.git#main:sub /s\n"));
  EXPECT_EQ(h_.ReadImageFile("s/a.txt"), "a1\n");
  EXPECT_EQ(h_.ReadImageFile("s/README"), std::nullopt);
  EXPECT_TRUE(git_.last_keep);
  ASSERT_OK(h_.Build("FROM base\nADD --keep-git-dir https://example.com/r.git#main /k\n"));
  EXPECT_EQ(h_.ReadImageFile("k/.git"), "gitdir");
}

TEST_F(ExecutorGitSshTest, SameCommitHitsTheCacheAMovedRefMisses) {
  const std::string df = "FROM base\nADD https://example.com/r.git#main /src\n";
  ASSERT_OK(h_.Build(df));
  EXPECT_EQ(git_.checkouts, 1);
  h_.progress().Clear();
  ASSERT_OK(h_.Build(df));
  EXPECT_THAT(h_.progress().Cached("ADD"), ElementsAre(HasSubstr("ADD")));
  EXPECT_EQ(git_.checkouts, 1);  // a hit checks nothing out
  // Another ref naming the same commit is the same content, but another
  // instruction: it runs, and lands the same files.
  git_.refs["https://example.com/r.git#main"] = kC2;
  h_.progress().Clear();
  ASSERT_OK(h_.Build(df));
  EXPECT_THAT(h_.progress().Cached("ADD"), IsEmpty());
  EXPECT_EQ(h_.ReadImageFile("src/README"), "two\n");
}

TEST_F(ExecutorGitSshTest, ChecksumMustMatchTheCommit) {
  ASSERT_OK(h_.Build("FROM base\nADD --checksum=" + kC1 + " https://example.com/r.git#v1 /s\n"));
  ASSERT_OK(h_.Build("FROM base\nADD --checksum=1111111 https://example.com/r.git#v1 /s\n"));
  auto r = h_.Build("FROM base\nADD --checksum=" + kC2 + " https://example.com/r.git#v1 /s\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("Dockerfile:2")));
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition, HasSubstr(kC1)));
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition, HasSubstr(kC2)));
  // Too short to mean one commit.
  r = h_.Build("FROM base\nADD --checksum=111 https://example.com/r.git#v1 /s\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kFailedPrecondition));
}

TEST_F(ExecutorGitSshTest, ErrorsNameTheLineAndTheRef) {
  auto r = h_.Build("FROM base\nADD https://example.com/r.git#nope /s\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kNotFound, HasSubstr("Dockerfile:2")));
  EXPECT_THAT(r, StatusIs(ErrorCode::kNotFound, HasSubstr("nope")));
  r = h_.Build("FROM base\nADD https://example.com/r.git#main other /s/\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kInvalidArgument, HasSubstr("only source")));
  r = h_.Build("FROM base\nADD https://example.com/r.git#main:../x /s/\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kInvalidArgument, HasSubstr("leaves the tree")));
  h_.Context("f", "x");
  r = h_.Build("FROM base\nADD --keep-git-dir f /s/\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kInvalidArgument, HasSubstr("needs a git source")));
  BuildOptions o = h_.options();
  o.git = nullptr;
  r = h_.Build("FROM base\nADD git@example.com:org/r.git /s\n", o);
  EXPECT_THAT(r, StatusIs(ErrorCode::kUnimplemented, HasSubstr("no git client")));
}

TEST_F(ExecutorGitSshTest, PasswordInTheUrlNeverReachesProgressOrHistoryKey) {
  git_.refs["https://u:hunter2@example.com/r.git#main"] = kC1;
  ASSERT_OK(h_.Build("FROM base\nADD https://u:hunter2@example.com/r.git#main /s\n"));
  for (const auto& step : h_.progress().steps()) {
    for (const auto& line : step.output) EXPECT_THAT(line, Not(HasSubstr("hunter2")));
  }
}

TEST_F(ExecutorGitSshTest, NamedBuildContextFromGit) {
  BuildOptions o = h_.options();
  auto nc = ParseNamedContext("src=https://example.com/r.git#main:sub");
  ASSERT_OK(nc);
  o.named_contexts.emplace(nc->name, nc->context);
  ASSERT_OK(h_.Build("FROM base\nCOPY --from=src a.txt /got.txt\n", o));
  EXPECT_EQ(h_.ReadImageFile("got.txt"), "a1\n");
  nc = ParseNamedContext("src=https://example.com/r.git#nope");
  ASSERT_OK(nc);
  o.named_contexts.clear();
  o.named_contexts.emplace(nc->name, nc->context);
  auto r = h_.Build("FROM base\nCOPY --from=src a.txt /got.txt\n", o);
  EXPECT_THAT(r, StatusIs(ErrorCode::kNotFound, HasSubstr("nope")));
}

// Git sources are resolved inputs (provenance, strata.lock): the commit is
// recorded under the remote without its password, and a lockfile check
// (--locked) fails once the ref moved, for ADD and for a git build context.
TEST_F(ExecutorGitSshTest, GitSourcesAreResolvedInputsThatTheLockfileChecks) {
  git_.refs["https://u:hunter2@example.com/r.git#main"] = kC1;
  const std::string df = "FROM base\nADD https://u:hunter2@example.com/r.git#main:sub /src\n";
  auto built = h_.Build(df);
  ASSERT_OK(built);
  std::vector<ResolvedInput> git;
  for (const auto& in : built->inputs) {
    if (in.kind == ResolvedInput::Kind::kGit) git.push_back(in);
  }
  ASSERT_EQ(git.size(), 1u);
  EXPECT_THAT(git[0].ref, HasSubstr("example.com/r.git#main:sub"));
  EXPECT_THAT(git[0].ref, Not(HasSubstr("hunter2")));
  EXPECT_EQ(git[0].commit, kC1);

  Lockfile lf;
  lf.Update(built->inputs);
  EXPECT_THAT(lf.Serialize(), HasSubstr(kC1));
  BuildOptions o = h_.options();
  o.check_input = [&](const ResolvedInput& in) { return lf.Check(in); };
  ASSERT_OK(h_.Build(df, o));
  git_.refs["https://u:hunter2@example.com/r.git#main"] = kC2;
  auto moved = h_.Build(df, o);
  EXPECT_THAT(moved, StatusIs(ErrorCode::kFailedPrecondition,
                              AllOf(HasSubstr("moved"), HasSubstr(kC1), HasSubstr(kC2))));

  // A git --build-context is an input too; unpinned, --locked refuses it.
  auto nc = ParseNamedContext("src=https://example.com/r.git#main");
  ASSERT_OK(nc);
  o.named_contexts.emplace(nc->name, nc->context);
  auto unpinned = h_.Build("FROM base\nCOPY --from=src README /r\n", o);
  EXPECT_THAT(unpinned, StatusIs(ErrorCode::kFailedPrecondition, HasSubstr("is not pinned")));
  o.check_input = nullptr;
  auto ctx = h_.Build("FROM base\nCOPY --from=src README /r\n", o);
  ASSERT_OK(ctx);
  bool saw = false;
  for (const auto& in : ctx->inputs) {
    saw = saw || (in.kind == ResolvedInput::Kind::kGit && in.commit == kC1 &&
                  in.ref == "https://example.com/r.git#main");
  }
  EXPECT_TRUE(saw);
}

// A unix socket in the test standing for an SSH agent: answers "pong".
class FakeAgent {
 public:
  explicit FakeAgent(const fs::path& path) : path_(path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_.get(), 4), 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        char b[16];
        if (::read(c.get(), b, sizeof(b)) > 0) (void)!::write(c.get(), "pong", 4);
      }
    });
  }
  ~FakeAgent() {
    stop_ = true;
    thread_.join();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(ExecutorGitSshTest, SshMountRelaysTheAgentAndSetsSshAuthSockForTheRunOnly) {
  auto dir = ::strata::testing::MakeTempDir();
  FakeAgent agent(dir.path() / "agent");
  BuildOptions o = h_.options();
  o.ssh["default"] = agent.path();
  std::string reply;
  struct stat st {};
  h_.runner().On("clone").Do([&](const RunSpec& spec) -> Status {
    // What the container would see at the target: the relay's socket.
    for (const auto& b : spec.binds) {
      if (b.destination != "/run/buildkit/ssh_agent.0") continue;
      EXPECT_TRUE(b.read_only);
      ::stat(b.source.c_str(), &st);
      STRATA_ASSIGN_OR_RETURN(auto fd, ConnectUnix(b.source));
      (void)!::write(fd.get(), "ping", 4);
      char buf[8];
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n > 0) reply.assign(buf, static_cast<size_t>(n));
    }
    return OkStatus();
  });
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=ssh clone\n", o));
  EXPECT_EQ(reply, "pong");
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_THAT(Last().env, ::testing::Contains("SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"));
  ASSERT_OK_AND_ASSIGN(auto img, h_.Load());
  EXPECT_THAT(img.config_bytes, Not(HasSubstr("SSH_AUTH_SOCK")));
  EXPECT_THAT(img.config_bytes, Not(HasSubstr(agent.path().string())));

  // target=, mode= and id=.
  o.ssh["deploy"] = agent.path();
  h_.runner().On("deploy").Do([&](const RunSpec& spec) -> Status {
    for (const auto& b : spec.binds) {
      if (b.destination == "/tmp/agent.sock") ::stat(b.source.c_str(), &st);
    }
    return OkStatus();
  });
  ASSERT_OK(h_.Build(
      "FROM base\nRUN --mount=type=ssh,id=deploy,target=/tmp/agent.sock,mode=0640 deploy\n", o));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_THAT(Last().env, ::testing::Contains("SSH_AUTH_SOCK=/tmp/agent.sock"));
}

TEST_F(ExecutorGitSshTest, SshMountRequiredWithoutAgentFailsOptionalIsSkipped) {
  auto r = h_.Build("FROM base\nRUN --mount=type=ssh,id=deploy,required=true x\n");
  EXPECT_THAT(r, StatusIs(ErrorCode::kNotFound, HasSubstr("Dockerfile:2")));
  EXPECT_THAT(r, StatusIs(ErrorCode::kNotFound, HasSubstr("--ssh deploy")));
  ASSERT_OK(h_.Build("FROM base\nRUN --mount=type=ssh y\n"));
  EXPECT_THAT(Last().binds, IsEmpty());
  for (const auto& e : Last().env) EXPECT_THAT(e, Not(HasSubstr("SSH_AUTH_SOCK")));
}

}  // namespace
}  // namespace strata::builder
