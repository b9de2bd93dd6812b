/* spawn_opts.c: core.spawn's Lua arguments turned into an orch_spawn_req (spawn.h): argv, env,
 * cwd, the numeric uid/gid (orch.process resolves names and "uid:gid"), stdio. Everything
 * here only reads and checks; misuse raises before anything is allocated that Lua cannot
 * collect. */
#include "spawn_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "spawn_ns.h"

const char *const ORCH_STDIO_MODES[] = { "inherit", "ignore", NULL };

/* A NULL-terminated array of n + 1 pointers in a userdata left on the stack: collected with
 * it, so an error raised while it is filled leaks nothing.   [-0, +1, m] */
static char **push_ptr_array(lua_State *L, lua_Integer n)
{
  size_t size = ((size_t)n + 1) * sizeof(char *);
  char **a = lua_newuserdatauv(L, size, 0);
  memset(a, 0, size);
  return a;
}

/* argv from the table at index 1; strings are borrowed from it.   [-0, +1, v] */
static void read_argv(lua_State *L, orch_spawn_req *req)
{
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 1, 1, "argv must not be empty");
  req->argv = push_ptr_array(L, n);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lua_rawgeti(L, 1, i);
    const char *s = lua_tolstring(L, -1, &len);
    if (s == NULL || strlen(s) != len) {
      req->argv = NULL;
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "argv[%d] must be a string without NUL bytes", (int)i));
      return;
    }
    req->argv[i - 1] = (char *)s;
    lua_pop(L, 1); /* still referenced by the table */
  }
}

/* envp from opts.env, a list of 'NAME=value' strings borrowed from it.   [-0, +1, v] */
static void read_env(lua_State *L, int opts, orch_spawn_req *req)
{
  lua_getfield(L, opts, "env");
  if (lua_isnil(L, -1))
    return; /* the nil stays: one value pushed either way */
  luaL_checktype(L, -1, LUA_TTABLE);
  int env = lua_gettop(L);
  lua_Integer n = luaL_len(L, env);
  char **envp = push_ptr_array(L, n);
  lua_replace(L, env); /* the array replaces the table, which opts still holds */
  lua_getfield(L, opts, "env");
  env = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lua_rawgeti(L, env, i);
    const char *s = lua_tolstring(L, -1, &len);
    if (s == NULL || strlen(s) != len || strchr(s, '=') == NULL) {
      luaL_error(L, "bad env entry %d: 'NAME=value' without NUL bytes expected", (int)i);
      return;
    }
    envp[i - 1] = (char *)s;
    if (strncmp(s, "PATH=", 5) == 0)
      req->path_env = s + 5;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  req->envp = envp;
}

/* opts[field] as a string without NUL bytes, borrowed from opts, or NULL.   [-0, +0, v] */
static const char *opt_path(lua_State *L, int opts, const char *field)
{
  lua_getfield(L, opts, field);
  size_t len = 0;
  const char *s = luaL_optlstring(L, -1, NULL, &len);
  if (s != NULL && strlen(s) != len)
    luaL_error(L, "bad option '%s' to 'spawn' (NUL byte in '%s')", field, s);
  lua_pop(L, 1);
  return s;
}

/* opts[field] as a uid or gid: an integer from 0 to 2^32 - 2 ((uid_t)-1 means "unchanged" to
 * the kernel, and a wider number would wrap to root in the cast). -1 when absent.
 * [-0, +0, v] */
static long long opt_id(lua_State *L, int opts, const char *field)
{
  lua_getfield(L, opts, field);
  long long id = -1;
  if (!lua_isnil(L, -1)) {
    int ok;
    lua_Integer n = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER || n < 0 || (unsigned long long)n >= UINT32_MAX)
      luaL_error(L, "bad option '%s' to 'spawn' (an integer from 0 to %I expected)", field,
                 (lua_Integer)UINT32_MAX - 1);
    id = (long long)n;
  }
  lua_pop(L, 1);
  return id;
}

/* opts.uid, opts.gid and opts.groups_of (the user whose supplementary groups the child gets,
 * with gid as its primary group). gid defaults to uid.   [-0, +0, v] */
