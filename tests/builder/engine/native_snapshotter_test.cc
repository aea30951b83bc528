#include "builder/engine/native_snapshotter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "oci/util/file_util.h"
#include "tests/testing/test_util.h"

namespace strata::builder {
namespace {
namespace fs = std::filesystem;
using ::strata::testing::MakeTempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

bool IsRoot() { return ::geteuid() == 0; }

// Every entry below `dir` as "path kind" lines: files with mode and content,
// dirs with mode, links with their target, whiteouts as "wh". The root is
// not listed. Owners and times are left to the tests that care.
std::string Dump(const fs::path& dir) {
  std::map<std::string, std::string> lines;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::string rel = it->path().lexically_relative(dir).string();
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) {
      lines[rel] = "stat-error";
      continue;
    }
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      lines[rel] = fmt::format("dir {:o}", perm);
    } else if (S_ISLNK(st.st_mode)) {
      lines[rel] = "link -> " + fs::read_symlink(it->path()).string();
    } else if (S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0)) {
      lines[rel] = "wh";
    } else if (S_ISREG(st.st_mode)) {
      auto content = ReadFile(it->path());
      lines[rel] = fmt::format("file {:o} {}", perm, content ? *content : "<unreadable>");
    } else if (S_ISFIFO(st.st_mode)) {
      lines[rel] = fmt::format("fifo {:o}", perm);
    } else {
      lines[rel] =
          fmt::format("other {:o} {}:{}", st.st_mode, major(st.st_rdev), minor(st.st_rdev));
    }
  }
  std::string out;
  for (const auto& [k, v] : lines) out += k + ": " + v + "\n";
  return out;
}

// Creates or rewrites `p` in place (parents made), without fsync.
void Write(const fs::path& p, std::string_view content, int mode = 0644) {
  fs::create_directories(p.parent_path());
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.valid()) << p << ": " << strerror(errno);
  ASSERT_OK(WriteAll(fd.get(), content.data(), content.size()));
  ASSERT_EQ(::fchmod(fd.get(), mode), 0);
}
void Mkdir(const fs::path& p, int mode = 0755) {
  fs::create_directories(p);
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}
void Whiteout(const fs::path& p) {
  fs::create_directories(p.parent_path());
  ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0600, ::makedev(0, 0)), 0) << p << ": " << strerror(errno);
}
// The opaque marker the caller can set: trusted.* as root, user.* otherwise.
void MarkOpaque(const fs::path& p, bool trusted) {
  const char* name = trusted ? "trusted.overlay.opaque" : "user.overlay.opaque";
  ASSERT_EQ(::setxattr(p.c_str(), name, "y", 1, 0), 0) << strerror(errno);
}
void SetMtime(const fs::path& p, int64_t sec, long nsec) {
  struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0);
}
struct stat Lstat(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}
std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class NativeSnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = MakeTempDir();
    scratch_ = tmp_.path() / "snapshots";
    fs::create_directories(scratch_);
  }
  // A fresh lower dir "lN".
  fs::path Lower() {
    fs::path p = tmp_.path() / fmt::format("l{}", n_++);
    fs::create_directories(p);
    return p;
  }
  // View of `lowers` (top-most first), dumped.
  std::string ViewDump(const std::vector<fs::path>& lowers) {
    auto v = snap_.View(lowers, scratch_);
    if (!v) return "error: " + v.error().message();
    return Dump((*v)->root());
  }
  // Runs `change` on a Prepare'd copy of `lowers`, returns the upper dir's
  // dump, and checks the round trip: the upper on top of the lowers shows
  // exactly what the step left.
  std::string DiffOf(const std::vector<fs::path>& lowers,
                     const std::function<void(const fs::path&)>& change) {
    auto a = snap_.Prepare(lowers, scratch_);
    if (!a) return "error: " + a.error().message();
    change((*a)->root());
    std::string after = Dump((*a)->root());
    auto upper = (*a)->Finish();
    if (!upper) return "error: " + upper.error().message();
    std::vector<fs::path> stacked = {*upper};
    stacked.insert(stacked.end(), lowers.begin(), lowers.end());
    EXPECT_EQ(ViewDump(stacked), after) << "upper over the lowers differs from the step's result";
    last_upper_ = *upper;
    active_ = std::move(*a);  // keeps the upper until the next DiffOf
    return Dump(*upper);
  }

  ScopedTempDir tmp_;
  fs::path scratch_;
  NativeSnapshotter snap_;
  fs::path last_upper_;
  std::unique_ptr<ActiveSnapshot> active_;
  int n_ = 0;
};

