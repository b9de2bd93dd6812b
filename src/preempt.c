/* preempt.c: core.preempt(co, ms[, opts]) bounds how long a coroutine may run without yielding.
 *
 * orch runs Lua tasks cooperatively on one thread, so a `ready.fn` or a main.lua stuck in a busy
 * loop would freeze every entry. This file holds only the mechanism; orch.sched decides which
 * task gets which deadline, re-arms it on every resume and acts on the outcome. An
 * instruction-count hook on the coroutine checks the clock every PREEMPT_COUNT instructions;
 * past the deadline it marks the coroutine preempted and raises an error. It then raises again
 * before every instruction of the coroutine's own code, so a `pcall` around the loop cannot
 * swallow it: each catch only unwinds one level, until the error leaves the coroutine or
 * reaches code whose source starts with the spared prefix (orch's library, which must finish
 * its bookkeeping, and returns to the scheduler). No yield from C: the scheduler sees the task
 * end (or, if library code yields after catching, finds it preempted and closes it).
 * A loop inside a single C call (a huge string.rep) cannot be interrupted.
 *
 * With opts.on_line, the hook is a line hook instead (see mask_of): it reports each line run
 * outside spared code to on_line(source, line) (orch.locate's "last line of the script", which
 * needs the one hook a thread has) and checks the deadline there; core.preempt_lines pauses it
 * while orch's own code runs. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define PREEMPT_COUNT 10000

static const char STATES_KEY = 's'; /* registry: weak table thread -> state */

/* State of a coroutine (a table): [1] deadline (ns, uv_hrtime), [2] preempted, [3] message,
 * [4] spared source prefix, [5] on_line function, [6] lines paused (core.preempt_lines). */
enum { S_DEADLINE = 1, S_PREEMPTED, S_MESSAGE, S_SPARED, S_ON_LINE, S_LINES_OFF };

/* The hook mask the state at index st asks for. Any hook makes Lua 5.4 trap every instruction
 * of the coroutine (a count hook doubled the cost of evaluating main.lua), so a coroutine with
 * on_line gets the line hook alone: its code cannot run without line events (a loop jumping
 * back, a call entering a function: each is one), and the deadline is checked on them. While
 * its lines are paused (core.preempt_lines: orch's own code runs, which is spared anyway) it
 * gets no hook at all: code that pauses them must not run script code meanwhile. Without
 * on_line: the count.   [-0, +0, -] */
static int mask_of(lua_State *L, int st)
{
  int mask = LUA_MASKCOUNT;
  if (lua_rawgeti(L, st, S_ON_LINE) == LUA_TFUNCTION)
    mask = lua_rawgeti(L, st, S_LINES_OFF) == LUA_TBOOLEAN ? 0 : LUA_MASKLINE;
  lua_settop(L, st);
  return mask;
}

static void preempt_hook(lua_State *L, lua_Debug *ar);

/* Set the hook of `co` from its state (index st), as mask_of says.   [-0, +0, -] */
static void set_hook(lua_State *L, lua_State *co, int st)
{
  int mask = mask_of(L, st);
  lua_sethook(co, preempt_hook, mask, (mask & LUA_MASKCOUNT) ? PREEMPT_COUNT : 0);
}

/* Push the states table (created on first use).   [-0, +1, m] */
static void push_states(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &STATES_KEY) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &STATES_KEY);
}

/* Whether the running function's source starts with the state's spared prefix (state at
 * index st).   [-0, +0, -] */
static int in_spared_code(lua_State *L, int st, lua_Debug *ar)
{
  if (lua_rawgeti(L, st, S_SPARED) != LUA_TSTRING) {
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
  if (!lua_checkstack(L, 6))
    return;
  push_states(L);
  lua_pushthread(L);
  if (lua_rawget(L, -2) != LUA_TTABLE) { /* a thread that inherited the hook: not ours */
    lua_pop(L, 2);
    return;
  }
  int st = lua_gettop(L);
  lua_rawgeti(L, st, S_PREEMPTED);
  int preempted = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (ar->event == LUA_HOOKLINE) {
    if (lua_rawgeti(L, st, S_ON_LINE) == LUA_TFUNCTION) {
      if (in_spared_code(L, st, ar)) {
        /* orch's own line: nothing to report, and nothing to enforce (spared); no Lua ran
         * here, so no count event was lost either */
        lua_pop(L, 3);
        return;
      }
      lua_pushstring(L, ar->source);
      lua_pushinteger(L, ar->currentline);
      lua_call(L, 2, 0);
    } else {
      lua_pop(L, 1);
    }
    /* no return: the deadline is checked on line events too, since a count event that
     * falls while on_line runs is lost (a loop whose length divides PREEMPT_COUNT could hide
     * every one of them there) */
  }
  if (!preempted) {
    lua_rawgeti(L, st, S_DEADLINE);
    int over = (lua_Number)uv_hrtime() > lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!over) {
      lua_pop(L, 2);
      return;
    }
  }
  if (in_spared_code(L, st, ar)) {
    lua_pop(L, 2);
    return;
  }
  if (!preempted) {
    lua_pushboolean(L, 1);
    lua_rawseti(L, st, S_PREEMPTED);
    lua_sethook(L, preempt_hook, lua_gethookmask(L) | LUA_MASKCOUNT, 1);
  }
  luaL_where(L, 0);
  lua_rawgeti(L, st, S_MESSAGE);
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "ran past its deadline without yielding");
  }
  lua_concat(L, 2);
  lua_error(L);
}

