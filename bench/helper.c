/* helper.c: measurement helpers for bench/run (built by bench/run into build/bench/helper).
 *
 *   helper watch PREFIX
 *       Stream process events for every process whose argv has an element starting with
 *       PREFIX. Uses the kernel proc connector (netlink, needs CAP_NET_ADMIN) so that no
 *       /proc polling competes with the supervisor under test; falls back to a 1 ms /proc
 *       scan when the connector is unavailable. Output lines (CLOCK_MONOTONIC ns):
 *         armed <ns> <count> <method>     once, after the initial scan
 *         + <ns> <pid> <count>            a matching process exec'd (count after it)
 *         - <ns> <pid> <count>            a matching process exited
 *         r <ns> <count>                  a resync after lost events (full rescan)
 *       It exits when stdin reaches EOF (the harness closes it or dies). With the connector,
 *       times are the kernel's own event timestamps, so the watcher's scheduling latency
 *       does not enter the measurement.
 *   helper scan PREFIX
 *       Print the pids of matching processes, one a line, then exit.
 *   A leading '=' on PREFIX is dropped, so that the helper's own argv (seen by other watchers
 *   and scans) does not match.
 *   helper listen PORT DELAY_MS NOTIFY_FD [MARKER...]
 *       Sleep DELAY_MS, then listen on 127.0.0.1:PORT (TCP), write "\n" to NOTIFY_FD when it
 *       is >= 0 (s6 notification-fd, or the floor's pipe), and then sleep until killed. The
 *       MARKER arguments are ignored; they make the process findable by `watch`.
 *   helper http PORT [MARKER...]
 *       Listen on 127.0.0.1:PORT and answer every request with "200 OK" (one connection at a
 *       time, Connection: close): the server of the HTTP-check scenario.
 *   helper crash FILE [MARKER...]
 *       Append "<CLOCK_MONOTONIC ns>\n" to FILE and exit 1 at once (the crash-loop daemon).
 *   helper waitport PORT [MARKER...]
 *       Poll 127.0.0.1:PORT with connect() every 5 ms until it accepts, then exit 0. Used as
 *       the dependency gate of peers that have no readiness mechanism (supervisord).
 *   helper chatty GOFILE BYTES LINELEN BLOCK [exit] [MARKER...]
 *       The chatty daemon of the throughput scenario: wait (1 ms polls) until GOFILE exists,
 *       then write BYTES bytes of LINELEN-byte lines (newline included) to stdout in writes of
 *       BLOCK bytes (4096: what stdio's full buffering does on a pipe; LINELEN: a line-buffered
 *       logger), then sleep until killed (an exit would be restarted and write again), or exit
 *       with `exit` (the floor's, whose reader ends at EOF).
 *   helper count LINES
 *       Read stdin (128 KiB reads, as cat does) until LINES newlines have come, print
 *       "<CLOCK_MONOTONIC ns>\n" of that moment on stdout and exit 0 (1 at EOF before). The
 *       reader of orch's stdout in the throughput scenario: as cheap as the floor's cat.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *prefix;
static size_t prefix_len;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 1 if /proc/<pid>/cmdline has an argv element starting with the prefix. */
static int matches(int pid) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  for (char *p = buf; p < buf + n; p += strlen(p) + 1)
    if (strncmp(p, prefix, prefix_len) == 0) return 1;
  return 0;
}

/* The set of matching pids: a small open-addressing hash set. */
#define SET_CAP (1 << 17)
static int set_keys[SET_CAP]; /* 0 empty, -1 tombstone */
static int set_count;

static int set_find(int pid, int insert) {
  unsigned h = (unsigned)pid * 2654435761u & (SET_CAP - 1);
  int tomb = -1;
  for (;;) {
    if (set_keys[h] == pid) return (int)h;
    if (set_keys[h] == 0) {
      if (!insert) return -1;
      if (tomb >= 0) h = (unsigned)tomb;
      set_keys[h] = pid;
      set_count++;
      return (int)h;
    }
    if (set_keys[h] == -1 && tomb < 0) tomb = (int)h;
    h = (h + 1) & (SET_CAP - 1);
  }
}
static int set_has(int pid) { return set_find(pid, 0) >= 0; }
static void set_add(int pid) { set_find(pid, 1); }
static int set_del(int pid) {
  int h = set_find(pid, 0);
  if (h < 0) return 0;
  set_keys[h] = -1;
  set_count--;
  return 1;
}
static void set_clear(void) {
  memset(set_keys, 0, sizeof set_keys);
  set_count = 0;
}

