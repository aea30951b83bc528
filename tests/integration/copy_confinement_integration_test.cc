// COPY/ADD never write outside their staging root, whatever symlinks the
// sources, a base image or an earlier layer hold (issue 9, item 1).
//
// Each case builds a Dockerfile whose sources plant a link to a "sandbox"
// directory on the host (outside the store and the context) and then write
// through that link: a second source's directory of the same name, an ADD
// tar entry, a heredoc, an ADD URL, `--parents`, `--chmod`/`--chown`. The
// sandbox is fingerprinted (content, mode, owner, mtime of every entry)
// before and after: it must not change at all. Link forms: absolute, `../`
// relative, a chain of links, and a directory link to "/".
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "oci/digest.h"
#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::strata::testing::RunCommand;
using ::testing::HasSubstr;

std::string Q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

enum class LinkForm { kAbsolute, kRelative, kChain, kRootDir };
enum class CopyForm {
  kContextTwoSources,  // COPY a b /dst/ : a/x is the link, b/x/ a directory
  kChmodChown,         // the same with --chmod=777 --chown=4242:4242
  kFromStage,          // COPY --from=<stage> /a /b /dst/
  kFromImage,          // COPY --from=<image> /a /b /dst/ (a hostile base image)
  kAddTar,             // ADD a evil.tar /dst/ : the tar holds x/victim
  kLayerThenFile,      // an earlier layer put /dst/x; COPY victim /dst/x/
  kLayerThenHeredoc,   // an earlier layer put /dst/x; COPY <<victim /dst/x/
  kLayerThenParents,   // an earlier layer put /dst/x; COPY --parents x/victim /dst/
  kLayerThenUrl,       // an earlier layer put /dst/x; ADD http://127.0.0.1/victim /dst/x/
};

std::string Name(LinkForm l) {
  switch (l) {
    case LinkForm::kAbsolute:
      return "Absolute";
    case LinkForm::kRelative:
      return "Relative";
    case LinkForm::kChain:
      return "Chain";
    case LinkForm::kRootDir:
      return "RootDir";
  }
  return "?";
}

std::string Name(CopyForm f) {
  switch (f) {
    case CopyForm::kContextTwoSources:
      return "ContextTwoSources";
    case CopyForm::kChmodChown:
      return "ChmodChown";
    case CopyForm::kFromStage:
      return "FromStage";
    case CopyForm::kFromImage:
      return "FromImage";
    case CopyForm::kAddTar:
      return "AddTar";
    case CopyForm::kLayerThenFile:
      return "LayerThenFile";
    case CopyForm::kLayerThenHeredoc:
      return "LayerThenHeredoc";
    case CopyForm::kLayerThenParents:
      return "LayerThenParents";
    case CopyForm::kLayerThenUrl:
      return "LayerThenUrl";
  }
  return "?";
}

void PrintTo(LinkForm l, std::ostream* os) { *os << Name(l); }
void PrintTo(CopyForm f, std::ostream* os) { *os << Name(f); }

// Every entry below `dir`: path -> "type mode uid:gid mtime sha256".
std::map<std::string, std::string> Fingerprint(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return;
    std::string content;
    if (S_ISREG(st.st_mode)) {
      auto d = oci::DigestFile(p.string());
      content = d ? d->hex() : "?";
    } else if (S_ISLNK(st.st_mode)) {
      content = fs::read_symlink(p, ec).string();
    }
    out[p.lexically_relative(dir).string()] =
        fmt::format("{:o} {}:{} {}.{} {}", st.st_mode, st.st_uid, st.st_gid, st.st_mtim.tv_sec,
                    st.st_mtim.tv_nsec, content);
  };
  add(dir);
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    add(it->path());
  }
  return out;
}

class ConfinementFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlayfs)";
    auto t = ScopedTempDir::Create("/tmp", "strata-confine-");
    ASSERT_OK(t);
    tmp_ = std::move(*t);
    root_ = tmp_.path() / "store";
    sandbox_ = tmp_.path() / "sandbox";
    // The host files an attack would reach: they must stay exactly as they are.
    testing::WriteTestFile(sandbox_ / "victim", "original\n", 0644);
    testing::WriteTestFile(sandbox_ / "sub" / "keep", "keep\n", 0600);
    ::chmod(sandbox_.c_str(), 0750);
    ::chmod((sandbox_ / "sub").c_str(), 0700);
  }

  void TearDown() override {
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
  }

  testing::CommandResult Strata(const std::string& args) {
    return RunCommand(std::string(STRATA_BINARY) + " --root " + Q(root_) + " " + args);
  }

  // Puts the link `name` (in directory `dir`) to the sandbox, in form `l`.
  // Returns the path *inside the image* below the link where the sandbox's
  // files appear (where a write through the link would land on the host).
  std::string PlantLink(const fs::path& dir, const std::string& name, LinkForm l) {
    fs::create_directories(dir);
    std::string rel_sandbox = sandbox_.relative_path().string();  // tmp/.../sandbox
    switch (l) {
      case LinkForm::kAbsolute:
        fs::create_symlink(sandbox_, dir / name);
        return "";
      case LinkForm::kRelative: {
        std::string up;
        for (int i = 0; i < 24; ++i) up += "../";
        fs::create_symlink(up + rel_sandbox, dir / name);
        return "";
      }
      case LinkForm::kChain:
        fs::create_symlink(name + "-hop", dir / name);
        fs::create_symlink("./" + name + "-hop2", dir / (name + "-hop"));
        fs::create_symlink(sandbox_, dir / (name + "-hop2"));
        return "";
      case LinkForm::kRootDir:
        fs::create_symlink("/", dir / name);
        return rel_sandbox + "/";
    }
    return "";
  }

  // Serves `dir` over HTTP on 127.0.0.1; returns the port.
  int Serve(const fs::path& dir) {
    int port = 20000 + (::getpid() * 7 + ++serves_) % 20000;
    server_pid_ = ::fork();
    if (server_pid_ == 0) {
      ::execlp("python3", "python3", "-m", "http.server", std::to_string(port).c_str(), "--bind",
               "127.0.0.1", "--directory", dir.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      auto r = RunCommand(fmt::format("curl -sf -o /dev/null http://127.0.0.1:{}/", port));
      if (r.exit_code == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return port;
  }

  ScopedTempDir tmp_;
  fs::path root_;
  fs::path sandbox_;
  pid_t server_pid_ = -1;
  int serves_ = 0;
};

class CopyConfinementIntegrationTest
    : public ConfinementFixture,
      public ::testing::WithParamInterface<std::tuple<CopyForm, LinkForm>> {};

using CopyDestinationIntegrationTest = ConfinementFixture;

// As docker and BuildKit: the destination's directories resolve through the
// image's own links, inside the image. On a usrmerged image `COPY x /bin/`
// lands in /usr/bin and /bin stays a link (making /bin a directory in the
// layer would hide every binary below it).
TEST_F(CopyDestinationIntegrationTest, DestinationResolvesThroughTheImagesLinks) {
  fs::path ctx = tmp_.path() / "ctx";
  testing::WriteTestFile(ctx / "base" / "usr" / "bin" / "sh", "sh\n", 0755);
  fs::create_symlink("usr/bin", ctx / "base" / "bin");
  fs::create_symlink("/srv/real", ctx / "base" / "app");
  testing::WriteTestFile(ctx / "tool", "tool\n", 0755);
  testing::WriteTestFile(ctx / "Dockerfile",
                         "FROM scratch\nCOPY base /\nCOPY tool /bin/\nCOPY tool /app/t\n"
                         "COPY tool /bin/renamed\nWORKDIR /app/made\n");
  auto r = Strata("build -q -t usrmerge:1 " + Q(ctx));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::path out = tmp_.path() / "unpacked";
  r = Strata("unpack usrmerge:1 " + Q(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_symlink(out / "bin"));
  EXPECT_TRUE(fs::exists(out / "usr" / "bin" / "sh"));
  EXPECT_TRUE(fs::exists(out / "usr" / "bin" / "tool"));
  EXPECT_TRUE(fs::exists(out / "usr" / "bin" / "renamed"));
  EXPECT_TRUE(fs::exists(out / "srv" / "real" / "t"));
  EXPECT_TRUE(fs::is_symlink(out / "app"));
  EXPECT_TRUE(fs::is_directory(out / "srv" / "real" / "made"));
}

TEST_P(CopyConfinementIntegrationTest, NothingOutsideTheStagingRootChanges) {
  auto [form, link] = GetParam();
  fs::path ctx = tmp_.path() / "ctx";
  fs::create_directories(ctx);
  std::string df;
  // A directory "b/x/" whose files land, in the image, below the link "x".
  auto fill_b = [&](const std::string& below) {
    testing::WriteTestFile(ctx / "b" / "x" / below / "victim", "overwritten\n", 0666);
    testing::WriteTestFile(ctx / "b" / "x" / below / "planted", "planted\n", 0666);
  };
  switch (form) {
    case CopyForm::kContextTwoSources:
    case CopyForm::kChmodChown: {
      fill_b(PlantLink(ctx / "a", "x", link));
      std::string flags = form == CopyForm::kChmodChown ? "--chmod=777 --chown=4242:4242 " : "";
      df = "FROM scratch\nCOPY " + flags + "a b /dst/\n";
      break;
    }
    case CopyForm::kFromStage:
    case CopyForm::kFromImage: {
      fill_b(PlantLink(ctx / "a", "x", link));
      std::string stage = "FROM scratch AS hostile\nCOPY a /a\nCOPY b /b\n";
      std::string from = "hostile";
      if (form == CopyForm::kFromImage) {
        testing::WriteTestFile(ctx / "hostile.Dockerfile", stage);
        auto r = Strata("build -q -t hostile:1 -f " + Q(ctx / "hostile.Dockerfile") + " " + Q(ctx));
        ASSERT_EQ(r.exit_code, 0) << r.output;
        stage.clear();
        from = "hostile:1";
      }
      df = stage + "FROM scratch\nCOPY --from=" + from + " /a /b /dst/\n";
      break;
    }
    case CopyForm::kAddTar: {
      std::string below = PlantLink(ctx / "a", "x", link);
      fs::path tree = tmp_.path() / "tartree";
      testing::WriteTestFile(tree / "x" / below / "victim", "overwritten\n", 0666);
      testing::WriteTestFile(tree / "x" / below / "planted", "planted\n", 0666);
      auto r = RunCommand("tar -C " + Q(tree) + " -cf " + Q(ctx / "evil.tar") + " x");
      ASSERT_EQ(r.exit_code, 0) << r.output;
      df = "FROM scratch\nADD a evil.tar /dst/\n";
      break;
    }
    case CopyForm::kLayerThenFile:
    case CopyForm::kLayerThenHeredoc:
    case CopyForm::kLayerThenParents:
    case CopyForm::kLayerThenUrl: {
      std::string below = PlantLink(ctx / "l", "x", link);
      df = "FROM scratch\nCOPY l /dst/\n";
      std::string dest = "/dst/x/" + below;
      if (form == CopyForm::kLayerThenFile) {
        testing::WriteTestFile(ctx / "victim", "overwritten\n", 0666);
        df += "COPY victim " + dest + "\n";
      } else if (form == CopyForm::kLayerThenHeredoc) {
        df += "COPY <<victim " + dest + "\noverwritten\nvictim\n";
      } else if (form == CopyForm::kLayerThenParents) {
        testing::WriteTestFile(ctx / "x" / below / "victim", "overwritten\n", 0666);
        df += "COPY --parents x/" + below + "victim /dst/\n";
      } else {
        fs::path www = tmp_.path() / "www";
        testing::WriteTestFile(www / "victim", "overwritten\n", 0666);
        int port = Serve(www);
        df += fmt::format("ADD http://127.0.0.1:{}/victim {}\n", port, dest);
      }
      break;
    }
  }
  testing::WriteTestFile(ctx / "Dockerfile", df);
  auto before = Fingerprint(sandbox_);
  auto r = Strata("build -q -t out:1 " + Q(ctx));
  auto after = Fingerprint(sandbox_);
  EXPECT_EQ(before, after) << "the build wrote outside its root:\n" << df << "\n" << r.output;
  EXPECT_FALSE(fs::exists(sandbox_ / "planted"));
  // The build either succeeded (the link resolved inside the image) or failed
  // with a clear error; it never half-succeeded through the host.
  if (r.exit_code == 0) {
    auto fsck = Strata("fsck");
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  } else {
    EXPECT_THAT(r.output, HasSubstr("Dockerfile:")) << r.output;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllForms, CopyConfinementIntegrationTest,
    ::testing::Combine(::testing::Values(CopyForm::kContextTwoSources, CopyForm::kChmodChown,
                                         CopyForm::kFromStage, CopyForm::kFromImage,
                                         CopyForm::kAddTar, CopyForm::kLayerThenFile,
                                         CopyForm::kLayerThenHeredoc, CopyForm::kLayerThenParents,
                                         CopyForm::kLayerThenUrl),
                       ::testing::Values(LinkForm::kAbsolute, LinkForm::kRelative, LinkForm::kChain,
                                         LinkForm::kRootDir)),
    [](const auto& info) {
      return Name(std::get<0>(info.param)) + "_" + Name(std::get<1>(info.param));
    });

}  // namespace
}  // namespace strata