TEST_F(NativeSnapshotterTest, ViewOfNoLowersIsAnEmptyScratchDirRemovedOnRelease) {
  ASSERT_OK_AND_ASSIGN(auto v, snap_.View({}, scratch_));
  EXPECT_EQ(v->root().filename(), "merged");
  EXPECT_TRUE(v->root().parent_path().filename().string().starts_with(".view-"));
  EXPECT_EQ(v->root().parent_path().parent_path(), scratch_);
  EXPECT_THAT(Names(v->root()), IsEmpty());
  v.reset();
  EXPECT_THAT(Names(scratch_), IsEmpty());
}

TEST_F(NativeSnapshotterTest, PrepareUsesRunScratchDir) {
  ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({}, scratch_));
  EXPECT_TRUE(a->root().parent_path().filename().string().starts_with(".run-"));
  ASSERT_OK_AND_ASSIGN(fs::path upper, a->Finish());
  EXPECT_EQ(upper, a->root().parent_path() / "upper");
  a.reset();
  EXPECT_THAT(Names(scratch_), IsEmpty());
}

TEST_F(NativeSnapshotterTest, TopMostLowerWins) {
  fs::path bottom = Lower(), top = Lower();
  Write(bottom / "a", "bottom-a");
  Write(bottom / "b", "bottom-b");
  Write(bottom / "d/x", "bottom-x");
  Write(top / "a", "top-a", 0600);
  Write(top / "d/y", "top-y");
  EXPECT_EQ(ViewDump({top, bottom}),
            "a: file 600 top-a\n"
            "b: file 644 bottom-b\n"
            "d: dir 755\n"
            "d/x: file 644 bottom-x\n"
            "d/y: file 644 top-y\n");
}

TEST_F(NativeSnapshotterTest, WhiteoutHidesFilesAndDirsBelow) {
  fs::path l0 = Lower(), l1 = Lower(), l2 = Lower();
  Write(l0 / "f", "f");
  Write(l0 / "d/x", "x");
  Write(l0 / "keep", "k");
  Whiteout(l1 / "f");
  Whiteout(l1 / "d");
  Whiteout(l1 / "never");      // hides nothing: not listed
  Write(l2 / "d/new", "new");  // re-created above the whiteout: only its own content
  EXPECT_EQ(ViewDump({l1, l0}), "keep: file 644 k\n");
  EXPECT_EQ(ViewDump({l2, l1, l0}), "d: dir 755\nd/new: file 644 new\nkeep: file 644 k\n");
}

TEST_F(NativeSnapshotterTest, OpaqueDirHidesLowerContents) {
  std::vector<bool> kinds = {false};
  if (IsRoot()) kinds.push_back(true);  // trusted.* needs CAP_SYS_ADMIN
  for (bool trusted : kinds) {
    fs::path l0 = Lower(), l1 = Lower();
    Write(l0 / "d/old", "old");
    Write(l0 / "d/sub/deep", "deep");
    Write(l1 / "d/new", "new");
    MarkOpaque(l1 / "d", trusted);
    EXPECT_EQ(ViewDump({l1, l0}), "d: dir 755\nd/new: file 644 new\n") << "trusted=" << trusted;
  }
}

TEST_F(NativeSnapshotterTest, NonDirectoryStopsTheMergeOfDirectoriesBelow) {
  fs::path l0 = Lower(), l1 = Lower(), l2 = Lower();
  Write(l0 / "d/x", "x");
  Write(l1 / "d", "file");
  Write(l2 / "d/y", "y");
  EXPECT_EQ(ViewDump({l1, l0}), "d: file 644 file\n");
  EXPECT_EQ(ViewDump({l2, l1, l0}), "d: dir 755\nd/y: file 644 y\n");
}

