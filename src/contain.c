/* contain.c: core.contain() moves the orchestrator into a PID namespace of its own, so that
 * nothing it started can outlive it: when orch (PID 1 there) dies, even by SIGKILL, the kernel
 * kills every process of the namespace, grandchildren that left their process group included.
 *
 * The calling process forks; the child becomes PID 1 of the new namespace and returns to Lua;
 * the parent stays outside as a relay that forwards signals to it and exits with its status.
 * The child runs in its own process group so that a terminal's Ctrl-C reaches it once (through
 * the relay), and it dies with the relay (PR_SET_PDEATHSIG). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "relay.h"

/* Inside the new namespace: a private mount tree with a /proc that shows it. */
static int enter_namespace(orch_ctx *ctx, int alive_fd)
{
  /* The relay is outside the namespace (getppid() is 0 here): a pipe whose write end only the
   * relay holds tells whether it died before the prctl took effect. */
  struct pollfd pfd = { alive_fd, POLLIN, 0 };
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || poll(&pfd, 1, 0) != 0)
    _exit(1);
  close(alive_fd);
  /* A process group of its own: the terminal's Ctrl-C goes to the relay's group (the shell's
   * job), and the relay forwards it, so it arrives once. That group is a background one on the
   * terminal; with `stty tostop` a write to it raises SIGTTOU, which the kernel drops for the
   * init of a namespace while the write restarts for ever. orch never reads the terminal and
   * cannot be stopped anyway (it is PID 1): ignore both job-control signals, so its writes go
   * through. Its children get default dispositions and a session of their own (spawn.c). */
  setpgid(0, 0);
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  /* Kept so children can learn the pid the host sees them as (spawn.c); pids shown to users
   * must be ones they can use outside. */
  ctx->host_proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* Without its own /proc the namespace still works; only tools inside see outer pids. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    fprintf(stderr, "orch: warning: contain: cannot mount /proc: %s\n", uv_strerror(-errno));
  return uv_loop_fork(&ctx->loop);
}

/* core.contain([relay_exe]) -> relay_pid | nil, msg, CODE. With `relay_exe` (orch-relay, a
 * libc-only program) the relay execs it, so it does not keep a copy of orch's memory.
 * Returns only in the contained child; the caller goes on as PID 1 of a new PID namespace. Fails
 * (and changes nothing) when the kernel does not allow it, for example without CAP_SYS_ADMIN. [-0,
 * +(1|3), -] */
static int core_contain(lua_State *L)
{
  orch_ctx *ctx = orch_ctx_get(L);
  const char *relay_exe = luaL_optstring(L, 1, NULL);
  if (getpid() == 1)
    return orch_pushfail(L, UV_EEXIST, "contain: already PID 1 of a namespace");
  fflush(NULL); /* nothing buffered may be written twice */
  sigset_t set, old;
  orch_relay_signals(&set);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t self = getpid(); /* the relay: the pid users started and see */
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) != 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    return orch_pushfail(L, uv_translate_sys_error(errno), "contain: pipe");
  }
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
  if (pid < 0) {
    int err = uv_translate_sys_error(errno);
    close(alive[0]);
    close(alive[1]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return orch_pushfail(L, err, "contain: new PID namespace");
  }
  if (pid > 0) {
    close(alive[0]);
    if (relay_exe != NULL) { /* a fresh, small process image rather than a copy of orch's heap */
      char arg[24];
      snprintf(arg, sizeof arg, "%ld", (long)pid);
      fcntl(alive[1], F_SETFD, 0); /* the relay keeps it open for the life of the relay */
      execl(relay_exe, "orch-relay", arg, (char *)NULL);
      fcntl(alive[1], F_SETFD, FD_CLOEXEC);
    }
    orch_relay(pid, &set);
  }
  close(alive[1]);
  sigprocmask(SIG_SETMASK, &old, NULL);
  int err = enter_namespace(ctx, alive[0]);
  if (err < 0) {
    fprintf(stderr, "orch: contain: %s\n", uv_strerror(err));
    _exit(1);
  }
  lua_pushinteger(L, self);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "contain", core_contain },
  { NULL, NULL },
};

void orch_contain_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
  orch_watch_open(L); /* the other way to outlive nothing (watch.c) */
}
