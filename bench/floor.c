/* floor.c: the featureless launcher that every supervisor is compared against (built by
 * bench/run into build/bench/floor). No config, no logging, no readiness policy: just
 * posix_spawn and waitpid. Times are CLOCK_MONOTONIC, printed in nanoseconds.
 *
 *   floor true N
 *       posix_spawn + waitpid of /bin/true, N times in a row. Prints
 *       "true <n> <median_ns> <min_ns> <max_ns>".
 *   floor start N MARKER [STUBBORN TIMEOUT_MS]
 *       posix_spawn N daemons `sleep MARKER<i>` (i as 5 digits), the first STUBBORN of them as
 *       `sh -c "trap '' TERM; exec sleep MARKER<i>"`. Prints "spawned <ns>" (time for the N
 *       spawns; every posix_spawn has returned after the exec), then waits for SIGTERM/SIGINT:
 *       SIGTERM to every child, SIGKILL to those still alive after TIMEOUT_MS (default 1000),
 *       reap them all and exit 0. A child that dies meanwhile is reaped and not restarted.
 *       A leading '=' on MARKER is dropped, so that floor's own argv does not match the
 *       marker prefix that `helper watch` counts.
 *   floor chain N PORT0 DELAY_MS HELPER MARKER
 *       The readiness floor: start `HELPER listen PORT0+i DELAY_MS 3 MARKER<i>` one after the
 *       other, each only once the previous one has written its readiness byte on fd 3 (a
 *       pipe: no polling). Prints "chain <ns>" when the last one is ready, then behaves as
 *       `start` on SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static pid_t *kids;
static int nkids, nlive;
static posix_spawnattr_t attr;

static void init_attr(void) {
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
}

static pid_t spawn(char *const argv[], posix_spawn_file_actions_t *fa) {
  pid_t pid;
  int r = posix_spawnp(&pid, argv[0], fa, &attr, argv, environ);
  if (r) {
    fprintf(stderr, "floor: posix_spawn %s: %s\n", argv[0], strerror(r));
    return -1;
  }
  return pid;
}

static void forget(pid_t pid) {
  for (int i = 0; i < nkids; i++)
    if (kids[i] == pid) {
      kids[i] = 0;
      nlive--;
      return;
    }
}

/* Wait for SIGTERM/SIGINT (blocked by main), then stop every child. */
static int serve(long timeout_ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGCHLD) {
      pid_t p;
      while ((p = waitpid(-1, NULL, WNOHANG)) > 0) forget(p);
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  for (int i = 0; i < nkids; i++)
    if (kids[i] > 0) kill(kids[i], SIGTERM);
  long long deadline = now_ns() + timeout_ms * 1000000LL;
  struct timespec tick = {0, 1000000};
  while (nlive > 0) {
    pid_t p;
    while ((p = waitpid(-1, NULL, WNOHANG)) > 0) forget(p);
    if (nlive <= 0) break;
    if (now_ns() >= deadline) {
      for (int i = 0; i < nkids; i++)
        if (kids[i] > 0) kill(kids[i], SIGKILL);
      while (nlive > 0 && (p = waitpid(-1, NULL, 0)) > 0) forget(p);
      break;
    }
    struct timespec ts;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    ts = tick;
    sigtimedwait(&set, NULL, &ts);
  }
  return 0;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static int cmd_true(int n) {
  long long *t = calloc((size_t)n, sizeof *t);
  char *argv[] = {"/bin/true", NULL};
  for (int i = 0; i < n; i++) {
    long long t0 = now_ns();
    pid_t pid = spawn(argv, NULL);
    if (pid < 0) return 1;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    t[i] = now_ns() - t0;
  }
  qsort(t, (size_t)n, sizeof *t, cmp_ll);
  printf("true %d %lld %lld %lld\n", n, t[n / 2], t[0], t[n - 1]);
  return 0;
}

static int cmd_start(int n, const char *marker, int stubborn, long timeout_ms) {
  if (*marker == '=') marker++;
  kids = calloc((size_t)n, sizeof *kids);
  char arg[128], script[256];
  long long t0 = now_ns();
  for (int i = 0; i < n; i++) {
    snprintf(arg, sizeof arg, "%s%05d", marker, i);
    pid_t pid;
    if (i < stubborn) {
      snprintf(script, sizeof script, "trap '' TERM; exec sleep %s", arg);
      char *argv[] = {"sh", "-c", script, NULL};
      pid = spawn(argv, NULL);
    } else {
      char *argv[] = {"sleep", arg, NULL};
      pid = spawn(argv, NULL);
    }
    if (pid > 0) kids[nkids++] = pid, nlive++;
  }
  printf("spawned %lld\n", now_ns() - t0);
  fflush(stdout);
  return serve(timeout_ms);
}

static int cmd_chain(int n, int port0, long delay_ms, char *helper, const char *marker) {
  if (*marker == '=') marker++;
  kids = calloc((size_t)n, sizeof *kids);
  char port[16], delay[32], arg[128], fd3[] = "3";
  snprintf(delay, sizeof delay, "%ld", delay_ms);
  long long t0 = now_ns();
  for (int i = 0; i < n; i++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return 1;
    /* Both ends above fd 3 and close-on-exec: only the dup2'd fd 3 reaches the listener. */
    for (int k = 0; k < 2; k++) {
      int fd = fcntl(p[k], F_DUPFD_CLOEXEC, 10);
      close(p[k]);
      p[k] = fd;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    snprintf(port, sizeof port, "%d", port0 + i);
    snprintf(arg, sizeof arg, "%s%05d", marker, i);
    char *argv[] = {helper, "listen", port, delay, fd3, arg, NULL};
    pid_t pid = spawn(argv, &fa);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (pid > 0) kids[nkids++] = pid, nlive++;
    char c;
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(p[0]);
  }
  printf("chain %lld\n", now_ns() - t0);
  fflush(stdout);
  return serve(1000);
}

int main(int argc, char **argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  init_attr();
  if (argc == 3 && !strcmp(argv[1], "true")) return cmd_true(atoi(argv[2]));
  if ((argc == 4 || argc == 6) && !strcmp(argv[1], "start"))
    return cmd_start(atoi(argv[2]), argv[3], argc == 6 ? atoi(argv[4]) : 0,
                     argc == 6 ? atol(argv[5]) : 1000);
  if (argc == 7 && !strcmp(argv[1], "chain"))
    return cmd_chain(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), argv[5], argv[6]);
  fprintf(stderr, "usage: floor true N | start N MARKER [STUBBORN TIMEOUT_MS] | "
                  "chain N PORT0 DELAY_MS HELPER MARKER\n");
  return 2;
}