TEST_F(NativeSnapshotterTest, KeepsModesNanosecondMtimesLinksFifosAndXattrs) {
  fs::path l0 = Lower();
  Write(l0 / "bin/tool", "#!", 04755);
  Mkdir(l0 / "tmp", 01777);
  Mkdir(l0 / "ro", 0555);
  Write(l0 / "secret", "s", 0600);
  // user.* xattrs need write access: set before the file is made read-only.
  ASSERT_EQ(::setxattr((l0 / "secret").c_str(), "user.note", "hi", 2, 0), 0);
  ASSERT_EQ(::chmod((l0 / "secret").c_str(), 0400), 0);
  fs::create_symlink("../bin/tool", l0 / "ro-link");
  ASSERT_EQ(::mkfifo((l0 / "fifo").c_str(), 0640), 0);
  SetMtime(l0 / "bin/tool", 1000, 123456789);
  SetMtime(l0 / "ro-link", 2000, 5);
  SetMtime(l0 / "bin", 3000, 7);
  for (bool view : {true, false}) {
    std::unique_ptr<Mounted> m;
    if (view) {
      ASSERT_OK_AND_ASSIGN(m, snap_.View({l0}, scratch_));
    } else {
      ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({l0}, scratch_));
      m = std::move(a);
    }
    fs::path r = m->root();
    EXPECT_EQ(Dump(r),
              "bin: dir 755\n"
              "bin/tool: file 4755 #!\n"
              "fifo: fifo 640\n"
              "ro: dir 555\n"
              "ro-link: link -> ../bin/tool\n"
              "secret: file 400 s\n"
              "tmp: dir 1777\n");
    EXPECT_EQ(Lstat(r / "bin/tool").st_mtim.tv_nsec, 123456789);
    EXPECT_EQ(Lstat(r / "bin/tool").st_mtim.tv_sec, 1000);
    EXPECT_EQ(Lstat(r / "ro-link").st_mtim.tv_sec, 2000);
    EXPECT_EQ(Lstat(r / "ro-link").st_mtim.tv_nsec, 5);
    EXPECT_EQ(Lstat(r / "bin").st_mtim.tv_sec, 3000);
    EXPECT_EQ(Lstat(r / "bin").st_mtim.tv_nsec, 7);
    char buf[8];
    ASSERT_EQ(::getxattr((r / "secret").c_str(), "user.note", buf, sizeof(buf)), 2);
    EXPECT_EQ(std::string(buf, 2), "hi");
  }
}

TEST_F(NativeSnapshotterTest, OwnersKeptAsRootCallersOtherwise) {
  fs::path l0 = Lower();
  Write(l0 / "f", "f");
  if (IsRoot()) {
    ASSERT_EQ(::lchown((l0 / "f").c_str(), 1234, 5678), 0);
    ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({l0}, scratch_));
    EXPECT_EQ(Lstat(a->root() / "f").st_uid, 1234u);
    EXPECT_EQ(Lstat(a->root() / "f").st_gid, 5678u);
    // A chown by the step is a change.
    ASSERT_EQ(::lchown((a->root() / "f").c_str(), 1, 1), 0);
    ASSERT_OK_AND_ASSIGN(fs::path upper, a->Finish());
    EXPECT_EQ(Lstat(upper / "f").st_uid, 1u);
  } else {
    NativeSnapshotterOptions o;
    EXPECT_FALSE(o.preserve_owners);
    ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({l0}, scratch_));
    EXPECT_EQ(Lstat(a->root() / "f").st_uid, ::geteuid());
    ASSERT_OK_AND_ASSIGN(fs::path upper, a->Finish());
    EXPECT_THAT(Names(upper), IsEmpty());
  }
}

