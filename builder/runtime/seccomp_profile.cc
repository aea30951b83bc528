#include "builder/runtime/seccomp_profile.h"
#include "oci/descriptor.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace strata::builder {
namespace {

using nlohmann::json;

// One rule of the table. Names are one whitespace-separated string so the
// table reads like the profile it mirrors.
struct Arg {
  unsigned index;
  uint64_t value;
  std::string_view op;
};

struct Rule {
  std::string_view names;
  std::string_view action = "SCMP_ACT_ALLOW";
  std::optional<int> errno_ret = std::nullopt;
  std::vector<Arg> args = {};
  // The rule applies only if the architecture is one of these (empty = any),
  // every listed capability is in the bounding set, and the kernel is at
  // least min_kernel.
  std::vector<std::string_view> include_arches = {};
  std::vector<std::string_view> include_caps = {};
  KernelVersion min_kernel = {};
  // ...and is dropped on these architectures or when any of these
  // capabilities is held.
  std::vector<std::string_view> exclude_arches = {};
  std::vector<std::string_view> exclude_caps = {};
};

// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
// | CLONE_NEWPID | CLONE_NEWNET: clone(2) may not create namespaces without
// CAP_SYS_ADMIN.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;
constexpr uint64_t kAfVsock = 40;
constexpr int kEnosys = 38;

const std::vector<Rule>& Table() {
  static const std::vector<Rule> kRules = {
      {.names = R"(
        accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
        clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
        clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
        copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
        epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
        exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
        fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
        flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
        ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents
        getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
        getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
        getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
        getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
        inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
        io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
        io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
        landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
        listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
        membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
        mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
        mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
        msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
        _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
        pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
        process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
        readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
        remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
        rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
        sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
        sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
        sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
        semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
        setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
        setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
        setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
        setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
        signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
        statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
        timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
        timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
        utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
      )"},
      {.names = "process_vm_readv process_vm_writev ptrace", .min_kernel = {4, 8}},
      {.names = "socket", .args = {{0, kAfVsock, "SCMP_CMP_NE"}}},
      // The personas docker allows: PER_LINUX, PER_LINUX32, UNAME26,
      // UNAME26|PER_LINUX32, and the 0xffffffff query.
      {.names = "personality", .args = {{0, 0x0, "SCMP_CMP_EQ"}}},
      {.names = "personality", .args = {{0, 0x8, "SCMP_CMP_EQ"}}},
      {.names = "personality", .args = {{0, 0x20000, "SCMP_CMP_EQ"}}},
      {.names = "personality", .args = {{0, 0x20008, "SCMP_CMP_EQ"}}},
      {.names = "personality", .args = {{0, 0xffffffff, "SCMP_CMP_EQ"}}},
      {.names = "sync_file_range2 swapcontext", .include_arches = {"ppc64le"}},
      {.names = "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush "
                "set_tls",
       .include_arches = {"arm", "arm64"}},
      {.names = "arch_prctl", .include_arches = {"amd64", "x32"}},
      {.names = "modify_ldt", .include_arches = {"amd64", "x32", "x86"}},
      {.names = "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
       .include_arches = {"s390", "s390x"}},
      {.names = "riscv_flush_icache", .include_arches = {"riscv64"}},
      {.names = "open_by_handle_at", .include_caps = {"CAP_DAC_READ_SEARCH"}},
      {.names = "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
                "mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
                "setdomainname sethostname setns syslog umount umount2 unshare",
       .include_caps = {"CAP_SYS_ADMIN"}},
      {.names = "clone",
       .args = {{0, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ"}},
       .exclude_arches = {"s390", "s390x"},
       .exclude_caps = {"CAP_SYS_ADMIN"}},
      // s390 passes clone's flags as the second argument.
      {.names = "clone",
       .args = {{1, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ"}},
       .include_arches = {"s390", "s390x"},
       .exclude_caps = {"CAP_SYS_ADMIN"}},
      // ENOSYS, not EPERM, so that glibc falls back to clone(2).
      {.names = "clone3",
       .action = "SCMP_ACT_ERRNO",
       .errno_ret = kEnosys,
       .exclude_caps = {"CAP_SYS_ADMIN"}},
      {.names = "reboot", .include_caps = {"CAP_SYS_BOOT"}},
      {.names = "chroot", .include_caps = {"CAP_SYS_CHROOT"}},
      {.names = "delete_module init_module finit_module", .include_caps = {"CAP_SYS_MODULE"}},
      {.names = "acct", .include_caps = {"CAP_SYS_PACCT"}},
      {.names = "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
       .include_caps = {"CAP_SYS_PTRACE"}},
      {.names = "iopl ioperm", .include_caps = {"CAP_SYS_RAWIO"}},
      {.names = "settimeofday stime clock_settime clock_settime64",
       .include_caps = {"CAP_SYS_TIME"}},
      {.names = "vhangup", .include_caps = {"CAP_SYS_TTY_CONFIG"}},
      {.names = "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
       .include_caps = {"CAP_SYS_NICE"}},
      {.names = "syslog", .include_caps = {"CAP_SYSLOG"}},
      {.names = "bpf", .include_caps = {"CAP_BPF"}},
      {.names = "perf_event_open", .include_caps = {"CAP_PERFMON"}},
  };
  return kRules;
}

std::vector<std::string> SplitNames(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename C, typename T>
bool Contains(const C& c, const T& v) {
  return std::find(c.begin(), c.end(), v) != c.end();
}

// The libseccomp architectures of a filter for `arch`: native first, then the
// compat ABIs a process there can also enter the kernel through.
std::vector<std::string> Architectures(std::string_view arch) {
  if (arch == "amd64") return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  if (arch == "arm64") return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
  if (arch == "s390x") return {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
  if (arch == "riscv64") return {"SCMP_ARCH_RISCV64"};
  if (arch == "ppc64le") return {"SCMP_ARCH_PPC64LE"};
  if (arch == "arm") return {"SCMP_ARCH_ARM"};
  if (arch == "386") return {"SCMP_ARCH_X86"};
  return {};  // the runtime's native architecture only
}

}  // namespace

std::string HostSeccompArch() { return oci::Platform::Host().architecture; }

KernelVersion HostKernelVersion() {
  struct utsname u;
  KernelVersion v;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &v.major, &v.minor) != 2) return {};
  return v;
}

json DefaultSeccompProfile(const std::vector<std::string>& capabilities, std::string_view arch,
                           KernelVersion kernel) {
  json syscalls = json::array();
  for (const Rule& r : Table()) {
    if (Contains(r.exclude_arches, arch)) continue;
    if (std::any_of(r.exclude_caps.begin(), r.exclude_caps.end(),
                    [&](std::string_view c) { return Contains(capabilities, c); })) {
      continue;
    }
    if (!r.include_arches.empty() && !Contains(r.include_arches, arch)) continue;
    if (!std::all_of(r.include_caps.begin(), r.include_caps.end(),
                     [&](std::string_view c) { return Contains(capabilities, c); })) {
      continue;
    }
    if (kernel < r.min_kernel) continue;
    json rule{{"names", SplitNames(r.names)}, {"action", r.action}};
    if (r.errno_ret) rule["errnoRet"] = *r.errno_ret;
    if (!r.args.empty()) {
      json args = json::array();
      for (const Arg& a : r.args) {
        args.push_back({{"index", a.index}, {"value", a.value}, {"valueTwo", 0}, {"op", a.op}});
      }
      rule["args"] = std::move(args);
    }
    syscalls.push_back(std::move(rule));
  }
  json profile{{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", 1}};
  if (auto archs = Architectures(arch); !archs.empty()) profile["architectures"] = archs;
  profile["syscalls"] = std::move(syscalls);
  return profile;
}

}  // namespace strata::builder