/* Fetch the state of thread argument 1 into the stack top, creating it.   [-0, +1, m] */
static void push_state(lua_State *L)
{
  push_states(L);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 5, 0);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

/* core.preempt(co, ms[, opts]): from now on, running `co` for more than `ms` milliseconds of
 * wall time without yielding raises an error inside it (never in code whose source starts with
 * opts.spared); core.preempted(co) then returns true. Call it again before each resume to
 * re-arm (opts are kept). opts: message (the error text, after the position), spared,
 * on_line (function(source, line)). core.preempt(co, nil) removes the hook and the state.
 * [-0, +0, v] */
static int core_preempt(lua_State *L)
{
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  if (lua_isnoneornil(L, 2)) {
    push_states(L);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_sethook(co, NULL, 0, 0);
    return 0;
  }
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms > 0, 2, "positive number of ms expected");
  int has_opts = !lua_isnoneornil(L, 3);
  if (has_opts)
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  push_state(L);
  int st = lua_gettop(L);
  if (has_opts) {
    static const struct {
      const char *name;
      int slot, type;
    } fields[] = { { "message", S_MESSAGE, LUA_TSTRING },
                   { "spared", S_SPARED, LUA_TSTRING },
                   { "on_line", S_ON_LINE, LUA_TFUNCTION } };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      int t = lua_getfield(L, 3, fields[i].name);
      if (t != LUA_TNIL && t != fields[i].type)
        return luaL_error(L, "core.preempt: opts.%s must be a %s", fields[i].name,
                          lua_typename(L, fields[i].type));
      lua_rawseti(L, st, fields[i].slot);
    }
  }
  lua_pushnumber(L, (lua_Number)uv_hrtime() + (lua_Number)ms * 1e6);
  lua_rawseti(L, st, S_DEADLINE);
  lua_pushboolean(L, 0);
  lua_rawseti(L, st, S_PREEMPTED);
  set_hook(L, co, st);
  return 0;
}

/* core.preempt_lines(co, on) -> boolean: pause (false) or resume (true) the on_line reports of
 * `co` (a coroutine given an on_line by core.preempt); returns whether they were on. Library
 * code the script calls pauses them: a line hook firing on every line of orch's own code (which
 * on_line ignores anyway) cost half of the evaluation of main.lua. Kept across re-arms.
 * Nothing to do (false) for a coroutine without on_line.   [-0, +1, v] */
static int core_preempt_lines(lua_State *L)
{
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  int on = lua_toboolean(L, 2);
  lua_settop(L, 2);
  push_states(L);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int st = lua_gettop(L);
  int was = (mask_of(L, st) & LUA_MASKLINE) != 0;
  if (on)
    lua_pushnil(L);
  else
    lua_pushboolean(L, 1);
  lua_rawseti(L, st, S_LINES_OFF);
  lua_rawgeti(L, st, S_PREEMPTED);
  int preempted = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (preempted) /* keep the count of 1 that raises again at each instruction */
    lua_sethook(co, preempt_hook, LUA_MASKCOUNT | (on ? LUA_MASKLINE : 0), 1);
  else
    set_hook(L, co, st);
  lua_pushboolean(L, was);
  return 1;
}

/* core.preempted(co) -> boolean   [-0, +1, v] */
static int core_preempted(lua_State *L)
{
  luaL_argexpected(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine");
  push_states(L);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_rawgeti(L, -1, S_PREEMPTED);
  lua_pushboolean(L, lua_toboolean(L, -1));
  return 1;
}

static const luaL_Reg funcs[] = {
  { "preempt", core_preempt },
  { "preempted", core_preempted },
  { "preempt_lines", core_preempt_lines },
  { NULL, NULL },
};

void orch_preempt_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
