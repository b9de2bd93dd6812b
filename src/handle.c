/* handle.c: the shared lifecycle of handle userdata (created closed, anchored while a callback
 * can arrive, closed idempotently; libuv memory freed only in the close callback). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

/* Push a new, closed handle userdata of `size` bytes with metatable `mt`.   [-0, +1, m] */
orch_handle *orch_handle_new(lua_State *L, const char *mt, size_t size)
{
  orch_ctx *ctx = orch_ctx_get(L);
  orch_handle *h = lua_newuserdatauv(L, size, 0);
  memset(h, 0, size);
  h->ctx = ctx;
  h->mt = mt;
  h->self_ref = LUA_NOREF;
  h->cb_ref = LUA_NOREF;
  luaL_setmetatable(L, mt);
  return h;
}

void orch_handle_attach(orch_handle *h, uv_handle_t *uv)
{
  h->uv = uv;
  uv->data = h;
}

/* The open handle at `idx`; raises when it is closed.   [-0, +0, v] */
orch_handle *orch_handle_check(lua_State *L, int idx, const char *mt)
{
  orch_handle *h = luaL_checkudata(L, idx, mt);
  if (h->uv == NULL) {
    lua_pushfstring(L, "%s is closed", mt);
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return h;
}

/* Keep the callable at `cb_idx` and anchor the userdata at `self_idx`.   [-0, +0, v] */
void orch_handle_set_cb(lua_State *L, orch_handle *h, int self_idx, int cb_idx)
{
  luaL_checktype(L, cb_idx, LUA_TFUNCTION);
  lua_pushvalue(L, cb_idx);
  if (h->cb_ref == LUA_NOREF)
    h->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_rawseti(L, LUA_REGISTRYINDEX, h->cb_ref);
  if (h->self_ref == LUA_NOREF) {
    lua_pushvalue(L, self_idx);
    h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Idle: nothing will call back, so the userdata may be collected once unreferenced. */
void orch_handle_unanchor(lua_State *L, orch_handle *h)
{
  luaL_unref(L, LUA_REGISTRYINDEX, h->self_ref);
  h->self_ref = LUA_NOREF;
}

int orch_handle_push_cb(orch_handle *h)
{
  lua_State *L = h->ctx->L;
  if (h->cb_ref == LUA_NOREF || h->self_ref == LUA_NOREF)
    return -1;
  int base = lua_gettop(L);
  /* the userdata stays on the stack so a close() inside the callback cannot free it */
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->self_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->cb_ref);
  return base;
}

void orch_handle_close(lua_State *L, orch_handle *h)
{
  if (h->uv != NULL) {
    h->uv->data = NULL;
    if (!uv_is_closing(h->uv))
      uv_close(h->uv, (uv_close_cb)free);
    h->uv = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, h->cb_ref);
  h->cb_ref = LUA_NOREF;
  orch_handle_unanchor(L, h);
}

int orch_handle_tostring(lua_State *L)
{
  orch_handle *h = lua_touserdata(L, 1);
  if (h == NULL || h->mt == NULL)
    return luaL_tolstring(L, 1, NULL), 1;
  if (h->uv == NULL)
    lua_pushfstring(L, "%s (closed)", h->mt);
  else
    lua_pushfstring(L, "%s (%p)", h->mt, (void *)h);
  return 1;
}

/* Create metatable `mt` with `meta` and an __index table of `methods`.   [-0, +0, m] */
void orch_new_type(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods)
{
  luaL_newmetatable(L, mt); /* 0 when reopened under busted insulation: harmless */
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
