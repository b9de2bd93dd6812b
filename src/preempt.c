/* preempt.c: core.preempt(co, ms) bounds how long a coroutine may run without yielding.
 *
 * orch runs Lua tasks cooperatively on one thread, so a `ready.fn` stuck in a busy loop would
 * freeze every entry. An instruction-count hook on the task's coroutine checks the clock every
 * PREEMPT_COUNT instructions; past the deadline it yields the coroutine from the hook (Lua 5.4
 * allows that for count hooks, through pcall too), handing control back to the scheduler, which
 * finds the task suspended and cancels it (health_daemon.lua). Where the coroutine cannot yield
 * (inside a metamethod called from C, a sort comparator, ...) the hook raises an error instead.
 * A loop inside a single C call (a huge string.rep) cannot be interrupted. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define PREEMPT_COUNT 10000

static const char DEADLINES_KEY = 'd'; /* registry: weak table thread -> deadline | true */
static const char SPARED_KEY = 's';    /* registry: source prefix of code never stopped in */

/* Push the deadlines table (created on first use).   [-0, +1, m] */
static void push_deadlines(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &DEADLINES_KEY) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &DEADLINES_KEY);
}

/* Whether the running function's source starts with the spared prefix (orch's own library:
 * stopping a task half-way through the scheduler's bookkeeping would corrupt it; the hook
 * comes back PREEMPT_COUNT instructions later, by then in the user's code).   [-0, +0, -] */
static int in_spared_code(lua_State *L, lua_Debug *ar)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SPARED_KEY) != LUA_TSTRING) {
    lua_pop(L, 1);
    return 0;
  }
  size_t n;
  const char *prefix = lua_tolstring(L, -1, &n);
  int spared = lua_getinfo(L, "S", ar) && ar->source != NULL && strncmp(ar->source, prefix, n) == 0;
  lua_pop(L, 1);
  return spared;
}

static void preempt_hook(lua_State *L, lua_Debug *ar)
{
  if (!lua_checkstack(L, 3))
    return;
  push_deadlines(L);
  lua_pushthread(L);
  int t = lua_rawget(L, -2);
  int over = t == LUA_TNUMBER && (lua_Number)uv_hrtime() > lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!over || in_spared_code(L, ar)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushthread(L);
  lua_pushboolean(L, 1); /* preempted */
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_sethook(L, NULL, 0, 0);
  if (lua_isyieldable(L))
    lua_yield(L, 0);
  else
    luaL_error(L, "ran past its deadline without yielding");
}

/* core.preempt(co, ms[, spared]): from now on, `co` is stopped (yielded from a hook) once it
 * has run for `ms` milliseconds of wall time, never while it runs code whose source starts
 * with `spared` (e.g. "@/usr/share/orch/lua/orch/"); core.preempted(co) then returns true.
 * [-0, +0, v] */
static int core_preempt(lua_State *L)
{
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms > 0, 2, "positive number of ms expected");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checkstring(L, 3);
    lua_pushvalue(L, 3);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SPARED_KEY);
  }
  push_deadlines(L);
  lua_pushvalue(L, 1);
  lua_pushnumber(L, (lua_Number)uv_hrtime() + (lua_Number)ms * 1e6);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_sethook(co, preempt_hook, LUA_MASKCOUNT, PREEMPT_COUNT);
  return 0;
}

/* core.preempted(co) -> boolean   [-0, +1, v] */
static int core_preempted(lua_State *L)
{
  luaL_argexpected(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine");
  push_deadlines(L);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  lua_pushboolean(L, lua_type(L, -1) == LUA_TBOOLEAN);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "preempt", core_preempt },
  { "preempted", core_preempted },
  { NULL, NULL },
};

void orch_preempt_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