static int is_pid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Rebuild the set from /proc; print '+'/'-' for differences when `report`. */
static void rescan(int report) {
  static int fresh[SET_CAP];
  int nfresh = 0;
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  int self = getpid();
  while ((e = readdir(d))) {
    if (!is_pid_name(e->d_name)) continue;
    int pid = atoi(e->d_name);
    if (pid == self) continue;
    if (matches(pid) && nfresh < SET_CAP / 2) fresh[nfresh++] = pid;
  }
  closedir(d);
  if (!report) {
    set_clear();
    for (int i = 0; i < nfresh; i++) set_add(fresh[i]);
    return;
  }
  long long t = now_ns();
  /* removals: in the set but not fresh */
  for (int h = 0; h < SET_CAP; h++) {
    int pid = set_keys[h];
    if (pid <= 0) continue;
    int found = 0;
    for (int i = 0; i < nfresh && !found; i++) found = fresh[i] == pid;
    if (!found) {
      set_keys[h] = -1;
      set_count--;
      printf("- %lld %d %d\n", t, pid, set_count);
    }
  }
  for (int i = 0; i < nfresh; i++)
    if (!set_has(fresh[i])) {
      set_add(fresh[i]);
      printf("+ %lld %d %d\n", t, fresh[i], set_count);
    }
}

static int proc_connector(void) {
  int s = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (s < 0) return -1;
  int sz = 64 << 20;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  struct __attribute__((aligned(NLMSG_ALIGNTO))) {
    struct nlmsghdr nl;
    struct __attribute__((__packed__)) {
      struct cn_msg cn;
      enum proc_cn_mcast_op op;
    } body;
  } m;
  memset(&m, 0, sizeof m);
  m.nl.nlmsg_len = sizeof m;
  m.nl.nlmsg_pid = 0;
  m.nl.nlmsg_type = NLMSG_DONE;
  m.body.cn.id.idx = CN_IDX_PROC;
  m.body.cn.id.val = CN_VAL_PROC;
  m.body.cn.len = sizeof(enum proc_cn_mcast_op);
  m.body.op = PROC_CN_MCAST_LISTEN;
  if (send(s, &m, sizeof m, 0) < 0) {
    close(s);
    return -1;
  }
  return s;
}

static int cmd_watch(void) {
  int s = proc_connector();
  rescan(0);
  printf("armed %lld %d %s\n", now_ns(), set_count, s >= 0 ? "proc_connector" : "proc_scan");
  fflush(stdout);
  struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = s, .events = POLLIN}};
  static char buf[1 << 16];
  for (;;) {
    int r = poll(p, s >= 0 ? 2 : 1, s >= 0 ? -1 : 1);
    if (r < 0 && errno != EINTR) return 1;
    if (p[0].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) return 0;
    }
    if (s < 0) {
      rescan(1);
      fflush(stdout);
      continue;
    }
    if (!(p[1].revents & POLLIN)) continue;
    for (;;) {
      ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == ENOBUFS) { /* events lost: resynchronise from /proc */
          rescan(1);
          printf("r %lld %d\n", now_ns(), set_count);
          continue;
        }
        break;
      }
      for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
           h = NLMSG_NEXT(h, n)) {
        struct cn_msg *c = NLMSG_DATA(h);
        struct proc_event *ev = (struct proc_event *)c->data;
        long long t = (long long)ev->timestamp_ns; /* kernel CLOCK_MONOTONIC at the event */
        if (ev->what == PROC_EVENT_EXEC) {
          int pid = ev->event_data.exec.process_tgid;
          int had = set_has(pid);
          if (matches(pid)) {
            if (!had) {
              set_add(pid);
              printf("+ %lld %d %d\n", t, pid, set_count);
            }
          } else if (had) { /* exec'd into something else */
            set_del(pid);
            printf("- %lld %d %d\n", t, pid, set_count);
          }
        } else if (ev->what == PROC_EVENT_EXIT) {
          if (ev->event_data.exit.process_pid != ev->event_data.exit.process_tgid) continue;
          int pid = ev->event_data.exit.process_tgid;
          if (set_del(pid)) printf("- %lld %d %d\n", t, pid, set_count);
        }
      }
    }
    fflush(stdout);
  }
}