TEST_F(NativeSnapshotterTest, SymlinkInLowerIsNeverFollowedByAHigherLower) {
  fs::path outside = tmp_.path() / "outside";
  Mkdir(outside);
  Write(outside / "passwd", "host");
  fs::path l0 = Lower(), l1 = Lower();
  fs::create_symlink(outside, l0 / "etc");       // absolute, out of the root
  fs::create_symlink("../../../..", l0 / "up");  // relative escape
  Write(l1 / "etc/passwd", "image");
  Write(l1 / "up/evil", "evil");
  for (bool view : {true, false}) {
    std::string dump;
    if (view) {
      dump = ViewDump({l1, l0});
    } else {
      dump = DiffOf({l1, l0}, [](const fs::path& root) { Write(root / "etc/passwd", "changed"); });
    }
    EXPECT_EQ(Dump(outside), "passwd: file 644 host\n") << "view=" << view;
    EXPECT_THAT(Names(tmp_.path()), ::testing::Not(::testing::Contains("evil")));
    if (view) {
      EXPECT_EQ(dump,
                "etc: dir 755\netc/passwd: file 644 image\n"
                "up: dir 755\nup/evil: file 644 evil\n");
    } else {
      EXPECT_EQ(dump, "etc: dir 755\netc/passwd: file 644 changed\n");
    }
  }
  // Alone, the links are kept as links.
  EXPECT_EQ(ViewDump({l0}),
            fmt::format("etc: link -> {}\nup: link -> ../../../..\n", outside.string()));
}

TEST_F(NativeSnapshotterTest, StepWritingThroughALowerSymlinkStaysInScratch) {
  fs::path outside = tmp_.path() / "outside";
  Mkdir(outside);
  fs::path l0 = Lower();
  fs::create_symlink(outside, l0 / "out");
  // The step itself follows the link (as a process in a real container
  // would not: there it resolves inside the rootfs). Whatever it did outside
  // is not the snapshot's: the diff holds nothing, since the link is
  // unchanged, and nothing of the diff is written through it.
  std::string d = DiffOf(
      {l0}, [&](const fs::path& root) { EXPECT_EQ(fs::read_symlink(root / "out"), outside); });
  EXPECT_EQ(d, "");
  EXPECT_THAT(Names(outside), IsEmpty());
}

TEST_F(NativeSnapshotterTest, PrepareCopiesSoTheLowersStayUntouched) {
  fs::path l0 = Lower();
  Write(l0 / "f", "lower");
  ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({l0}, scratch_));
  EXPECT_NE(Lstat(a->root() / "f").st_ino, Lstat(l0 / "f").st_ino);
  Write(a->root() / "f", "changed");
  EXPECT_EQ(*ReadFile(l0 / "f"), "lower");
}

TEST_F(NativeSnapshotterTest, ViewHardLinksFilesUnlessAskedNotTo) {
  fs::path l0 = Lower();
  Write(l0 / "f", "lower");
  ASSERT_OK_AND_ASSIGN(auto v, snap_.View({l0}, scratch_));
  EXPECT_EQ(Lstat(v->root() / "f").st_ino, Lstat(l0 / "f").st_ino);
  NativeSnapshotterOptions o;
  o.link_views = false;
  NativeSnapshotter copying(o);
  ASSERT_OK_AND_ASSIGN(auto c, copying.View({l0}, scratch_));
  EXPECT_NE(Lstat(c->root() / "f").st_ino, Lstat(l0 / "f").st_ino);
  EXPECT_EQ(*ReadFile(c->root() / "f"), "lower");
}

TEST_F(NativeSnapshotterTest, UnchangedStepGivesAnEmptyUpper) {
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "usr/bin/a", "a", 0755);
  Mkdir(l0 / "var/empty", 0711);
  Whiteout(l1 / "usr/bin/gone");
  Write(l1 / "etc/hosts", "h");
  EXPECT_EQ(DiffOf({l1, l0}, [](const fs::path&) {}), "");
}

TEST_F(NativeSnapshotterTest, ReadingAndReWritingSameBytesIsNoChange) {
  fs::path l0 = Lower();
  Write(l0 / "etc/conf", "same");
  SetMtime(l0 / "etc/conf", 1000, 0);
  SetMtime(l0 / "etc", 1000, 0);
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     Write(root / "etc/conf", "same");
                     SetMtime(root / "etc/conf", 1000, 0);
                   }),
            "");
}

TEST_F(NativeSnapshotterTest, ContentChangeWithSameSizeAndRestoredMtimeIsFound) {
  fs::path l0 = Lower();
  Write(l0 / "etc/conf", "aaaa");
  SetMtime(l0 / "etc/conf", 1000, 0);
  SetMtime(l0 / "etc", 1000, 0);
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     Write(root / "etc/conf", "bbbb");
                     SetMtime(root / "etc/conf", 1000, 0);
                   }),
            "etc: dir 755\netc/conf: file 644 bbbb\n");
  // The parent is in the upper only as the path to it, with its metadata.
  EXPECT_EQ(Lstat(last_upper_ / "etc").st_mtim.tv_sec, 1000);
}

