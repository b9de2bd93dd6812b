/* watch.c: core.watch() starts the watcher of an uncontained orch (`orch-relay --watch`,
 * relay_watch.c), a process outside orch that SIGKILLs the process groups and cgroups orch
 * made once orch is gone, however it went (PR_SET_PDEATHSIG reaches only direct children).
 * process.c reports each group it creates and each group that is gone (orch_watch_group);
 * orch keeps the same list itself for its own last-resort exit (orch_watch_kill_all).
 * The state below is process-wide on purpose: the last-resort exit runs on the stop guard's
 * thread (signal.c), which has no Lua state and no loop context to reach it through. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "relay.h"

#define PENDING_MAX (16u << 20) /* a watcher that stopped reading: keep at most this much */

static int watch_fd = -1; /* write end of the pipe to the watcher, O_NONBLOCK; -1 without one */
static char *pending;     /* bytes the full pipe did not take yet, sent before anything newer */
static size_t npending, cappending;

/* Send what is pending; false when the watcher is gone (or the pipe failed). */
static int flush_pending(void)
{
  while (npending > 0) {
    ssize_t w = write(watch_fd, pending, npending);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return errno == EAGAIN;
    memmove(pending, pending + w, npending - (size_t)w);
    npending -= (size_t)w;
  }
  return 1;
}

/* One message (see relay_watch.c), recorded here and sent to the watcher. Never blocks: what
 * the pipe cannot take now waits, in order, for the next message. */
static void send_line(const char *line)
{
  orch_watch_note(line);
  if (watch_fd < 0)
    return;
  size_t n = strlen(line);
  if (npending + n + 1 > cappending) {
    size_t cap = cappending ? cappending * 2 : 4096;
    while (cap < npending + n + 1)
      cap *= 2;
    char *p = cap <= PENDING_MAX ? realloc(pending, cap) : NULL;
    if (p == NULL)
      return; /* the watcher has not read for megabytes: this group goes unwatched */
    pending = p;
    cappending = cap;
  }
  /* a line of the pipe protocol: a newline ends it, not a NUL */
  memcpy(pending + npending, line, n); /* NOLINT(bugprone-not-null-terminated-result) */
  pending[npending + n] = '\n';
  npending += n + 1;
  if (!flush_pending()) { /* the watcher died: nothing to tell any more */
    close(watch_fd);
    watch_fd = -1;
    npending = 0;
  }
}

void orch_watch_group(pid_t pgid, int alive)
{
  char line[32];
  snprintf(line, sizeof line, "%c%ld", alive ? '+' : '-', (long)pgid);
  send_line(line);
}

/* The grandchild of core.watch: stdin the pipe, stdout/stderr /dev/null, no other descriptor
 * (a pipe someone reads until EOF must not wait for the watcher), in a session of its own. */
static _Noreturn void become_watcher(int fd, const char *exe)
{
  if (dup2(fd, 0) < 0)
    _exit(1);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 1);
    dup2(null, 2);
  }
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
    for (int i = 3; i < 1024; i++)
      close(i);
  if (chdir("/") != 0)
    _exit(1);
  if (exe != NULL)
    execl(exe, "orch-relay", "--watch", (char *)NULL);
  prctl(PR_SET_NAME, "orch-relay", 0, 0, 0); /* no orch-relay: this copy of orch watches */
  orch_watch_loop(0);
}

/* core.watch([relay_exe]) -> true | nil, msg, CODE: start the watcher (once). With
 * `relay_exe` (orch-relay) it execs that small program.   [-0, +(1|3), -] */
static int core_watch(lua_State *L)
{
  const char *exe = luaL_optstring(L, 1, NULL);
  if (watch_fd >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "watch: pipe");
  fflush(NULL); /* nothing buffered may be written twice */
  pid_t pid = fork();
  if (pid == 0) {
    /* Not orch's child (orch may be a subreaper already) and in no job of the terminal. */
    setsid();
    pid_t w = fork();
    if (w != 0)
      _exit(w < 0);
    become_watcher(fds[0], exe);
  }
  int err = pid < 0 ? uv_translate_sys_error(errno) : 0;
  close(fds[0]);
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (err == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    err = UV_EAGAIN;
  if (err < 0) {
    close(fds[1]);
    return orch_pushfail(L, err, "watch: fork");
  }
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  watch_fd = fds[1];
  lua_pushboolean(L, 1);
  return 1;
}

/* core.watch_cgroup(dir, v1): the watcher also kills everything in `dir` and below (orch's
 * cgroup for its entries; `v1` true for a cgroup v1 pids hierarchy).   [-0, +0, v] */
static int core_watch_cgroup(lua_State *L)
{
  const char *dir = luaL_checkstring(L, 1);
  luaL_argcheck(L, dir[0] == '/' && strchr(dir, '\n') == NULL && strlen(dir) < PATH_MAX, 1,
                "absolute path without newline expected");
  lua_pushfstring(L, "c%c %s", lua_toboolean(L, 2) ? '1' : '2', dir);
  send_line(lua_tostring(L, -1));
  return 0;
}

/* core.watch_tag(prefix): the watcher also kills every process whose environment has an
 * entry starting with `prefix` ('ORCH_INVOCATION_ID=orch-PID.', see orch.track).   [-0,+0,v] */
static int core_watch_tag(lua_State *L)
{
  size_t len;
  const char *prefix = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L,
                strchr(prefix, '=') != NULL && strchr(prefix, '\n') == NULL &&
                    strlen(prefix) == len && len < 256,
                1, "NAME=prefix without newline expected");
  lua_pushfstring(L, "t %s", prefix);
  send_line(lua_tostring(L, -1));
  return 0;
}

static const luaL_Reg funcs[] = {
  { "watch", core_watch },
  { "watch_cgroup", core_watch_cgroup },
  { "watch_tag", core_watch_tag },
  { NULL, NULL },
};

void orch_watch_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
