/* spec/c/test_procfs.c: the procfs/cgroupfs parsers of process tracking (src/procfs.c), on
 * inline fixtures and on this process's own /proc files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "check.h"
#include "proc_net.h"
#include "procfs.h"

static int stat_of(const char *text, orch_stat *st)
{
  return orch_procfs_stat(text, strlen(text), st);
}

static void stat_plain(void)
{
  orch_stat st;
  CHECK_EQ(stat_of("1234 (sleep) S 1200 1234 1200 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 "
                   "987654 2449408 131 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 "
                   "0 0\n",
                   &st),
           0);
  CHECK_EQ(st.pid, 1234);
  CHECK_EQ(st.state, 'S');
  CHECK_EQ(st.ppid, 1200);
  CHECK_EQ(st.pgrp, 1234);
  CHECK_EQ(st.start, 987654);
}

static void stat_comm_with_parens_and_spaces(void)
{
  orch_stat st;
  CHECK_EQ(stat_of("77 (a) b (c d)) Z 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0", &st), 0);
  CHECK_EQ(st.pid, 77);
  CHECK_EQ(st.state, 'Z');
  CHECK_EQ(st.ppid, 1);
  CHECK_EQ(st.start, 42);
}

static void stat_malformed(void)
{
  orch_stat st;
  CHECK_EQ(stat_of("", &st), -1);
  CHECK_EQ(stat_of("12", &st), -1);
  CHECK_EQ(stat_of("12 (x", &st), -1);
  CHECK_EQ(stat_of("12 (x) S", &st), -1);
  CHECK_EQ(stat_of("12 (x) S 1 2 3", &st), -1); /* no start time */
  CHECK_EQ(stat_of("x (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &st), -1);
  CHECK_EQ(stat_of("99999999999999999999 (x) S 1 1", &st), -1); /* overflow */
  /* a length that cuts the text short is respected */
  const char *full = "5 (x) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0";
  CHECK_EQ(orch_procfs_stat(full, strlen(full), &st), 0);
  CHECK_EQ(st.start, 777);
  CHECK_EQ(orch_procfs_stat(full, 20, &st), -1);
}

static void stat_of_self(void)
{
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY);
  CHECK(fd >= 0);
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  CHECK(n > 0);
  orch_stat st;
  CHECK_EQ(orch_procfs_stat(buf, (size_t)n, &st), 0);
  CHECK_EQ(st.pid, getpid());
  CHECK_EQ(st.ppid, getppid());
  CHECK_EQ(st.pgrp, getpgrp());
  CHECK_EQ(st.state, 'R');
  CHECK(st.start > 0);
}

static const char CGROUP[] = "12:pids:/user.slice/u\n"
                             "11:cpu,cpuacct:/a\n"
                             "1:name=systemd:/init.scope\n"
                             "0::/system.slice/orch.service\n";

static void cgroup_lines(void)
{
  char out[64];
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), NULL, out, sizeof out), 0);
  CHECK_STR(out, "/system.slice/orch.service");
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), "pids", out, sizeof out), 0);
  CHECK_STR(out, "/user.slice/u");
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), "cpuacct", out, sizeof out), 0);
  CHECK_STR(out, "/a");
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), "name=systemd", out, sizeof out), 0);
  CHECK_STR(out, "/init.scope");
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), "cpuset", out, sizeof out), -1);
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), "cpu,", out, sizeof out), -1);
  CHECK_EQ(orch_procfs_cgroup_path(CGROUP, strlen(CGROUP), NULL, out, 8), -1); /* too long */
  CHECK_EQ(orch_procfs_cgroup_path("0::/\n", 5, "", out, sizeof out), 0);
  CHECK_STR(out, "/");
  CHECK_EQ(orch_procfs_cgroup_path("garbage", 7, NULL, out, sizeof out), -1);
  CHECK_EQ(orch_procfs_cgroup_path("", 0, NULL, out, sizeof out), -1);
}

static const char MOUNTINFO[] =
    "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    "30 25 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    "35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct\n"
    "39 30 0:35 /docker/x /sys/fs/cgroup/my\\040pids rw shared:18 - cgroup cgroup rw,pids\n";

static void mountinfo_lines(void)
{
  char root[64], point[64];
  CHECK_EQ(orch_procfs_mount(MOUNTINFO, strlen(MOUNTINFO), "cgroup2", NULL, root, sizeof root,
                             point, sizeof point),
           0);
  CHECK_STR(root, "/");
  CHECK_STR(point, "/sys/fs/cgroup/unified");
  CHECK_EQ(orch_procfs_mount(MOUNTINFO, strlen(MOUNTINFO), "cgroup", "pids", root, sizeof root,
                             point, sizeof point),
           0);
  CHECK_STR(root, "/docker/x");
  CHECK_STR(point, "/sys/fs/cgroup/my pids");
  CHECK_EQ(orch_procfs_mount(MOUNTINFO, strlen(MOUNTINFO), "cgroup", "cpuacct", root, sizeof root,
                             point, sizeof point),
           0);
  CHECK_STR(point, "/sys/fs/cgroup/cpu,cpuacct");
  CHECK_EQ(orch_procfs_mount(MOUNTINFO, strlen(MOUNTINFO), "cgroup", "memory", root, sizeof root,
                             point, sizeof point),
           -1);
  CHECK_EQ(
      orch_procfs_mount(MOUNTINFO, strlen(MOUNTINFO), "cgroup2", NULL, root, sizeof root, point, 8),
      -1);
  /* no "-" separator, truncated lines */
  const char *bad = "31 30 0:27 / /x rw shared:10 cgroup2 cgroup2 rw\n31 30 0:27 /\n";
  CHECK_EQ(
      orch_procfs_mount(bad, strlen(bad), "cgroup2", NULL, root, sizeof root, point, sizeof point),
      -1);
}