static void read_user(lua_State *L, int opts, orch_spawn_req *req)
{
  long long uid = opt_id(L, opts, "uid");
  long long gid = opt_id(L, opts, "gid");
  const char *name = opt_path(L, opts, "groups_of");
  if (uid < 0) {
    if (gid >= 0 || name != NULL)
      luaL_error(L, "bad option 'gid' to 'spawn' (needs 'uid')");
    return;
  }
  req->uid = (uid_t)uid;
  req->gid = (gid_t)(gid >= 0 ? gid : uid);
  req->set_user = 1;
  lua_getfield(L, opts, "groups"); /* explicit gids (a subcontainer's, from its /etc/group) */
  if (name == NULL && lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    req->groups = n > 0 && n <= 65536 ? malloc(sizeof(gid_t) * (size_t)n) : NULL;
    for (lua_Integer i = 1; req->groups && i <= n; i++) {
      lua_rawgeti(L, -1, i);
      req->groups[req->ngroups++] = (gid_t)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (name == NULL)
    return;
  for (int n = 32;;) {
    gid_t *groups = realloc(req->groups, sizeof(gid_t) * (size_t)n);
    if (groups == NULL)
      return; /* the child then only has its primary group */
    req->groups = groups;
    int got = n;
    if (getgrouplist(name, req->gid, groups, &got) >= 0) {
      req->ngroups = got;
      return;
    }
    n = got > n ? got : n * 2;
  }
}

/* opts.rlimits = {nofile = n, core = n}: integers >= 0, applied in the child.   [-0, +0, v] */
static void read_rlimits(lua_State *L, int opts, orch_spawn_req *req)
{
  lua_getfield(L, opts, "rlimits");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  static const char *const names[] = { "nofile", "core" };
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, -1, names[i]);
    if (!lua_isnil(L, -1)) {
      int ok;
      lua_Integer n = lua_tointegerx(L, -1, &ok);
      if (!ok || n < 0)
        luaL_error(L, "bad option 'rlimits.%s' to 'spawn' (an integer >= 0 expected)", names[i]);
      if (i == 0) {
        req->set_nofile = 1;
        req->rlim_nofile = (unsigned long long)n;
      } else {
        req->set_core = 1;
        req->rlim_core = (unsigned long long)n;
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* A string option without NUL bytes (borrowed from the options table), or NULL. [-0, +0, v] */
static const char *opt_string(lua_State *L, int t, const char *field, const char *what)
{
  lua_getfield(L, t, field);
  size_t len;
  const char *s = lua_isnil(L, -1) ? NULL : lua_tolstring(L, -1, &len);
  if (!lua_isnil(L, -1) && (s == NULL || strlen(s) != len))
    luaL_error(L, "bad option '%s' to 'spawn' (a string without NUL bytes expected)", what);
  lua_pop(L, 1);
  return s;
}

/* Subcontainer options (spawn_ns.c): join, caps, overlay, stdin_file.   [-0, +0, v] */
static void read_ns(lua_State *L, int opts, orch_spawn_req *req)
{
  for (int i = 0; i < 4; i++)
    req->join_ns_fd[i] = -1;
  req->join_pidns_fd = req->own_pidns_fd = -1;
  lua_getfield(L, opts, "join");
  if (!lua_isnil(L, -1)) {
    int ok;
    lua_Integer pid = lua_tointegerx(L, -1, &ok);
    if (!ok || pid <= 0 || pid > 0x3fffffff)
      luaL_error(L, "bad option 'join' to 'spawn' (a pid expected)");
    req->join_pid = (pid_t)pid;
  }
  lua_getfield(L, opts, "caps");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    req->set_caps = 1;
    for (lua_Integer i = 1, n = luaL_len(L, -1); i <= n; i++) {
      lua_rawgeti(L, -1, i);
      int ok;
      lua_Integer cap = lua_tointegerx(L, -1, &ok);
      if (!ok || cap < 0 || cap > 63)
        luaL_error(L, "bad option 'caps' to 'spawn' (capability numbers from 0 to 63 expected)");
      req->cap_keep |= 1ULL << cap;
      lua_pop(L, 1);
    }
  }
  req->stdin_file = opt_string(L, opts, "stdin_file", "stdin_file");
  lua_getfield(L, opts, "overlay");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    int t = lua_gettop(L);
    req->ovl_tmp = opt_string(L, t, "tmp", "overlay.tmp");
    req->ovl_lower = opt_string(L, t, "lower", "overlay.lower");
    lua_getfield(L, t, "userns");
    req->ovl_userns = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (req->ovl_tmp == NULL || req->ovl_lower == NULL)
      luaL_error(L, "bad option 'overlay' to 'spawn' ({tmp = dir, lower = dir} expected)");
    if (strpbrk(req->ovl_lower, ",:\\") != NULL)
      luaL_error(L, "bad option 'overlay.lower' to 'spawn' (',', ':' and '\\' cannot be "
                    "passed to overlayfs)");
  }
  lua_pop(L, 3);
}

/* opts.fds = {[n] = fd}: one descriptor of orch's the child gets as number n (>= 3), e.g. the
 * write end of a core.fd_pipe. The descriptor stays orch's to close.   [-0, +0, v] */
static void read_fds(lua_State *L, int opts, orch_spawn_req *req)
{
  lua_getfield(L, opts, "fds");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    int ok_n, ok_fd;
    lua_Integer n = lua_tointegerx(L, -2, &ok_n);
    lua_Integer fd = lua_tointegerx(L, -1, &ok_fd);
    if (!ok_n || !ok_fd || lua_type(L, -2) != LUA_TNUMBER || n < 3 || n > 1023 || fd < 0 ||
        fd > INT32_MAX)
      luaL_error(L, "bad option 'fds' to 'spawn' ({[n] = fd}, n from 3 to 1023 expected)");
    if (req->extra_target != 0)
      luaL_error(L, "bad option 'fds' to 'spawn' (one descriptor at most)");
    req->extra_target = (int)n;
    req->extra_fd = (int)fd;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void orch_spawn_opts_read(lua_State *L, orch_spawn_req *req)
{
  read_ns(L, 2, req);
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, 2, i ? "stderr" : "stdout");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
      luaL_checkoption(L, -1, NULL, ORCH_STDIO_MODES);
    lua_pop(L, 1);
  }
  read_argv(L, req);
  read_env(L, 2, req);
  req->cwd = opt_path(L, 2, "cwd");
  lua_getfield(L, 2, "setsid");
  req->setsid = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_getfield(L, 2, "pidns");
  req->pidns = lua_toboolean(L, -1);
  lua_pop(L, 2);
  req->cgroup = opt_path(L, 2, "cgroup");
  read_user(L, 2, req);
  read_rlimits(L, 2, req);
  read_fds(L, 2, req);
}

int orch_spawn_stdio(lua_State *L, int opts, const char *field, int *ref, int *child_fd,
                     int *parent_fd)
{
  *child_fd = -1;
  *parent_fd = -1;
  lua_getfield(L, opts, field);
  if (lua_isfunction(L, -1)) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      lua_pop(L, 1);
      return uv_translate_sys_error(errno);
    }
    *parent_fd = fds[0];
    *child_fd = fds[1];
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
  }
  int mode = lua_isnil(L, -1) ? 0 : luaL_checkoption(L, -1, NULL, ORCH_STDIO_MODES);
  lua_pop(L, 1);
  if (mode == 1) {
    *child_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (*child_fd < 0)
      return uv_translate_sys_error(errno);
  }
  return 0;
}

void orch_spawn_req_free(orch_spawn_req *req)
{
  orch_spawn_ns_free(req);
  if (req->cgroup_fd >= 0)
    close(req->cgroup_fd);
  req->cgroup_fd = -1;
  if (req->cgroup_dir_fd >= 0)
    close(req->cgroup_dir_fd);
  req->cgroup_dir_fd = -1;
  free(req->groups); /* argv and envp are userdata on the stack (push_ptr_array) */
  req->groups = NULL;
  free(req->file);
  req->file = NULL;
  for (int i = 0; i < 3; i++) {
    if (req->child_fd[i] >= 0)
      close(req->child_fd[i]);
    req->child_fd[i] = -1;
  }
}
