/* Sandbox probe: run inside a RUN step (and under `podman run`) by
 * tests/builder/sandbox_probe_integration_test.cc. Prints one
 * "probe KEY: VALUE" line per property of the sandbox it finds itself in.
 * Usage: probe PORT  (a TCP port the test listens on at the host's 127.0.0.1)
 * Built with `gcc -static`; needs nothing from the image. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char* ErrName(int e) {
  switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    default: return strerror(e);
  }
}

static void StatusField(const char* field) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      char* v = line + n + 1;
      while (*v == ' ' || *v == '\t') ++v;
      v[strcspn(v, "\n")] = 0;
      printf("probe %s: %s\n", field, v);
    }
  }
  if (f) fclose(f);
}

static void Socket(const char* what, int domain, int type, int proto) {
  int fd = socket(domain, type, proto);
  printf("probe socket %s: %s\n", what, ErrName(fd >= 0 ? 0 : errno));
  if (fd >= 0) close(fd);
}

static void Connect(const char* addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, addr, &sa.sin_addr);
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc = connect(fd, (struct sockaddr*)&sa, sizeof sa);
  int e = rc == 0 ? 0 : (errno == EINPROGRESS ? ETIMEDOUT : errno);
  printf("probe connect %s: %s\n", addr, rc == 0 ? "connected" : ErrName(e));
  close(fd);
}

/* Masked: /proc files bound to /dev/null read as empty; dirs are an empty
 * read-only tmpfs. */
static void Masked(const char* path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    printf("probe masked %s: %s\n", path, ErrName(errno));
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* d = opendir(path);
    int n = 0;
    struct dirent* e;
    while (d && (e = readdir(d))) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
    }
    if (d) closedir(d);
    printf("probe masked %s: %s\n", path, n == 0 ? "empty" : "visible");
    return;
  }
  int fd = open(path, O_RDONLY);
  char c;
  ssize_t r = fd >= 0 ? read(fd, &c, 1) : -1;
  printf("probe masked %s: %s\n", path,
         fd >= 0 && r == 0 && S_ISCHR(st.st_mode) ? "empty" : (r > 0 ? "visible" : ErrName(errno)));
  if (fd >= 0) close(fd);
}

static void ReadOnly(const char* path) {
  struct statvfs sv;
  if (statvfs(path, &sv) != 0) {
    printf("probe readonly %s: %s\n", path, ErrName(errno));
    return;
  }
  printf("probe readonly %s: %s\n", path, (sv.f_flag & ST_RDONLY) ? "ro" : "rw");
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  StatusField("Seccomp");
  StatusField("NoNewPrivs");
  StatusField("CapEff");
  StatusField("CapBnd");
  StatusField("CapPrm");

  /* File descriptors open in this process, without the one listing them. */
  DIR* d = opendir("/proc/self/fd");
  char fds[256] = "";
  struct dirent* e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    strncat(fds, e->d_name, sizeof fds - strlen(fds) - 2);
    strcat(fds, " ");
  }
  if (d) closedir(d);
  printf("probe fds: %s\n", fds);

  Socket("raw", AF_INET, SOCK_RAW, IPPROTO_ICMP);
  Socket("packet", AF_PACKET, SOCK_RAW, 0);
  Socket("tcp", AF_INET, SOCK_STREAM, 0);
  Socket("vsock", 40, SOCK_STREAM, 0);
  /* Before the unshare calls below: they may move us to a new namespace. */
  if (port > 0) Connect("127.0.0.1", port);
  if (port > 0) Connect("10.0.2.2", port);
  printf("probe unshare user: %s\n", ErrName(unshare(CLONE_NEWUSER) == 0 ? 0 : errno));
  printf("probe unshare net: %s\n", ErrName(unshare(CLONE_NEWNET) == 0 ? 0 : errno));
  printf("probe mount: %s\n",
         ErrName(mount("none", "/mnt", "tmpfs", 0, NULL) == 0 ? 0 : errno));

  Masked("/proc/kcore");
  Masked("/proc/keys");
  Masked("/proc/timer_list");
  Masked("/sys/firmware");
  ReadOnly("/proc/sys");
  ReadOnly("/proc/sysrq-trigger");
  ReadOnly("/proc/irq");
  ReadOnly("/proc/bus");
  ReadOnly("/sys");
  return 0;
}
