/* fswatch.c: core.fs_watch(path, cb), a libuv fs event handle: `cb(name, change)` when an
 * entry of the watched directory (or the watched file) changes. orch run --watch watches the
 * directories of the files main.lua read, since editors replace files rather than write them. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_FSWATCH_MT "orch.fs_watch"

static void on_event(uv_fs_event_t *e, const char *name, int events, int status)
{
  orch_handle *h = e->data;
  if (h == NULL)
    return;
  lua_State *L = h->ctx->L;
  int base = orch_handle_push_cb(h);
  if (base < 0)
    return;
  if (status < 0)
    lua_pushnil(L);
  else if (name != NULL)
    lua_pushstring(L, name);
  else
    lua_pushliteral(L, "");
  if (status < 0)
    lua_pushstring(L, uv_strerror(status));
  else
    lua_pushstring(L, (events & UV_RENAME) ? "rename" : "change");
  orch_call(h->ctx, 2);
  lua_settop(L, base);
}

/* core.fs_watch(path, cb) -> handle | nil, message   [-0, +1|2, m] */
static int core_fs_watch(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  orch_handle *h = orch_handle_new(L, ORCH_FSWATCH_MT, sizeof *h);
  uv_fs_event_t *e = malloc(sizeof *e);
  if (e == NULL)
    return luaL_error(L, "not enough memory");
  uv_fs_event_init(&h->ctx->loop, e);
  orch_handle_attach(h, (uv_handle_t *)e);
  int rc = uv_fs_event_start(e, on_event, path, 0);
  if (rc < 0) {
    orch_handle_close(L, h);
    return orch_pushfail(L, rc, path);
  }
  orch_handle_set_cb(L, h, -1, 2);
  return 1;
}

/* handle:close(), also __gc and __close; idempotent   [-0, +0, -] */
static int fswatch_close(lua_State *L)
{
  orch_handle_close(L, luaL_checkudata(L, 1, ORCH_FSWATCH_MT));
  return 0;
}

static const luaL_Reg fswatch_methods[] = {
  { "close", fswatch_close },
  { NULL, NULL },
};

static const luaL_Reg fswatch_meta[] = {
  { "__gc", fswatch_close },
  { "__close", fswatch_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

void orch_fswatch_open(lua_State *L)
{
  orch_new_type(L, ORCH_FSWATCH_MT, fswatch_meta, fswatch_methods);
  lua_pushcfunction(L, core_fs_watch);
  lua_setfield(L, -2, "fs_watch");
}
