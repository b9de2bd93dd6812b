/* core.c: luaopen_orch_core, the loop context, run/stop/now/hrtime and error plumbing. */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

static const char CTX_KEY = 'c';

/* Close whatever is still open at lua_close, then drain the loop until it closes. */
static void on_walk_close(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h)) {
    h->data = NULL;
    uv_close(h, (uv_close_cb)free);
  }
}

/* ctx.__gc: runs last (the ctx is the first finalisable object created).   [-0, +0, -] */
static int ctx_gc(lua_State *L)
{
  orch_ctx *ctx = luaL_checkudata(L, 1, ORCH_CTX_MT);
  if (ctx->L == NULL)
    return 0;
  orch_process_shutdown(ctx);
  orch_http_close(ctx);
  uv_walk(&ctx->loop, on_walk_close, NULL);
  while (uv_loop_close(&ctx->loop) == UV_EBUSY)
    uv_run(&ctx->loop, UV_RUN_ONCE);
  ctx->L = NULL;
  return 0;
}

/* The ctx of this Lua state, created on first use.   [-0, +0, m] */
orch_ctx *orch_ctx_get(lua_State *L)
{
  orch_ctx *ctx;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY) == LUA_TUSERDATA) {
    ctx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return ctx;
  }
  lua_pop(L, 1);
  ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  memset(ctx, 0, sizeof *ctx);
  if (uv_loop_init(&ctx->loop) != 0)
    luaL_error(L, "orch: cannot create the event loop");
  lua_pushthread(L);
  ctx->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  ctx->error_ref = LUA_NOREF;
  ctx->host_proc_fd = -1;
  if (luaL_newmetatable(L, ORCH_CTX_MT)) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  return ctx;
}

int orch_pushfail(lua_State *L, int err, const char *what)
{
  luaL_pushfail(L);
  if (strncmp(uv_err_name(err), "Unknown", 7) != 0) {
    lua_pushfstring(L, "%s: %s", what, uv_strerror(err));
    lua_pushstring(L, uv_err_name(err));
  } else if (err == -ENOEXEC) { /* libuv has no name for it; exec reports it */
    lua_pushfstring(L, "%s: exec format error", what);
    lua_pushliteral(L, "ENOEXEC");
  } else {
    lua_pushfstring(L, "%s: %s", what, strerror(-err));
    lua_pushfstring(L, "E%d", -err);
  }
  return 3;
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL && !lua_isnoneornil(L, 1))
    return 1; /* a non-string error object travels unchanged */
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int orch_call(orch_ctx *ctx, int nargs)
{
  lua_State *L = ctx->L;
  int fn = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, fn);
  int status = lua_pcall(L, nargs, 0, fn);
  if (status != LUA_OK) {
    if (ctx->error_ref == LUA_NOREF)
      ctx->error_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* first error wins */
    else
      lua_pop(L, 1);
    uv_stop(&ctx->loop);
  }
  lua_pop(L, 1); /* the traceback handler */
  return status;
}

/* core.run([mode]) -> alive; re-raises the first error that escaped a callback.   [-0, +1, v] */
static int core_run(lua_State *L)
{
  static const char *const modes[] = { "default", "once", "nowait", NULL };
  static const uv_run_mode uv_modes[] = { UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT };
  orch_ctx *ctx = orch_ctx_get(L);
  int mode = luaL_checkoption(L, 1, "default", modes);
  if (ctx->running)
    return luaL_error(L, "loop is already running");
  ctx->running = 1;
  int alive = uv_run(&ctx->loop, uv_modes[mode]);
  ctx->running = 0;
  if (ctx->error_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->error_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ctx->error_ref);
    ctx->error_ref = LUA_NOREF;
    return lua_error(L);
  }
  lua_pushboolean(L, alive);
  return 1;
}

static int core_stop(lua_State *L)
{
  uv_stop(&orch_ctx_get(L)->loop);
  return 0;
}

static int core_now(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)uv_now(&orch_ctx_get(L)->loop));
  return 1;
}

static int core_update_time(lua_State *L)
{
  uv_update_time(&orch_ctx_get(L)->loop);
  return 0;
}

