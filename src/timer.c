/* timer.c: core.timer(), a one-shot or repeating timer. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

static void on_timer(uv_timer_t *t)
{
  orch_handle *h = t->data;
  lua_State *L = h->ctx->L;
  int base = orch_handle_push_cb(h);
  if (base < 0)
    return;
  if (uv_timer_get_repeat(t) == 0)
    orch_handle_unanchor(L, h); /* fired for good: idle now (the stack keeps it alive) */
  orch_call(h->ctx, 0);
  lua_settop(L, base);
}

/* core.timer() -> timer   [-0, +1, m] */
static int core_timer(lua_State *L)
{
  orch_handle *h = orch_handle_new(L, ORCH_TIMER_MT, sizeof *h);
  uv_timer_t *t = malloc(sizeof *t);
  if (t == NULL)
    return luaL_error(L, "not enough memory");
  uv_timer_init(&h->ctx->loop, t);
  orch_handle_attach(h, (uv_handle_t *)t);
  return 1;
}

/* timer:start(timeout_ms, repeat_ms, callback)   [-0, +0, v] */
static int timer_start(lua_State *L)
{
  orch_handle *h = orch_handle_check(L, 1, ORCH_TIMER_MT);
  lua_Integer timeout = luaL_checkinteger(L, 2);
  lua_Integer repeat = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, timeout >= 0, 2, "must not be negative");
  luaL_argcheck(L, repeat >= 0, 3, "must not be negative");
  orch_handle_set_cb(L, h, 1, 4);
  uv_timer_start((uv_timer_t *)h->uv, on_timer, (uint64_t)timeout, (uint64_t)repeat);
  return 0;
}

/* timer:stop()   [-0, +0, v] */
static int timer_stop(lua_State *L)
{
  orch_handle *h = orch_handle_check(L, 1, ORCH_TIMER_MT);
  uv_timer_stop((uv_timer_t *)h->uv);
  orch_handle_unanchor(L, h);
  return 0;
}

/* timer:unref(): the timer no longer keeps the loop running (watchdogs).   [-0, +0, v] */
static int timer_unref(lua_State *L)
{
  uv_unref(orch_handle_check(L, 1, ORCH_TIMER_MT)->uv);
  return 0;
}

/* timer:active() -> boolean   [-0, +1, -] */
static int timer_active(lua_State *L)
{
  orch_handle *h = luaL_checkudata(L, 1, ORCH_TIMER_MT);
  lua_pushboolean(L, h->uv != NULL && uv_is_active(h->uv));
  return 1;
}

/* timer:close(), also __gc and __close; idempotent   [-0, +0, -] */
static int timer_close(lua_State *L)
{
  orch_handle_close(L, luaL_checkudata(L, 1, ORCH_TIMER_MT));
  return 0;
}

static const luaL_Reg timer_methods[] = {
  { "start", timer_start }, { "stop", timer_stop },   { "active", timer_active },
  { "unref", timer_unref }, { "close", timer_close }, { NULL, NULL },
};

static const luaL_Reg timer_meta[] = {
  { "__gc", timer_close },
  { "__close", timer_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

void orch_timer_open(lua_State *L)
{
  orch_new_type(L, ORCH_TIMER_MT, timer_meta, timer_methods);
  lua_pushcfunction(L, core_timer);
  lua_setfield(L, -2, "timer");
}
