/* fs.c: the few file system calls the control socket and the status file need and Lua lacks:
 * core.mkdir(path, mode) with an exact mode, core.chmod(path, mode), core.lstat(path) (type,
 * permissions, owner, inode), core.readdir(path), core.cwd(), core.write_new(path, data) (create
 * a file that must not exist, never following a link or opening a FIFO) and core.random(n).
 * Errors are returned as nil, message, CODE like every core call. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

/* Write all of buf[0..len) to fd. 0 or a negative UV_E* code. */
static int write_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return uv_translate_sys_error(errno);
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* core.write_new(path, data[, mode]) -> true | fail: create `path` with `data` in it. Whatever is
 * already at `path` (a file, a symlink even dangling, a FIFO) is neither followed nor opened: the
 * call fails with EEXIST. O_NONBLOCK so that no open can block. `mode` (default 0666) is reduced
 * by the umask. A file left incomplete by a failed write is removed.   [-0, +(1|3), v] */
static int core_write_new(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  mode_t mode = lua_isnoneornil(L, 3) ? 0666 : mode_check(L, 3);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
  if (fd < 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), lua_pushfstring(L, "open '%s'", path));
  int err = write_all(fd, data, len);
  if (close(fd) != 0 && err == 0 && errno != EINTR)
    err = uv_translate_sys_error(errno);
  if (err != 0) {
    unlink(path);
    return orch_pushfail(L, err, lua_pushfstring(L, "write '%s'", path));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.random(n) -> string of n random bytes (getrandom; 1 <= n <= 256) | fail
 * [-0, +(1|3), v] */
static int core_random(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 256, 1, "must be 1 to 256");
  char buf[256];
  int err = uv_random(NULL, NULL, buf, (size_t)n, 0, NULL);
  if (err < 0)
    return orch_pushfail(L, err, "random");
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "mkdir", core_mkdir },     { "chmod", core_chmod }, { "lstat", core_lstat },
  { "readdir", core_readdir }, { "cwd", core_cwd },     { "write_new", core_write_new },
  { "random", core_random },   { NULL, NULL },
};

void orch_fs_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