static void environ_entries(void)
{
  static const char ENV[] = "PATH=/bin\0ORCH_INVOCATION_ID=orch-1.22\0HOME=/root";
  size_t len = sizeof ENV - 1;
  const char *tag = "ORCH_INVOCATION_ID=orch-1.22";
  CHECK_EQ(orch_procfs_environ_has(ENV, len, tag, strlen(tag)), 1);
  CHECK_EQ(orch_procfs_environ_has(ENV, len, "HOME=/root", 10), 1); /* last, no NUL */
  CHECK_EQ(orch_procfs_environ_has(ENV, len, "ORCH_INVOCATION_ID=orch-1.2", 27), 0);
  CHECK_EQ(orch_procfs_environ_has(ENV, len, "PATH=/bin\0ORCH", 14), 0);
  CHECK_EQ(orch_procfs_environ_has(ENV, len, "", 0), 0);
  CHECK_EQ(orch_procfs_environ_has("", 0, tag, strlen(tag)), 0);
}

static void pid_lists(void)
{
  long pids[3];
  const char *text = "12\n345\nx\n-4\n0\n6789\n99999999999\n10";
  CHECK_EQ(orch_procfs_pids(text, strlen(text), pids, 3), 4);
  CHECK_EQ(pids[0], 12);
  CHECK_EQ(pids[1], 345);
  CHECK_EQ(pids[2], 6789);
  CHECK_EQ(orch_procfs_pids(text, strlen(text), NULL, 0), 4);
  CHECK_EQ(orch_procfs_pids("", 0, pids, 3), 0);
  CHECK_EQ(orch_procfs_pids("\n\n", 2, pids, 3), 0);
}

/* A sock_diag reply: one socket on `port`, then a message of `tail_len` bytes (not a multiple
 * of 4: NLMSG_NEXT would wrap around past it), in a buffer of exactly the datagram's size. */
static void sock_diag_reply(void)
{
  struct {
    struct nlmsghdr h;
    struct inet_diag_msg d;
  } sock;
  memset(&sock, 0, sizeof sock);
  sock.h.nlmsg_len = sizeof sock;
  sock.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  sock.d.id.idiag_sport = htons(8080);
  struct nlmsghdr tail = { .nlmsg_len = sizeof(struct nlmsghdr) + 3, .nlmsg_type = 99 };
  size_t len = sizeof sock + sizeof tail + 3;
  char *buf = calloc(1, len);
  memcpy(buf, &sock, sizeof sock);
  memcpy(buf + sizeof sock, &tail, sizeof tail);
  int found = 0;
  CHECK_EQ(orch_sock_diag_scan(buf, len, 8081, &found), 0);
  CHECK_EQ(found, 0);
  CHECK_EQ(orch_sock_diag_scan(buf, len, 8080, &found), 0); /* more to read */
  CHECK_EQ(found, 1);
  /* a length claiming more than there is, and one too short for a socket */
  ((struct nlmsghdr *)buf)->nlmsg_len = (unsigned)len + 100;
  found = 0;
  CHECK_EQ(orch_sock_diag_scan(buf, len, 8080, &found), 0);
  CHECK_EQ(found, 0);
  ((struct nlmsghdr *)buf)->nlmsg_len = sizeof(struct nlmsghdr) + 4;
  CHECK_EQ(orch_sock_diag_scan(buf, len, 8080, &found), 0);
  CHECK_EQ(found, 0);
  free(buf);
  /* done, and an error reply */
  struct nlmsghdr done = { .nlmsg_len = sizeof done, .nlmsg_type = NLMSG_DONE };
  CHECK_EQ(orch_sock_diag_scan(&done, sizeof done, 1, &found), 1);
  struct {
    struct nlmsghdr h;
    struct nlmsgerr e;
  } err;
  memset(&err, 0, sizeof err);
  err.h.nlmsg_len = sizeof err;
  err.h.nlmsg_type = NLMSG_ERROR;
  err.e.error = -EACCES;
  CHECK_EQ(orch_sock_diag_scan(&err, sizeof err, 1, &found), UV_EACCES);
  err.e.error = -ENOENT;
  CHECK_EQ(orch_sock_diag_scan(&err, sizeof err, 1, &found), 1);
  err.h.nlmsg_len = sizeof(struct nlmsghdr) + 2;
  CHECK_EQ(orch_sock_diag_scan(&err, sizeof err, 1, &found), UV_EPROTO);
}

int main(void)
{
  static const check_case cases[] = {
    { "stat: plain", stat_plain },
    { "stat: comm with parens and spaces", stat_comm_with_parens_and_spaces },
    { "stat: malformed", stat_malformed },
    { "stat: /proc/self/stat", stat_of_self },
    { "cgroup: v2 and v1 lines", cgroup_lines },
    { "mountinfo: cgroup mounts", mountinfo_lines },
    { "environ: exact entries", environ_entries },
    { "cgroup.procs: pid lists", pid_lists },
    { "sock_diag: replies, short and lying messages", sock_diag_reply },
  };
  return check_run(cases, (int)(sizeof cases / sizeof cases[0]));
}
