/* rlimit.c: core.getrlimit() and core.setrlimit(), orch's own descriptor and process limits.
 * Each entry costs orch a few descriptors and a process, so 10,000 entries need more than the
 * usual soft limits; orch.cli.limits decides how far to raise them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "spawn.h"

static const char *const NAMES[] = { "nofile", "nproc", NULL };
static const int RESOURCES[] = { RLIMIT_NOFILE, RLIMIT_NPROC };
static const char *const CEILINGS[] = { "/proc/sys/fs/nr_open", "/proc/sys/kernel/threads-max" };

/* The kernel's ceiling for a hard limit (fs.nr_open, kernel.threads-max), or -1. */
static lua_Integer ceiling(const char *path)
{
  FILE *f = fopen(path, "re");
  long long n = -1;
  if (f != NULL) {
    char buf[32];
    if (fgets(buf, sizeof buf, f) != NULL) {
      char *end;
      errno = 0;
      n = strtoll(buf, &end, 10);
      if (errno != 0 || end == buf)
        n = -1;
    }
    fclose(f);
  }
  return (lua_Integer)n;
}

static void push_limit(lua_State *L, rlim_t v)
{
  if (v == RLIM_INFINITY)
    lua_pushinteger(L, -1);
  else
    lua_pushinteger(L, (lua_Integer)v);
}

/* core.getrlimit('nofile'|'nproc') -> soft, hard, kernel ceiling (-1: unlimited or unknown)
 * | fail   [-0, +3, v] */
static int core_getrlimit(lua_State *L)
{
  int i = luaL_checkoption(L, 1, NULL, NAMES);
  struct rlimit r;
  if (getrlimit(RESOURCES[i], &r) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "getrlimit");
  push_limit(L, r.rlim_cur);
  push_limit(L, r.rlim_max);
  lua_pushinteger(L, ceiling(CEILINGS[i]));
  return 3;
}

/* core.setrlimit(name, soft, hard[, children]) (-1: unlimited) -> true | fail (EPERM: the hard
 * limit may not be raised; EINVAL: above the kernel's ceiling). For 'nofile', `children` is the
 * soft limit every child gets from then on unless its spawn sets rlimits.nofile (0: orch's own).
 * [-0, +(1|3), v] */
static int core_setrlimit(lua_State *L)
{
  int i = luaL_checkoption(L, 1, NULL, NAMES);
  lua_Integer soft = luaL_checkinteger(L, 2);
  lua_Integer hard = luaL_checkinteger(L, 3);
  lua_Integer children = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, soft > 0 || soft == -1, 2, "a limit > 0 or -1 (unlimited) expected");
  luaL_argcheck(L, hard == -1 || (soft != -1 && hard >= soft), 3, "a limit >= soft expected");
  luaL_argcheck(L, children >= 0, 4, "an integer >= 0 expected");
  struct rlimit r = { soft == -1 ? RLIM_INFINITY : (rlim_t)soft,
                      hard == -1 ? RLIM_INFINITY : (rlim_t)hard };
  if (setrlimit(RESOURCES[i], &r) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "setrlimit");
  if (RESOURCES[i] == RLIMIT_NOFILE)
    orch_child_nofile_soft = (unsigned long long)children;
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "getrlimit", core_getrlimit },
  { "setrlimit", core_setrlimit },
  { NULL, NULL },
};

void orch_rlimit_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