TEST_F(NativeSnapshotterTest, AddedFileBringsItsParentsOnly) {
  fs::path l0 = Lower();
  Write(l0 / "a/b/old", "old");
  Write(l0 / "a/sibling", "s");
  Write(l0 / "other/x", "x");
  EXPECT_EQ(DiffOf({l0}, [](const fs::path& root) { Write(root / "a/b/new", "new", 0600); }),
            "a: dir 755\na/b: dir 755\na/b/new: file 600 new\n");
}

TEST_F(NativeSnapshotterTest, DeletedEntriesBecomeWhiteouts) {
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "a/f", "f");
  Write(l0 / "a/d/x", "x");
  Write(l1 / "top", "t");
  EXPECT_EQ(DiffOf({l1, l0},
                   [](const fs::path& root) {
                     fs::remove(root / "a/f");
                     fs::remove_all(root / "a/d");
                     fs::remove(root / "top");
                   }),
            "a: dir 755\na/d: wh\na/f: wh\ntop: wh\n");
}

TEST_F(NativeSnapshotterTest, ChmodIsAChange) {
  fs::path l0 = Lower();
  Write(l0 / "run.sh", "echo", 0644);
  Mkdir(l0 / "dir", 0755);
  Write(l0 / "dir/keep", "k");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     ASSERT_EQ(::chmod((root / "run.sh").c_str(), 0755), 0);
                     ASSERT_EQ(::chmod((root / "dir").c_str(), 0700), 0);
                   }),
            "dir: dir 700\nrun.sh: file 755 echo\n");
}

TEST_F(NativeSnapshotterTest, XattrChangeIsAChange) {
  fs::path l0 = Lower();
  Write(l0 / "f", "f");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     ASSERT_EQ(::setxattr((root / "f").c_str(), "user.x", "1", 1, 0), 0);
                   }),
            "f: file 644 f\n");
  char buf[4];
  EXPECT_EQ(::getxattr((last_upper_ / "f").c_str(), "user.x", buf, sizeof(buf)), 1);
}

TEST_F(NativeSnapshotterTest, DirectoryReplacedByFileAndFileByDirectory) {
  fs::path l0 = Lower();
  Write(l0 / "d/x", "x");
  Write(l0 / "d/sub/y", "y");
  Write(l0 / "f", "file");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     fs::remove_all(root / "d");
                     Write(root / "d", "now a file");
                     fs::remove(root / "f");
                     Write(root / "f/inside", "i");
                   }),
            "d: file 644 now a file\nf: dir 755\nf/inside: file 644 i\n");
  // No opaque marker is needed (nor written): a directory over a
  // non-directory hides nothing that could show through.
  char v;
  EXPECT_LT(::lgetxattr((last_upper_ / "f").c_str(), "trusted.overlay.opaque", &v, 1), 0);
  EXPECT_LT(::lgetxattr((last_upper_ / "f").c_str(), "user.overlay.opaque", &v, 1), 0);
}

TEST_F(NativeSnapshotterTest, DirectoryRemovedAndRecreatedWhitesOutWhatIsGone) {
  fs::path l0 = Lower();
  Write(l0 / "d/old", "old");
  Write(l0 / "d/kept", "same");
  SetMtime(l0 / "d/kept", 1000, 0);
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     fs::remove_all(root / "d");
                     Write(root / "d/kept", "same");
                     SetMtime(root / "d/kept", 1000, 0);
                     Write(root / "d/new", "new");
                   }),
            "d: dir 755\nd/new: file 644 new\nd/old: wh\n");
}

TEST_F(NativeSnapshotterTest, NestedNewDirectoriesComeWhole) {
  fs::path l0 = Lower();
  Mkdir(l0 / "usr");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     Mkdir(root / "usr/local/lib/empty", 0700);
                     Write(root / "usr/local/bin/tool", "t", 0755);
                   }),
            "usr: dir 755\nusr/local: dir 755\nusr/local/bin: dir 755\n"
            "usr/local/bin/tool: file 755 t\nusr/local/lib: dir 755\n"
            "usr/local/lib/empty: dir 700\n");
}

