/* main.c: the orch binary. Creates the Lua state, preloads orch.core, points package.path at
 * the Lua library, and hands argv to orch.cli.main, whose integer result is the exit status. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <uv.h>

#include "bytecode.h"
#include "lalloc.h"
#include "lines.h"
#include "orch.h"

static int is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Push "<directory of this binary>/<rel>"; 0 (nothing pushed) when the binary's path is not
 * known.   [-0, +(0|1), m] */
static int push_beside_exe(lua_State *L, const char *rel)
{
  char exe[4096];
  size_t len = sizeof exe;
  if (uv_exepath(exe, &len) != 0)
    return 0;
  char *slash = strrchr(exe, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  lua_pushfstring(L, "%s/%s", exe, rel);
  return 1;
}

/* The Lua library as found: $ORCH_LUA_PATH, next to an installed binary, the source tree, the
 * prefix.   [-0, +1, m] */
static void push_lua_dir_as_found(lua_State *L)
{
  const char *env = getenv("ORCH_LUA_PATH");
  if (env != NULL && *env != '\0') {
    lua_pushstring(L, env);
    return;
  }
  if (push_beside_exe(L, "../share/orch/lua")) {
    if (is_dir(lua_tostring(L, -1)))
      return;
    lua_pop(L, 1);
  }
  lua_pushstring(L, is_dir(ORCH_SOURCE_LUA_DIR) ? ORCH_SOURCE_LUA_DIR : ORCH_LUA_DIR);
}

/* The Lua library, canonical (the bytecode bundle's chunk names are, and the library's own
 * code compares them with the names of the modules compiled from source).   [-0, +1, m] */
static void push_lua_dir(lua_State *L)
{
  push_lua_dir_as_found(L);
  char *real = realpath(lua_tostring(L, -1), NULL);
  if (real != NULL) {
    lua_pop(L, 1);
    lua_pushstring(L, real);
    free(real);
  }
}

/* Protected part of main: set up and call require('orch.cli').main(args).  [-0, +1, e] */
static int pmain(lua_State *L)
{
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_orch_core);
  lua_setfield(L, -2, "orch.core");
  lua_pushcfunction(L, luaopen_orch_lines);
  lua_setfield(L, -2, "orch.lines");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  push_lua_dir(L);
  const char *dir = lua_tostring(L, -1);
  lua_getfield(L, -2, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -4, "path");
  lua_pop(L, 1);
  /* the build's bytecode: build/lib/orch or an installed /usr/lib/orch, beside bin/ */
  if (getenv("ORCH_NO_BYTECODE") == NULL && push_beside_exe(L, "../lib/orch/bytecode")) {
    orch_bytecode_install(L, lua_tostring(L, -1), dir);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  lua_createtable(L, argc, 1);
  lua_pushstring(L, argv[0]);
  lua_rawseti(L, -2, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (push_beside_exe(
          L, "orch-relay")) /* arg[-2], below the program name as lua.c does for its options */
    lua_rawseti(L, -2, -2);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "orch.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 1);
  return 1;
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* As luaL_newstate's: an error outside any protected call. */
static int panic(lua_State *L)
{
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "orch: unprotected error in Lua: %s\n", msg ? msg : "(not a string)");
  return 0; /* Lua aborts */
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN); /* a probe writing to a closed socket must not kill us */
  /* A SIGTERM during start-up stays pending until orch.cli has installed its handlers (or
   * decided it needs none): it then stops orch in order instead of killing it half-started. */
  sigset_t early;
  orch_early_signals(&early);
  sigprocmask(SIG_BLOCK, &early, NULL);
  orch_lalloc *pool = orch_lalloc_new();
  lua_State *L = pool ? lua_newstate(orch_lalloc_fn, pool) : NULL;
  if (L == NULL) {
    fputs("orch: cannot create the Lua state\n", stderr);
    return 1;
  }
  lua_atpanic(L, panic);
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = 1;
  if (lua_pcall(L, 2, 1, 1) != LUA_OK) {
    fprintf(stderr, "orch: %s\n", lua_tostring(L, -1));
  } else if (lua_isinteger(L, -1)) {
    status = (int)lua_tointeger(L, -1);
  } else {
    status = lua_toboolean(L, -1) || lua_isnil(L, -1) ? 0 : 1;
  }
  fflush(stdout);
  lua_close(L);
  orch_lalloc_free(pool);
  fflush(NULL);
  return status;
}