/* core.time() -> seconds since the epoch as a float with microseconds (wall clock, for log
 * timestamps only: every duration uses now() or hrtime()).   [-0, +1, -] */
static int core_time(lua_State *L)
{
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return orch_pushfail(L, UV_EINVAL, "gettimeofday");
  lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
  return 1;
}

static int core_hrtime(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)uv_hrtime());
  return 1;
}

/* core.environ() -> {NAME = value}   [-0, +1, m] */
static int core_environ(lua_State *L)
{
  uv_env_item_t *items;
  int n;
  int err = uv_os_environ(&items, &n);
  if (err < 0)
    return orch_pushfail(L, err, "environ");
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, items[i].value);
    lua_setfield(L, -2, items[i].name);
  }
  uv_os_free_environ(items, n);
  return 1;
}

/* core.getpwnam(name_or_uid) -> {name, uid, gid, dir, shell} | fail   [-0, +1, m] */
static int core_getpwnam(lua_State *L)
{
  struct passwd *pw;
  errno = 0;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer uid = luaL_checkinteger(L, 1);
    /* checked before the cast: 2^32 would look up root */
    luaL_argcheck(L, uid >= 0 && uid < (lua_Integer)UINT32_MAX, 1, "uid out of range");
    pw = getpwuid((uid_t)uid);
  } else
    pw = getpwnam(luaL_checkstring(L, 1));
  if (pw == NULL)
    return orch_pushfail(L, errno ? uv_translate_sys_error(errno) : UV_ENOENT,
                         lua_pushfstring(L, "user '%s'", luaL_tolstring(L, 1, NULL)));
  lua_createtable(L, 0, 5);
  lua_pushstring(L, pw->pw_name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, pw->pw_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, pw->pw_gid);
  lua_setfield(L, -2, "gid");
  lua_pushstring(L, pw->pw_dir);
  lua_setfield(L, -2, "dir");
  lua_pushstring(L, pw->pw_shell);
  lua_setfield(L, -2, "shell");
  return 1;
}

static int core_getpid(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static int core_getuid(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}

static void count_walk(uv_handle_t *h, void *arg)
{
  if (uv_is_active(h) && uv_has_ref(h))
    (*(int *)arg)++;
}

/* core.active_count() -> n: active, referenced handles, for specs that check nothing leaks.
 * [-0, +1, -] */
static int core_active_count(lua_State *L)
{
  int n = 0;
  uv_walk(&orch_ctx_get(L)->loop, count_walk, &n);
  lua_pushinteger(L, n);
  return 1;
}

/* core.exepath() -> path of the running program (orch, or the Lua interpreter), or nil: where
 * its companions (orch-init) are installed.   [-0, +1, m] */
static int core_exepath(lua_State *L)
{
  char exe[4096];
  size_t len = sizeof exe;
  if (uv_exepath(exe, &len) != 0)
    lua_pushnil(L);
  else
    lua_pushlstring(L, exe, len);
  return 1;
}

static const luaL_Reg core_funcs[] = {
  { "run", core_run },
  { "stop", core_stop },
  { "now", core_now },
  { "update_time", core_update_time },
  { "hrtime", core_hrtime },
  { "time", core_time },
  { "environ", core_environ },
  { "getpwnam", core_getpwnam },
  { "getpid", core_getpid },
  { "getuid", core_getuid },
  { "active_count", core_active_count },
  { "exepath", core_exepath },
  { NULL, NULL },
};

int luaopen_orch_core(lua_State *L)
{
  orch_ctx_get(L);
  luaL_newlib(L, core_funcs);
  orch_timer_open(L);
  orch_signal_open(L);
  orch_process_open(L);
  orch_probe_net_open(L);
  orch_notify_open(L);
  orch_notify_recv_open(L);
  orch_fd_pipe_open(L);
  orch_contain_open(L);
  orch_probe_http_open(L);
  orch_stream_open(L);
  orch_outbuf_open(L);
  orch_track_open(L);
  orch_preempt_open(L);
  orch_fs_open(L);
  orch_fswatch_open(L);
  orch_tty_open(L);
  orch_rlimit_open(L);
  lua_pushliteral(L, ORCH_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