TEST_F(NativeSnapshotterTest, SymlinkRetargetedAndTypeChanges) {
  fs::path l0 = Lower();
  fs::create_symlink("a", l0 / "link");
  fs::create_symlink("a", l0 / "same");
  Write(l0 / "was-file", "x");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     fs::remove(root / "link");
                     fs::create_symlink("b", root / "link");
                     fs::remove(root / "was-file");
                     fs::create_symlink("/etc", root / "was-file");
                   }),
            "link: link -> b\nwas-file: link -> /etc\n");
}

TEST_F(NativeSnapshotterTest, DeletingWhatALowerAlreadyWhitedOutIsNoChange) {
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "gone", "g");
  Whiteout(l1 / "gone");
  EXPECT_EQ(DiffOf({l1, l0}, [](const fs::path& root) { fs::remove(root / "gone"); }), "");
}

TEST_F(NativeSnapshotterTest, HardLinksMadeByTheStepAreKept) {
  fs::path l0 = Lower();
  Mkdir(l0 / "bin");
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     Write(root / "bin/busybox", "bb", 0755);
                     fs::create_hard_link(root / "bin/busybox", root / "bin/sh");
                   }),
            "bin: dir 755\nbin/busybox: file 755 bb\nbin/sh: file 755 bb\n");
  EXPECT_EQ(Lstat(last_upper_ / "bin/busybox").st_ino, Lstat(last_upper_ / "bin/sh").st_ino);
}

TEST_F(NativeSnapshotterTest, ChangeBelowAnOpaqueLowerDirComparesWithTheVisibleLayer) {
  fs::path l0 = Lower(), l1 = Lower();
  Write(l0 / "d/hidden", "h");
  Write(l1 / "d/shown", "s");
  MarkOpaque(l1 / "d", IsRoot());
  // Deleting the visible file whites it out; the hidden one is not listed.
  EXPECT_EQ(DiffOf({l1, l0}, [](const fs::path& root) { fs::remove(root / "d/shown"); }),
            "d: dir 755\nd/shown: wh\n");
}

TEST_F(NativeSnapshotterTest, FinishTwiceIsAnError) {
  ASSERT_OK_AND_ASSIGN(auto a, snap_.Prepare({}, scratch_));
  ASSERT_OK(a->Finish());
  auto again = a->Finish();
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(NativeSnapshotterTest, MissingLowerIsNotFoundAndLeavesNothing) {
  auto v = snap_.View({tmp_.path() / "nope"}, scratch_);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), ErrorCode::kNotFound);
  auto a = snap_.Prepare({tmp_.path() / "nope"}, scratch_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(Names(scratch_), IsEmpty());
}

TEST_F(NativeSnapshotterTest, DevicesNeedRoot) {
  fs::path l0 = Lower();
  if (!IsRoot()) {
    // A lower cannot even hold one without root; the snapshotter's own
    // refusal is checked through a copy of a device the step cannot make.
    EXPECT_NE(::mknod((l0 / "null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
    EXPECT_EQ(errno, EPERM);
    return;
  }
  ASSERT_EQ(::mknod((l0 / "null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
  ASSERT_OK_AND_ASSIGN(auto v, snap_.View({l0}, scratch_));
  struct stat st = Lstat(v->root() / "null");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, ::makedev(1, 3));
  EXPECT_EQ(DiffOf({l0}, [](const fs::path&) {}), "");
}

TEST_F(NativeSnapshotterTest, ReadOnlyDirectoriesAreCopiedAndDiffed) {
  fs::path l0 = Lower();
  Write(l0 / "ro/f", "f", 0444);
  ASSERT_EQ(::chmod((l0 / "ro").c_str(), 0555), 0);
  EXPECT_EQ(DiffOf({l0},
                   [](const fs::path& root) {
                     ASSERT_EQ(::chmod((root / "ro").c_str(), 0755), 0);
                     Write(root / "ro/g", "g");
                     ASSERT_EQ(::chmod((root / "ro").c_str(), 0555), 0);
                   }),
            "ro: dir 555\nro/g: file 644 g\n");
  ASSERT_EQ(::chmod((l0 / "ro").c_str(), 0755), 0);  // so the temp dir can go
}

}  // namespace
}  // namespace strata::builder
