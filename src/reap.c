/* reap.c: the reaping of children and orphans, core.set_subreaper() and core.orphans_reaped().
 *
 * libuv owns no child of orch (process.c forks them itself), so one SIGCHLD watcher per ctx
 * reaps them all: waitid(WNOWAIT) peeks at an exited child, then waitpid() reaps exactly that
 * pid. Each of ours goes back to process.c (orch_process_reaped); any other pid is an orphan
 * handed to us as a subreaper, and counted. */
#include "reap.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

/* Keep the loop alive while children of ours run, not for the watcher alone.   [-0, +0, -] */
void orch_sigchld_refresh(orch_ctx *ctx)
{
  if (ctx->sigchld == NULL)
    return;
  if (ctx->live_procs > 0)
    uv_ref((uv_handle_t *)ctx->sigchld);
  else
    uv_unref((uv_handle_t *)ctx->sigchld);
}

static void on_sigchld(uv_signal_t *s, int signum)
{
  (void)signum;
  orch_ctx *ctx = s->data;
  if (ctx == NULL)
    return;
  for (;;) {
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
      break;
    int status;
    pid_t pid = si.si_pid;
    if (waitpid(pid, &status, WNOHANG) != pid)
      break;
    if (!orch_process_reaped(ctx, pid, status))
      ctx->orphans++;
  }
  orch_sigchld_refresh(ctx);
}

/* Start the SIGCHLD watcher once per ctx.   [-0, +0, -] */
int orch_sigchld_start(orch_ctx *ctx)
{
  if (ctx->sigchld != NULL)
    return 0;
  uv_signal_t *s = malloc(sizeof *s);
  if (s == NULL)
    return UV_ENOMEM;
  uv_signal_init(&ctx->loop, s);
  s->data = ctx;
  int err = uv_signal_start(s, on_sigchld, SIGCHLD);
  if (err < 0) {
    uv_close((uv_handle_t *)s, (uv_close_cb)free);
    return err;
  }
  ctx->sigchld = s;
  orch_sigchld_refresh(ctx);
  return 0;
}

void orch_process_shutdown(orch_ctx *ctx)
{
  if (ctx->sigchld != NULL) {
    ctx->sigchld->data = NULL;
    uv_close((uv_handle_t *)ctx->sigchld, (uv_close_cb)free);
    ctx->sigchld = NULL;
  }
}

/* core.set_subreaper() -> true | fail: orphaned descendants are re-parented to orch. */
static int core_set_subreaper(lua_State *L)
{
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "prctl(PR_SET_CHILD_SUBREAPER)");
  int err = orch_sigchld_start(orch_ctx_get(L));
  if (err < 0)
    return orch_pushfail(L, err, "signal SIGCHLD");
  lua_pushboolean(L, 1);
  return 1;
}

static int core_orphans_reaped(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)orch_ctx_get(L)->orphans);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "set_subreaper", core_set_subreaper },
  { "orphans_reaped", core_orphans_reaped },
  { NULL, NULL },
};

void orch_reap_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