static int cmd_scan(void) {
  DIR *d = opendir("/proc");
  if (!d) return 1;
  struct dirent *e;
  int self = getpid();
  while ((e = readdir(d))) {
    if (!is_pid_name(e->d_name)) continue;
    int pid = atoi(e->d_name);
    if (pid != self && matches(pid)) printf("%d\n", pid);
  }
  closedir(d);
  return 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* A TCP socket listening on 127.0.0.1:port, or -1 (said on stderr as `what`). */
static int listen_on(int port, const char *what) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) {
    perror(what);
    close(s);
    return -1;
  }
  return s;
}

static int cmd_listen(int port, long delay_ms, int notify_fd) {
  if (delay_ms > 0) sleep_ms(delay_ms);
  int s = listen_on(port, "helper listen");
  if (s < 0) return 1;
  if (notify_fd >= 0) {
    if (write(notify_fd, "\n", 1) < 0) {
    }
    close(notify_fd);
  }
  for (;;) { /* accept and drop, so that probes never fill the backlog */
    int c = accept(s, NULL, NULL);
    if (c >= 0) close(c);
    else if (errno != EINTR && errno != ECONNABORTED) pause();
  }
}

static int cmd_http(int port) {
  int s = listen_on(port, "helper http");
  if (s < 0) return 1;
  signal(SIGPIPE, SIG_IGN);
  static const char reply[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char buf[2048];
    size_t got = 0;
    while (got < sizeof buf - 1) { /* read the request head */
      ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
      if (n <= 0) break;
      got += (size_t)n;
      buf[got] = '\0';
      if (strstr(buf, "\r\n\r\n")) break;
    }
    if (write(c, reply, sizeof reply - 1) < 0) {
    }
    close(c);
  }
}

static int cmd_waitport(int port) {
  for (;;) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    close(s);
    if (r == 0) return 0;
    sleep_ms(5);
  }
}

static int cmd_chatty(const char *go, long long bytes, int linelen, int block, int quit) {
  if (linelen < 2) linelen = 2;
  if (block < linelen) block = linelen;
  block -= block % linelen; /* whole lines per write */
  char *buf = malloc((size_t)block);
  if (buf == NULL) return 1;
  for (int i = 0; i < block; i++)
    buf[i] = (i % linelen == linelen - 1) ? '\n' : (char)('a' + (i % linelen) % 26);
  while (access(go, F_OK) != 0) sleep_ms(1);
  while (bytes > 0) {
    size_t n = bytes < block ? (size_t)bytes : (size_t)block;
    ssize_t w = write(1, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 1;
    bytes -= w;
  }
  if (quit) return 0;
  for (;;) pause();
}

static int cmd_crash(const char *file) {
  char line[32];
  int n = snprintf(line, sizeof line, "%lld\n", now_ns());
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    if (write(fd, line, (size_t)n) < 0) {
    }
    close(fd);
  }
  return 1;
}

static int cmd_count(long long lines) {
  static char buf[128 * 1024];
  long long seen = 0;
  while (seen < lines) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;
    for (const char *p = buf, *end = buf + n; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
      seen++;
  }
  printf("%lld\n", now_ns());
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "watch")) {
    prefix = argv[2] + (argv[2][0] == '=');
    prefix_len = strlen(prefix);
    signal(SIGPIPE, SIG_DFL);
    return cmd_watch();
  }
  if (argc >= 3 && !strcmp(argv[1], "scan")) {
    prefix = argv[2] + (argv[2][0] == '=');
    prefix_len = strlen(prefix);
    return cmd_scan();
  }
  if (argc >= 5 && !strcmp(argv[1], "listen"))
    return cmd_listen(atoi(argv[2]), atol(argv[3]), atoi(argv[4]));
  if (argc >= 3 && !strcmp(argv[1], "http")) return cmd_http(atoi(argv[2]));
  if (argc >= 3 && !strcmp(argv[1], "crash")) return cmd_crash(argv[2]);
  if (argc >= 3 && !strcmp(argv[1], "waitport")) return cmd_waitport(atoi(argv[2]));
  if (argc >= 3 && !strcmp(argv[1], "count")) return cmd_count(atoll(argv[2]));
  if (argc >= 6 && !strcmp(argv[1], "chatty"))
    return cmd_chatty(argv[2], atoll(argv[3]), atoi(argv[4]), atoi(argv[5]),
                      argc >= 7 && !strcmp(argv[6], "exit"));
  fprintf(stderr, "usage: helper watch PREFIX | scan PREFIX | listen PORT DELAY_MS NOTIFY_FD "
                  "[MARKER...] | http PORT [MARKER...] | crash FILE [MARKER...] | waitport PORT [MARKER...] | "
                  "chatty GOFILE BYTES LINELEN BLOCK [MARKER...]\n");
  return 2;
}
