/* lua_check.h: C tests that run Lua chunks against orch.core: a fresh state with the core as
 * global `core`, and CHECK_LUA comparing what a chunk returns with the expected text. */
#ifndef ORCH_LUA_CHECK_H
#define ORCH_LUA_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "orch.h"

/* A new state with the standard libraries and orch.core as the global `core`. */
static inline lua_State *lua_check_state(void)
{
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "orch.core", luaopen_orch_core, 0);
  lua_setglobal(L, "core");
  return L;
}

/* What a chunk run on L gave (`ok`: it loaded and ran), as a malloc'd string: its result
 * through tostring, or "ERROR: <message>". Closes L. */
static inline char *lua_check_outcome(lua_State *L, int ok)
{
  char *out;
  if (!ok) {
    const char *msg = lua_tostring(L, -1);
    size_t n = strlen(msg ? msg : "?") + 8;
    out = malloc(n);
    snprintf(out, n, "ERROR: %s", msg ? msg : "?");
  } else {
    out = strdup(luaL_tolstring(L, -1, NULL));
  }
  lua_close(L);
  return out;
}

/* Each test file defines `static char *run_lua(const char *code)`. */
#define CHECK_LUA(code, expected)                                                                  \
  do {                                                                                             \
    char *got_ = run_lua(code);                                                                    \
    CHECK_STR(got_, expected);                                                                     \
    free(got_);                                                                                    \
  } while (0)

#endif
