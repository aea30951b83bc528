// Private and remote sources under the strata binary, all on 127.0.0.1
// (tests/integration/git_fixture.sh): an sshd (Debian openssh-server) and a
// dumb-HTTP server (python3 http.server over `git update-server-info`)
// serving a repository with a submodule; git contexts and ADD <git> over
// both, RUN --mount=type=ssh with a forwarded agent and with key files,
// tarball URL and stdin tar contexts, the cache on an unchanged or moved
// ref, the errors, and a sweep of the store, the cache export, the history
// and the progress output for every secret value.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::CommandResult;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// How many processes have `needle` in their command line (/proc, so no
// procps is needed).
int ProcessesWith(const std::string& needle) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    auto cmdline = ReadFile(e.path() / "cmdline");
    if (!cmdline) continue;
    std::string line = *cmdline;
    for (char& c : line) c = c == '\0' ? ' ' : c;
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class GitSshIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (strata build, sshd)";
    for (const char* tool : {"git", "ssh-agent", "ssh-add", "python3"}) {
      if (!testing::HaveTool(tool)) GTEST_SKIP() << tool << " is not installed";
    }
    if (::access("/usr/sbin/sshd", X_OK) != 0) GTEST_SKIP() << "openssh-server is not installed";
    static int counter = 0;
    dir_ = fs::path("/tmp") /
           fmt::format("strata-git-it-{}-{}-{}", ::getpid(), ++counter,
                       std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    (void)RemoveAll(dir_);
    ASSERT_OK(MakeDirs(dir_));
    started_ = true;
    auto r = RunCommand(Fixture() + " start " + Q(dir_.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ssh_port_ = Trim(*ReadFile(dir_ / "ssh_port"));
    http_port_ = Trim(*ReadFile(dir_ / "http_port"));
    root_ = dir_ / "store";
  }
  void TearDown() override {
    if (agent_pid_ > 0) RunCommand(fmt::format("kill {}", agent_pid_));
    if (started_) RunCommand(Fixture() + " stop " + Q(dir_.string()));
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  static std::string Fixture() {
    return std::string(STRATA_SOURCE_DIR) + "/tests/integration/git_fixture.sh";
  }
  std::string SshRepo() const {
    return fmt::format("ssh://root@127.0.0.1:{}{}/srv/repo.git", ssh_port_, dir_.string());
  }
  std::string HttpRepo() const { return fmt::format("http://127.0.0.1:{}/repo.git", http_port_); }
  std::string Commit(const std::string& rev) {
    auto r = RunCommand("git -C " + Q((dir_ / "srv/repo.git").string()) + " rev-parse " + rev);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return Trim(r.output);
  }

  // `strata build` with `env` before it; stdout+stderr.
  CommandResult Strata(const std::string& args, const std::string& env = "") {
    return RunCommand(env + " " + STRATA_BINARY + " --root " + Q(root_.string()) + " " + args);
  }
  fs::path Context(const std::string& name, const std::string& dockerfile) {
    fs::path c = dir_ / name;
    testing::WriteTestFile(c / "Dockerfile", dockerfile);
    return c;
  }
  // The image's flattened file system.
  fs::path Unpack(const std::string& ref) {
    fs::path out = dir_ / ("unpacked-" + std::to_string(++unpacked_));
    auto r = Strata("unpack " + ref + " " + Q(out.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }
  void ImportGitbox() {
    auto r = Strata("import " + Q((dir_ / "gitbox").string()) + " gitbox:latest");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // An ssh-agent of the test's own holding id_user; SSH_AUTH_SOCK=... to
  // put before a command.
  std::string StartAgent() {
    fs::path sock = dir_ / "agent.sock";
    auto r = RunCommand("ssh-agent -a " + Q(sock.string()) +
                        " | sed -n 's/.*SSH_AGENT_PID=\\([0-9]*\\);.*/\\1/p'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    agent_pid_ = std::stoi(Trim(r.output));
    r = RunCommand("SSH_AUTH_SOCK=" + Q(sock.string()) + " ssh-add -q " +
                   Q((dir_ / "id_user").string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return "SSH_AUTH_SOCK=" + Q(sock.string());
  }

  fs::path dir_, root_;
  std::string ssh_port_, http_port_;
  bool started_ = false;
  int agent_pid_ = 0;
  int unpacked_ = 0;
};

TEST_F(GitSshIntegrationTest, GitContextOverSshWithKeyFile) {
  auto r = Strata("build -t ctx:ssh --ssh default=" + Q((dir_ / "id_user").string()) + " " +
                  Q(SshRepo() + "#main:app"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("commit " + Commit("main")));
  fs::path fs_root = Unpack("ctx:ssh");
  EXPECT_EQ(*ReadFile(fs_root / "app/hello.txt"), "hello from git\n");
  EXPECT_FALSE(fs::exists(fs_root / "app/.git"));
  EXPECT_FALSE(fs::exists(fs_root / "app/run.sh"));  // only the subdir is the context

  // BuildKit's BUILDKIT_CONTEXT_KEEP_GIT_DIR keeps the context's .git.
  // (-f names a file inside the fetched context.)
  auto keep = Strata(
      "build -t ctx:keep -f app/Dockerfile --build-arg BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 "
      "--ssh default=" +
      Q((dir_ / "id_user").string()) + " " + Q(SshRepo() + "#main"));
  ASSERT_EQ(keep.exit_code, 0) << keep.output;
  EXPECT_THAT(keep.output, Not(HasSubstr("not consumed")));
  fs::path kept = Unpack("ctx:keep");
  EXPECT_TRUE(fs::is_directory(kept / "app/.git"));
  EXPECT_EQ(*ReadFile(kept / "app/app/hello.txt"), "hello from git\n");
}

TEST_F(GitSshIntegrationTest, AddGitOverSshWithForwardedAgentHasSubmodulesAndNoGitDir) {
  std::string env = StartAgent();
  auto ctx = Context("add-ssh", "FROM scratch\nADD " + SshRepo() + "#v1 /src\n");
  auto r = Strata("build --progress=plain -t add:ssh --ssh default " + Q(ctx.string()), env);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is commit " + Commit("v1^{commit}")));
  fs::path fs_root = Unpack("add:ssh");
  EXPECT_EQ(*ReadFile(fs_root / "src/app/hello.txt"), "hello from git\n");
  EXPECT_EQ(*ReadFile(fs_root / "src/lib/lib.txt"), "lib file\n");  // the submodule
  EXPECT_FALSE(fs::exists(fs_root / "src/.git"));
  EXPECT_FALSE(fs::exists(fs_root / "src/lib/.git"));
  struct stat st;
  ASSERT_EQ(::stat((fs_root / "src/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // The commit's time, not the checkout's.
  auto when = RunCommand("git -C " + Q((dir_ / "srv/repo.git").string()) +
                         " show -s --format=%ct v1^{commit}");
  EXPECT_EQ(static_cast<int64_t>(st.st_mtime), std::stoll(Trim(when.output)));
}

TEST_F(GitSshIntegrationTest, RunMountSshClonesWithForwardedAgentAndWithKeyFile) {
  ImportGitbox();
  std::string run =
      "RUN --network=host --mount=type=ssh,mode=0600 test -S \"$SSH_AUTH_SOCK\" && ssh-add -l && "
      "GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' "
      "git clone -q " +
      SshRepo() + " /cloned && cat /cloned/app/hello.txt\n";
  auto ctx = Context("run-ssh", "FROM gitbox\n" + run);
  std::string env = StartAgent();
  auto r = Strata(
      "build --progress=plain --allow network.host --ssh default -t run:agent " + Q(ctx.string()),
      env);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hello from git"));
  EXPECT_THAT(r.output, HasSubstr("(ED25519)"));  // ssh-add -l saw the key
  EXPECT_EQ(*ReadFile(Unpack("run:agent") / "cloned/app/hello.txt"), "hello from git\n");
  // SSH_AUTH_SOCK is the RUN's only: not in the image's config.
  auto inspect = Strata("inspect run:agent");
  EXPECT_THAT(inspect.output, Not(HasSubstr("SSH_AUTH_SOCK=")));

  // Key files: strata's own agent (its socket under this test's TMPDIR).
  // --no-cache: the same RUN must run again.
  const fs::path tmp = dir_ / "tmp";
  ASSERT_OK(MakeDirs(tmp));
  r = Strata("build --no-cache --progress=plain --allow network.host --ssh default=" +
                 Q((dir_ / "id_user").string()) + " -t run:key " + Q(ctx.string()),
             "TMPDIR=" + Q(tmp.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hello from git"));
  // The agent strata started is gone after the build, and its directory.
  EXPECT_EQ(ProcessesWith("ssh-agent -D -a " + tmp.string()), 0);
  EXPECT_TRUE(fs::is_empty(tmp)) << RunCommand("ls -la " + Q(tmp.string())).output;
}

TEST_F(GitSshIntegrationTest, RunMountSshRequiredWithoutAgentFailsAndOptionalIsSkipped) {
  auto ctx =
      Context("ssh-req", "FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true true\n");
  auto rootfs = dir_ / "busybox";
  auto r =
      RunCommand(std::string(STRATA_SOURCE_DIR) + "/tools/make-busybox-rootfs.sh " + Q(rootfs));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(Strata("import " + Q(rootfs.string()) + " busybox:latest").exit_code, 0);
  r = Strata("build " + Q(ctx.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.output, HasSubstr("no SSH agent or key forwarded with that id"));
  auto opt = Context("ssh-opt", "FROM busybox\nRUN --mount=type=ssh test -z \"$SSH_AUTH_SOCK\"\n");
  r = Strata("build " + Q(opt.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // --ssh default with no SSH_AUTH_SOCK is a clear error.
  r = Strata("build --ssh default " + Q(opt.string()), "env -u SSH_AUTH_SOCK");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SSH_AUTH_SOCK is not set"));
}

TEST_F(GitSshIntegrationTest, DumbHttpContextAndAddKeepGitDirWithChecksum) {
  auto r = Strata("build -t ctx:http " + Q(HttpRepo() + "#main:app"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("ctx:http") / "app/hello.txt"), "hello from git\n");

  const std::string commit = Commit("v1^{commit}");
  auto ctx = Context("add-http", "FROM scratch\nADD --keep-git-dir --checksum=" + commit + " " +
                                     HttpRepo() + "#v1 /src\n");
  r = Strata("build -t add:http " + Q(ctx.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::path fs_root = Unpack("add:http");
  EXPECT_EQ(*ReadFile(fs_root / "src/app/hello.txt"), "hello from git\n");
  EXPECT_EQ(*ReadFile(fs_root / "src/lib/lib.txt"), "lib file\n");
  ASSERT_TRUE(fs::is_directory(fs_root / "src/.git"));
  auto head = RunCommand("git -C " + Q((fs_root / "src").string()) + " rev-parse HEAD");
  EXPECT_EQ(Trim(head.output), commit);
  auto origin = RunCommand("git -C " + Q((fs_root / "src").string()) + " remote get-url origin");
  EXPECT_EQ(Trim(origin.output), HttpRepo());

  // A named context from git.
  auto named = Context("named", "FROM scratch\nCOPY --from=src hello.txt /h.txt\n");
  r = Strata("build -t named:git --build-context src=" + Q(HttpRepo() + "#v1:app") + " " +
             Q(named.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("named:git") / "h.txt"), "hello from git\n");

  // A checksum that is not the ref's commit names both.
  const std::string wrong(40, 'a');
  auto bad =
      Context("add-bad", "FROM scratch\nADD --checksum=" + wrong + " " + HttpRepo() + "#v1 /src\n");
  r = Strata("build " + Q(bad.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.output, HasSubstr(wrong));
  EXPECT_THAT(r.output, HasSubstr(commit));
}

TEST_F(GitSshIntegrationTest, UnchangedRefHitsTheCacheAndAMovedBranchMisses) {
  auto ctx = Context("cache", "FROM scratch\nADD " + HttpRepo() + "#main /src\n");
  auto r = Strata("build --progress=plain -t c:1 " + Q(ctx.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto git_cache = root_ / "git";
  auto objects_before = RunCommand("find " + Q(git_cache.string()) + " -type f | wc -l");
  r = Strata("build --progress=plain -t c:2 " + Q(ctx.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("CACHED"));
  // Nothing was fetched: the cache repository did not change.
  EXPECT_EQ(RunCommand("find " + Q(git_cache.string()) + " -type f | wc -l").output,
            objects_before.output);
  const std::string old_commit = Commit("main");
  // Move main: a new commit on the server.
  fs::path work = dir_ / "work";
  r = RunCommand("cd " + Q(work.string()) +
                 " && echo moved > app/hello.txt && git -c user.email=t@e -c user.name=t commit "
                 "-qam two && git push -q origin HEAD:main && git -C " +
                 Q((dir_ / "srv/repo.git").string()) + " update-server-info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("build --progress=plain -t c:3 " + Q(ctx.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("CACHED")));
  EXPECT_EQ(*ReadFile(Unpack("c:3") / "src/app/hello.txt"), "moved\n");
  // A commit that no branch points at any more, by its id (over ssh: a fetch
  // by id, or of every branch and tag when the server refuses one).
  auto by_id = Context("by-id", "FROM scratch\nADD " + SshRepo() + "#" + old_commit + " /src\n");
  r = Strata("build -t c:4 --ssh default=" + Q((dir_ / "id_user").string()) + " " +
             Q(by_id.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("c:4") / "src/app/hello.txt"), "hello from git\n");
}

TEST_F(GitSshIntegrationTest, TarballUrlContextAndStdinTarContext) {
  fs::path src = dir_ / "tarctx";
  testing::WriteTestFile(src / "Dockerfile", "FROM scratch\nCOPY f.txt /f.txt\n");
  testing::WriteTestFile(src / "f.txt", "from a tarball\n");
  auto r = RunCommand("tar -C " + Q(src.string()) + " -czf " +
                      Q((dir_ / "srv/ctx.tar.gz").string()) + " . && tar -C " + Q(src.string()) +
                      " -cf " + Q((dir_ / "ctx.tar").string()) + " .");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata(fmt::format("build -t tar:url http://127.0.0.1:{}/ctx.tar.gz", http_port_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("tar:url") / "f.txt"), "from a tarball\n");
  r = Strata("build -t tar:stdin - < " + Q((dir_ / "ctx.tar").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("tar:stdin") / "f.txt"), "from a tarball\n");
  // A URL that is a Dockerfile: the Dockerfile, with an empty context.
  testing::WriteTestFile(dir_ / "srv/Dockerfile.remote", "FROM scratch\nLABEL remote=yes\n");
  r = Strata(fmt::format("build -t df:url http://127.0.0.1:{}/Dockerfile.remote", http_port_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // A missing tarball names the URL.
  r = Strata(fmt::format("build http://127.0.0.1:{}/missing.tar.gz", http_port_));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("missing.tar.gz"));
  EXPECT_THAT(r.output, HasSubstr("404"));
  // strata.lock cannot pin a remote context: --lock/--locked say so (exit 2)
  // rather than writing or checking a lockfile that leaves it out.
  for (const char* flag : {"--lock", "--locked"}) {
    r = Strata(fmt::format("build {} http://127.0.0.1:{}/ctx.tar.gz", flag, http_port_));
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("with a remote build context")) << flag;
  }
}

TEST_F(GitSshIntegrationTest, ErrorsNameTheRefAndTheHostNeverTheSecret) {
  auto r = Strata("build --ssh default=" + Q((dir_ / "id_user").string()) + " " +
                  Q(SshRepo() + "#no-such-branch"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("git ref no-such-branch not found"));
  auto ctx = Context("unknown-ref", "FROM scratch\nADD " + HttpRepo() + "#nope /src\n");
  r = Strata("build " + Q(ctx.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Dockerfile:2"));
  EXPECT_THAT(r.output, HasSubstr("git ref nope not found"));

  auto key = ReadFile(dir_ / "id_wrong");
  ASSERT_TRUE(key.has_value());
  auto add = Context("auth", "FROM scratch\nADD " + SshRepo() + "#main /src\n");
  r = Strata("build --ssh default=" + Q((dir_ / "id_wrong").string()) + " " + Q(add.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("authentication to 127.0.0.1:" + ssh_port_ + " failed"));
  EXPECT_THAT(r.output, HasSubstr("Permission denied (publickey)"));
  // No line of the private key in the message.
  std::string body = key->substr(key->find('\n') + 1, 40);
  EXPECT_THAT(r.output, Not(HasSubstr(body)));

  // Strict host keys (STRATA_GIT_KNOWN_HOSTS) against a file without this host.
  testing::WriteTestFile(dir_ / "known_hosts", "");
  r = Strata("build --ssh default=" + Q((dir_ / "id_user").string()) + " " + Q(add.string()),
             "STRATA_GIT_KNOWN_HOSTS=" + Q((dir_ / "known_hosts").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the host key of 127.0.0.1:" + ssh_port_ + " is not trusted"));
  // ... and with it, the fetch works.
  r = RunCommand("ssh-keyscan -p " + ssh_port_ + " 127.0.0.1 > " +
                 Q((dir_ / "known_hosts").string()) + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Strata("build --ssh default=" + Q((dir_ / "id_user").string()) + " " + Q(add.string()),
             "STRATA_GIT_KNOWN_HOSTS=" + Q((dir_ / "known_hosts").string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(GitSshIntegrationTest, HttpsTokenSecretAuthenticatesAndFailuresNameTheHostOnly) {
  const std::string port = Trim(*ReadFile(dir_ / "auth_port"));
  const std::string token = Trim(*ReadFile(dir_ / "auth_token"));
  const std::string repo = fmt::format("http://127.0.0.1:{}/repo.git", port);
  // No token: the server's 401.
  auto r = Strata("build " + Q(repo + "#main:app"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("authentication to 127.0.0.1:" + port + " failed"));
  // A wrong token: the same, and the token is not in the message.
  const std::string wrong = "wrong-token-c0ffee";
  r = Strata("build --secret id=GIT_AUTH_TOKEN,env=T " + Q(repo + "#main:app"), "T=" + wrong);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("authentication to 127.0.0.1:" + port + " failed"));
  EXPECT_THAT(r.output, Not(HasSubstr(wrong)));
  // The right one, as GIT_AUTH_TOKEN and as the host's GIT_AUTH_TOKEN.<host>.
  r = Strata("build -t tok:ctx --secret id=GIT_AUTH_TOKEN,env=T " + Q(repo + "#main:app"),
             "T=" + Q(token));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("tok:ctx") / "app/hello.txt"), "hello from git\n");
  auto ctx = Context("tok-add", "FROM scratch\nADD " + repo + "#v1 /src\n");
  r = Strata(
      "build -t tok:add --secret id=GIT_AUTH_TOKEN.127.0.0.1:" + port + ",env=T " + Q(ctx.string()),
      "T=" + Q(token));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*ReadFile(Unpack("tok:add") / "src/lib/lib.txt"), "lib file\n");
  EXPECT_THAT(r.output, Not(HasSubstr(token)));
}

TEST_F(GitSshIntegrationTest, NoSecretReachesTheStoreTheCacheTheHistoryOrTheProgress) {
  ImportGitbox();
  const std::string token = "tok-9f8e7d6c5b4a-SECRET";
  const std::string header = "bearer hdr-1a2b3c4d-SECRET";
  const std::string secret = "file-secret-77aa55-SECRET";
  testing::WriteTestFile(dir_ / "secret.txt", secret);
  auto key = ReadFile(dir_ / "id_user");
  ASSERT_TRUE(key.has_value());
  // A whole line of the private key's base64 body.
  std::string key_line = key->substr(key->find('\n') + 1);
  key_line = key_line.substr(0, key_line.find('\n'));
  ASSERT_GE(key_line.size(), 40u);
  auto ctx = Context(
      "leak",
      "FROM gitbox\n"
      "ADD " +
          HttpRepo() +
          "#main /src\n"
          "RUN --mount=type=secret,id=s cat /run/secrets/s > /dev/null && echo used-secret\n"
          "RUN --network=host --mount=type=ssh ssh-add -l && GIT_SSH_COMMAND='ssh -o "
          "StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' git clone -q " +
          SshRepo() + " /cloned\n");
  const std::string flags = "--allow network.host --ssh default=" + Q((dir_ / "id_user").string()) +
                            " --secret id=GIT_AUTH_TOKEN,env=GIT_TOKEN_VALUE" +
                            " --secret id=s,src=" + Q((dir_ / "secret.txt").string()) +
                            " --cache-to type=local,dest=" + Q((dir_ / "cache").string());
  const std::string env = "GIT_TOKEN_VALUE=" + Q(token);
  auto plain = Strata("build --progress=plain -t leak:1 " + flags + " " + Q(ctx.string()), env);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_THAT(plain.output, HasSubstr("used-secret"));
  auto json =
      Strata("build --no-cache --progress=rawjson -t leak:2 " + flags + " " + Q(ctx.string()), env);
  ASSERT_EQ(json.exit_code, 0) << json.output;
  // An http context with a GIT_AUTH_HEADER secret, and the history.
  auto hdr = Strata("build --progress=plain -t leak:3 --secret id=GIT_AUTH_HEADER,env=HDR " +
                        Q(HttpRepo() + "#main:app"),
                    "HDR=" + Q(header));
  ASSERT_EQ(hdr.exit_code, 0) << hdr.output;
  std::string history;
  for (const char* t : {"leak:1", "leak:2", "leak:3"}) {
    history += Strata(std::string("history --no-trunc ") + t).output;
    history += Strata(std::string("inspect ") + t).output;
  }
  const std::string base64_token =
      Trim(RunCommand("printf %s " + Q("x-access-token:" + token) + " | base64 -w0").output);
  // Every file of the store and of the cache export, blobs decompressed.
  auto sweep = [&](const std::string& needle) {
    return RunCommand("for d in " + Q(root_.string()) + " " + Q((dir_ / "cache").string()) +
                      "; do find \"$d\" -type f -exec sh -c 'for f; do zstdcat -q \"$f\" "
                      "2>/dev/null || zcat -f \"$f\" 2>/dev/null; done' _ {} +; done | "
                      "grep -a -c -F -e " +
                      Q(needle) + " || true");
  };
  for (const std::string& needle : {token, base64_token, header, secret, key_line}) {
    SCOPED_TRACE(needle);
    EXPECT_THAT(plain.output, Not(HasSubstr(needle)));
    EXPECT_THAT(json.output, Not(HasSubstr(needle)));
    EXPECT_THAT(hdr.output, Not(HasSubstr(needle)));
    EXPECT_THAT(history, Not(HasSubstr(needle)));
    EXPECT_EQ(Trim(sweep(needle).output), "0");
  }
  // The sweep can find what is there: the file the RUN cloned.
  EXPECT_NE(Trim(sweep("hello from git").output), "0");
}

}  // namespace
}  // namespace strata
