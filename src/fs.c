/* fs.c: the few file system calls the control socket needs and Lua lacks: core.mkdir(path,
 * mode) with an exact mode, core.chmod(path, mode), core.lstat(path) (type, permissions, owner,
 * inode), core.readdir(path) and core.cwd(). Errors are returned as nil, message, CODE like every
 * core call. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

static mode_t mode_check(lua_State *L, int idx)
{
  lua_Integer mode = luaL_checkinteger(L, idx);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, idx, "mode out of range");
  return (mode_t)mode;
}

/* core.mkdir(path, mode) -> true | fail: one directory, then chmod to exactly `mode` (the umask
 * does not apply). EEXIST when the path exists (whatever it is).   [-0, +(1|3), v] */
static int core_mkdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = mode_check(L, 2);
  if (mkdir(path, mode & 0777) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), lua_pushfstring(L, "mkdir '%s'", path));
  if (chmod(path, mode) != 0) {
    int err = uv_translate_sys_error(errno);
    rmdir(path);
    return orch_pushfail(L, err, lua_pushfstring(L, "chmod '%s'", path));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.chmod(path, mode) -> true | fail   [-0, +(1|3), v] */
static int core_chmod(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = mode_check(L, 2);
  if (chmod(path, mode) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), lua_pushfstring(L, "chmod '%s'", path));
  lua_pushboolean(L, 1);
  return 1;
}

static const char *type_name(mode_t m)
{
  if (S_ISREG(m))
    return "file";
  if (S_ISDIR(m))
    return "directory";
  if (S_ISLNK(m))
    return "link";
  if (S_ISSOCK(m))
    return "socket";
  if (S_ISFIFO(m))
    return "fifo";
  return "other";
}

/* core.lstat(path) -> {type, mode, uid, gid, dev, ino} | fail: `type` is 'file', 'directory',
 * 'link', 'socket', 'fifo' or 'other'; `mode` the permission bits; a link is not followed.
 * [-0, +(1|3), v] */
static int core_lstat(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), lua_pushfstring(L, "lstat '%s'", path));
  lua_createtable(L, 0, 6);
  lua_pushstring(L, type_name(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st.st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)st.st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  lua_setfield(L, -2, "ino");
  return 1;
}

/* core.readdir(path) -> {names...} (without . and .., unsorted) | fail   [-0, +(1|3), m] */
static int core_readdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (d == NULL)
    return orch_pushfail(L, uv_translate_sys_error(errno),
                         lua_pushfstring(L, "opendir '%s'", path));
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name); /* a memory error here would leak d: names are short */
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  return 1;
}

/* core.cwd() -> path | fail   [-0, +(1|3), m] */
static int core_cwd(lua_State *L)
{
  char buf[4096];
  size_t len = sizeof buf;
  int err = uv_cwd(buf, &len);
  if (err < 0)
    return orch_pushfail(L, err, "cwd");
  lua_pushlstring(L, buf, len);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "mkdir", core_mkdir },     { "chmod", core_chmod }, { "lstat", core_lstat },
  { "readdir", core_readdir }, { "cwd", core_cwd },     { NULL, NULL },
};

void orch_fs_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
