/* relay_watch.c: the watcher of an uncontained orch (`orch-relay --watch`, started by
 * core.watch in watch.c). Without a PID namespace, PR_SET_PDEATHSIG reaches only orch's direct
 * children: a SIGKILL of orch would leave their process groups and cgroups running. The
 * watcher, a process outside orch, holds what orch tells it over a pipe (its stdin) and kills
 * all of it when the pipe hits EOF, that is when orch has exited, however. libc only.
 *
 * The messages, one a line: `+PGID` a process group orch created, `-PGID` that group is gone
 * (its leader reaped and the rest SIGKILLed: its number may be reused from now on),
 * `c2 DIR` / `c1 DIR` orch's cgroup v2 / v1 (pids) directory, whose sub-cgroups hold the
 * entries' processes, `t NAME=PREFIX` the environment entry every process orch starts carries
 * without a cgroup (orch.track's ORCH_INVOCATION_ID=orch-PID.N): a process that left its group
 * but kept the tag is found by a scan of /proc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

#define MAX_PID     4194304 /* PID_MAX_LIMIT on 64-bit Linux: pid_max can never exceed it */
#define MAX_CGROUPS 8

static uint64_t *groups; /* bitmap of the live process groups, MAX_PID bits (calloc'd) */
static char *cgroups[MAX_CGROUPS];
static int cgroup_v1[MAX_CGROUPS];
static int ncgroups;
static char *tag; /* "ORCH_INVOCATION_ID=orch-PID." or NULL */

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    return;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  (void)!write(fd, text, strlen(text));
  close(fd);
}

/* SIGKILL every process listed in DIR/cgroup.procs and in its sub-cgroups (cgroup v1, or a
 * cgroup v2 without cgroup.kill); v1 first sets pids.max to 0 so nothing new can fork.
 * Returns how many were signalled (recursion bounded: depth < 8). */
/* NOLINTNEXTLINE(misc-no-recursion) */
static long kill_procs(const char *dir, int v1, int depth)
{
  if (v1)
    write_file(dir, "pids.max", "0");
  long n = 0;
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) < (int)sizeof path) {
    FILE *f = fopen(path, "re");
    if (f != NULL) {
      char line[32];
      while (fgets(line, sizeof line, f) != NULL) {
        char *end;
        long pid = strtol(line, &end, 10);
        if (end != line && pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
          n++;
      }
      fclose(f);
    }
  }
  DIR *d = depth < 8 ? opendir(dir) : NULL;
  if (d == NULL)
    return n;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
      n += kill_procs(path, v1, depth + 1);
  }
  closedir(d);
  return n;
}

/* Whether the environment of `pid` has an entry that starts with `tag`. */
static int has_tag(const char *pid)
{
  static char *buf;
  static size_t cap;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "/proc/%s/environ", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  size_t len = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *nbuf = ncap <= (8u << 20) ? realloc(buf, ncap) : NULL;
      if (nbuf == NULL)
        break;
      buf = nbuf;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  size_t ntag = strlen(tag);
  for (size_t at = 0; at < len;) {
    char *end = memchr(buf + at, '\0', len - at);
    size_t n = end ? (size_t)(end - (buf + at)) : len - at;
    if (n >= ntag && memcmp(buf + at, tag, ntag) == 0)
      return 1;
    at += n + 1;
  }
  return 0;
}

/* SIGKILL every process that carries the tag; returns how many. */
static long kill_tagged(void)
{
  DIR *d = opendir("/proc");
  if (d == NULL)
    return 0;
  long n = 0;
  pid_t self = getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self || !has_tag(e->d_name))
      continue;
    if (kill((pid_t)pid, SIGKILL) == 0)
      n++;
  }
  closedir(d);
  return n;
}

void orch_watch_kill_all(void)
{
  for (long w = 0; groups != NULL && w < MAX_PID / 64; w++)
    for (int b = 0; groups[w] != 0 && b < 64; b++)
      if (groups[w] & ((uint64_t)1 << b))
        kill(-(pid_t)(w * 64 + b), SIGKILL);
  for (int i = 0; i < ncgroups; i++) {
    if (!cgroup_v1[i]) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/cgroup.kill", cgroups[i]);
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd >= 0 && write(fd, "1", 1) == 1) { /* the whole subtree, forks in flight too */
        close(fd);
        continue;
      }
      if (fd >= 0)
        close(fd);
    }
    /* No cgroup.kill (cgroup v1, kernels before 5.14): a few rounds of reading and killing. */
    for (int round = 0; round < 10 && kill_procs(cgroups[i], cgroup_v1[i], 0) > 0; round++)
      usleep(10000);
  }
  /* A process that forks while the scan runs may be missed once: scan until none is found. */
  for (int round = 0; tag != NULL && round < 10 && kill_tagged() > 0; round++)
    ;
}

void orch_watch_note(const char *line)
{
  if (groups == NULL)
    groups = calloc(MAX_PID / 64, sizeof *groups); /* 512 KiB of address space, touched sparsely */
  if (line[0] == '+' || line[0] == '-') {
    char *end;
    long pgid = strtol(line + 1, &end, 10);
    if (*end != '\0' || pgid <= 1 || pgid >= MAX_PID || groups == NULL)
      return;
    uint64_t bit = (uint64_t)1 << (pgid % 64);
    if (line[0] == '+')
      groups[pgid / 64] |= bit;
    else
      groups[pgid / 64] &= ~bit;
  } else if (line[0] == 'c' && (line[1] == '1' || line[1] == '2') && line[2] == ' ' &&
             line[3] == '/' && ncgroups < MAX_CGROUPS) {
    char *dir = strdup(line + 3);
    if (dir != NULL) {
      cgroup_v1[ncgroups] = line[1] == '1';
      cgroups[ncgroups++] = dir;
    }
  } else if (line[0] == 't' && line[1] == ' ' && strchr(line + 2, '=') != NULL && tag == NULL) {
    tag = strdup(line + 2);
  }
}

_Noreturn void orch_watch_loop(int fd)
{
  /* Job control and hang-ups are for orch, not for its watcher (in a session of its own
   * anyway); a deliberate SIGTERM or SIGKILL still ends it. */
  static const int IGNORED[] = { SIGHUP,  SIGINT,  SIGQUIT, SIGTSTP, SIGTTIN,
                                 SIGTTOU, SIGPIPE, SIGUSR1, SIGUSR2 };
  for (size_t i = 0; i < sizeof IGNORED / sizeof IGNORED[0]; i++)
    signal(IGNORED[i], SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char buf[8192];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* EOF: orch is gone (or a read error: act as if it were) */
    len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
      if (buf[i] != '\n')
        continue;
      buf[i] = '\0';
      orch_watch_note(buf + start);
      start = i + 1;
    }
    if (start == 0 && len == sizeof buf - 1)
      len = 0; /* a line longer than the buffer: not one of ours, drop it */
    memmove(buf, buf + start, len - start);
    len -= start;
  }
  orch_watch_kill_all();
  _exit(0);
}
