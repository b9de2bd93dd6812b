/* track.c: the facts orch.track needs to decide which processes belong to an entry (the
 * decision itself is Lua's, lua/orch/runtime/track.lua):
 *
 *  - cgroups (v2, or the v1 "pids" hierarchy): find orch's own, make and remove directories,
 *    list and SIGKILL the members of one (v2: cgroup.kill; v1: pids.max = 0 first, so nothing
 *    new can fork, then a SIGKILL per listed pid);
 *  - /proc: every process with its ppid, process group, state, start time and whether its
 *    environment holds a tag (core.proc_list); the processes holding a pipe (core.fd_holders);
 *    whether a host pid exists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "procfs.h"

#define READ_MAX (4u << 20) /* the largest procfs/cgroupfs file read (an environ, a pid list) */

/* errno as a libuv error code, always negative (on Unix, UV_E* codes are -errno). */
static int errno_err(void)
{
  int e = errno;
  return e > 0 ? -e : UV_EIO;
}

static int read_all(int dirfd, const char *path, char **out, size_t *len)
{
  return orch_read_file(dirfd, path, READ_MAX, out, len);
}

/* Write `data` to `path` (relative to `dirfd`) in one write. 0 or a negative UV_E* code. */
static int write_at(int dirfd, const char *path, const char *data)
{
  int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return errno_err();
  size_t n = strlen(data);
  ssize_t w;
  do
    w = write(fd, data, n);
  while (w < 0 && errno == EINTR);
  int err = w < 0 ? errno_err() : 0;
  close(fd);
  return err;
}

/* The pids of a cgroup directory: a malloc'd array in *pids. Count or a negative UV_E* code. */
static long cgroup_pids(const char *dir, long **pids)
{
  *pids = NULL;
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno_err();
  char *text;
  size_t len;
  int err = read_all(dfd, "cgroup.procs", &text, &len);
  close(dfd);
  if (err < 0 || text == NULL)
    return err < 0 ? err : UV_EIO;
  size_t n = orch_procfs_pids(text, len, NULL, 0);
  *pids = malloc((n ? n : 1) * sizeof **pids);
  if (*pids == NULL) {
    free(text);
    return UV_ENOMEM;
  }
  orch_procfs_pids(text, len, *pids, n);
  free(text);
  return (long)n;
}

/* SIGKILL everything in the cgroup `dir`: cgroup.kill (v2), else pids.max = 0 (v1: nothing new
 * can fork) and a SIGKILL per listed pid. Returns how many processes were listed (0 when it
 * was already empty), or a negative UV_E* code. */
static long cgroup_kill_all(const char *dir)
{
  long *pids = NULL;
  long n = cgroup_pids(dir, &pids);
  if (n <= 0 || pids == NULL) {
    free(pids);
    return n;
  }
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int done = 0;
  if (dfd >= 0) {
    done = write_at(dfd, "cgroup.kill", "1") == 0;
    if (!done)
      (void)write_at(dfd, "pids.max", "0");
    close(dfd);
  }
  if (!done)
    for (long i = 0; i < n; i++)
      if (pids[i] > 1 && pids[i] != (long)getpid())
        kill((pid_t)pids[i], SIGKILL);
  free(pids);
  return n;
}

/* Every process of /proc (zombies included, flagged by state 'Z'). A malloc'd array in *out;
 * count or a negative UV_E* code. With `tag`, *tagged[i] says whether process i carries it. */
static long proc_scan(orch_stat **out, char **tagged, const char *tag, size_t ntag)
{
  *out = NULL;
  if (tagged)
    *tagged = NULL;
  DIR *d = opendir("/proc");
  if (d == NULL)
    return errno_err();
  size_t cap = 256, n = 0;
  orch_stat *st = malloc(cap * sizeof *st);
  char *tg = tag ? malloc(cap) : NULL;
  long err = (st == NULL || (tag && tg == NULL)) ? UV_ENOMEM : 0;
  int pfd = dirfd(d);
  struct dirent *e;
  while (err == 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char path[300], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/stat", e->d_name);
    if (read_all(pfd, path, &text, &len) != 0 || text == NULL)
      continue; /* gone meanwhile */
    orch_stat s;
    int ok = orch_procfs_stat(text, len, &s) == 0;
    free(text);
    if (!ok)
      continue;
    if (n == cap) {
      orch_stat *ns = realloc(st, cap * 2 * sizeof *st);
      if (ns == NULL) {
        err = UV_ENOMEM;
        break;
      }
      st = ns;
      if (tag) {
        char *ntg = realloc(tg, cap * 2);
        if (ntg == NULL) {
          err = UV_ENOMEM;
          break;
        }
        tg = ntg;
      }
      cap *= 2;
    }
    if (tag) {
      tg[n] = 0;
      snprintf(path, sizeof path, "%s/environ", e->d_name);
      if (s.state != 'Z' && read_all(pfd, path, &text, &len) == 0 && text != NULL) {
        tg[n] = (char)orch_procfs_environ_has(text, len, tag, ntag);
        free(text);
      }
    }
    st[n++] = s;
  }
  closedir(d);
  if (err < 0) {
    free(st);
    free(tg);
    return err;
  }
  *out = st;
  if (tagged)
    *tagged = tg;
  else
    free(tg);
  return (long)n;
}

/* ------------------------------------------------------------------------------------------ */
/* Lua functions */

/* core.cgroup_find(kind) -> dir | fail: the directory of orch's own cgroup in the cgroup v2
 * hierarchy (kind 'cgroup2') or in the v1 hierarchy of controller `kind` ('pids').
 * [-0, +(1|3), v] */
static int core_cgroup_find(lua_State *L)
{
  const char *kind = luaL_checkstring(L, 1);
  int v2 = strcmp(kind, "cgroup2") == 0;
  char *text;
  size_t len;
  char root[4096], point[4096], path[4096];
  int err = read_all(AT_FDCWD, "/proc/self/mountinfo", &text, &len);
  if (err < 0 || text == NULL)
    return orch_pushfail(L, err < 0 ? err : UV_EIO, "read /proc/self/mountinfo");
  int found = orch_procfs_mount(text, len, v2 ? "cgroup2" : "cgroup", v2 ? NULL : kind, root,
                                sizeof root, point, sizeof point);
  free(text);
  if (found != 0)
    return orch_pushfail(L, UV_ENOENT, lua_pushfstring(L, "no %s hierarchy mounted", kind));
  err = read_all(AT_FDCWD, "/proc/self/cgroup", &text, &len);
  if (err < 0 || text == NULL)
    return orch_pushfail(L, err < 0 ? err : UV_EIO, "read /proc/self/cgroup");
  found = orch_procfs_cgroup_path(text, len, v2 ? NULL : kind, path, sizeof path);
  free(text);
  if (found != 0)
    return orch_pushfail(L, UV_ENOENT, lua_pushfstring(L, "no %s line in /proc/self/cgroup", kind));
  /* The mount shows the tree from `root`: the part of our path below it is what is visible. */
  const char *rel = path;
  size_t rlen = strlen(root);
  if (strcmp(root, "/") != 0 && strncmp(path, root, rlen) == 0 &&
      (path[rlen] == '/' || path[rlen] == '\0'))
    rel = path + rlen;
  while (*rel == '/')
    rel++;
  if (*rel == '\0')
    lua_pushstring(L, point);
  else
    lua_pushfstring(L, "%s/%s", point, rel);
  return 1;
}

/* core.cgroup_mkdir(path) -> true | fail (mode 0755)   [-0, +(1|3), v] */
static int core_cgroup_mkdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0755) != 0)
    return orch_pushfail(L, errno_err(), lua_pushfstring(L, "mkdir %s", path));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.cgroup_rmdir(path) -> true | fail   [-0, +(1|3), v] */
static int core_cgroup_rmdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  if (rmdir(path) != 0)
    return orch_pushfail(L, errno_err(), lua_pushfstring(L, "rmdir %s", path));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.cgroup_subdirs(path) -> {name...}: the subdirectories of a directory | fail */
static int core_cgroup_subdirs(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (d == NULL)
    return orch_pushfail(L, errno_err(), lua_pushfstring(L, "opendir %s", path));
  lua_newtable(L);
  int i = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++i);
  }
  closedir(d);
  return 1;
}

/* core.cgroup_pids(dir) -> {pid...} | fail   [-0, +(1|3), v] */
static int core_cgroup_pids(lua_State *L)
{
  const char *dir = luaL_checkstring(L, 1);
  long *pids = NULL;
  long n = cgroup_pids(dir, &pids);
  if (n < 0 || (n > 0 && pids == NULL)) {
    free(pids);
    return orch_pushfail(L, n < 0 ? (int)n : UV_EIO,
                         lua_pushfstring(L, "read %s/cgroup.procs", dir));
  }
  lua_createtable(L, (int)n, 0);
  for (long i = 0; i < n; i++) {
    lua_pushinteger(L, pids[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(pids);
  return 1;
}

/* core.cgroup_kill(dir) -> n | fail: SIGKILL everything in the cgroup; n processes were in it.
 * [-0, +(1|3), v] */
static int core_cgroup_kill(lua_State *L)
{
  const char *dir = luaL_checkstring(L, 1);
  long n = cgroup_kill_all(dir);
  if (n < 0)
    return orch_pushfail(L, (int)n, lua_pushfstring(L, "kill cgroup %s", dir));
  lua_pushinteger(L, n);
  return 1;
}

/* core.proc_list([tag]) -> {{pid, ppid, pgrp, state, start, tagged}...} | fail: every process
 * in /proc; `tagged` says whether its environment holds the entry `tag` ("NAME=value").
 * [-0, +(1|3), v] */
static int core_proc_list(lua_State *L)
{
  size_t ntag = 0;
  const char *tag = luaL_optlstring(L, 1, NULL, &ntag);
  orch_stat *st = NULL;
  char *tagged = NULL;
  long n = proc_scan(&st, tag ? &tagged : NULL, tag, ntag);
  if (n < 0 || st == NULL)
    return orch_pushfail(L, n < 0 ? (int)n : UV_EIO, "scan /proc");
  lua_createtable(L, (int)n, 0);
  for (long i = 0; i < n; i++) {
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, st[i].pid);
    lua_setfield(L, -2, "pid");
    lua_pushinteger(L, st[i].ppid);
    lua_setfield(L, -2, "ppid");
    lua_pushinteger(L, st[i].pgrp);
    lua_setfield(L, -2, "pgrp");
    lua_pushlstring(L, &st[i].state, 1);
    lua_setfield(L, -2, "state");
    lua_pushinteger(L, (lua_Integer)st[i].start);
    lua_setfield(L, -2, "start");
    if (tagged) {
      lua_pushboolean(L, tagged[i]);
      lua_setfield(L, -2, "tagged");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(st);
  free(tagged);
  return 1;
}

/* core.host_alive(pid) -> boolean: whether `pid`, a pid of the host's PID namespace, exists
 * (orch may be contained in a namespace of its own, where that pid means something else).
 * [-0, +1, v] */
static int core_host_alive(lua_State *L)
{
  lua_Integer pid = luaL_checkinteger(L, 1);
  orch_ctx *ctx = orch_ctx_get(L);
  int alive;
  if (pid <= 0 || pid > 0x7fffffff) {
    alive = 0;
  } else if (ctx->host_proc_fd >= 0) {
    char name[24];
    snprintf(name, sizeof name, "%d", (int)pid);
    alive = faccessat(ctx->host_proc_fd, name, F_OK, 0) == 0;
  } else {
    alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
  }
  lua_pushboolean(L, alive);
  return 1;
}

/* Whether any descriptor of process `pid` (a name in /proc) is one of the pipes `inodes`. */
static int holds_pipe(int procfd, const char *pid, const lua_Integer *inodes, int n)
{
  char path[300];
  snprintf(path, sizeof path, "%s/fd", pid);
  int fdd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fdd < 0)
    return 0; /* gone, or not ours to look at */
  DIR *d = fdopendir(fdd);
  if (d == NULL) {
    close(fdd);
    return 0;
  }
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(d)) != NULL) {
    char link[64];
    ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
    unsigned long long ino;
    if (len <= 0)
      continue;
    link[len] = '\0';
    if (strncmp(link, "pipe:[", 6) != 0)
      continue;
    char *end;
    ino = strtoull(link + 6, &end, 10);
    if (end == link + 6 || *end != ']')
      continue;
    for (int i = 0; i < n && !found; i++)
      found = (unsigned long long)inodes[i] == ino;
  }
  closedir(d);
  return found;
}

/* core.fd_holders({inode...}) -> {pid...}: the processes besides orch that hold one of these
 * pipes open (those whose /proc/<pid>/fd orch may read).   [-0, +1, v] */
static int core_fd_holders(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer inodes[8];
  int n = 0;
  for (lua_Integer i = 1; n < 8; i++, n++) {
    if (lua_rawgeti(L, 1, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    inodes[n] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  lua_newtable(L);
  DIR *d = opendir("/proc");
  if (d == NULL)
    return 1;
  char self[24];
  snprintf(self, sizeof self, "%d", (int)getpid());
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0)
      continue;
    if (holds_pipe(dirfd(d), e->d_name, inodes, n)) {
      lua_pushinteger(L, strtol(e->d_name, NULL, 10));
      lua_rawseti(L, -2, ++count);
    }
  }
  closedir(d);
  return 1;
}

/* core.getpgid(pid) -> pgid | fail   [-0, +(1|3), v] */
static int core_getpgid(lua_State *L)
{
  lua_Integer pid = luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, 1, "pid out of range");
  pid_t pg = getpgid((pid_t)pid);
  if (pg < 0)
    return orch_pushfail(L, errno_err(), lua_pushfstring(L, "getpgid %d", (int)pid));
  lua_pushinteger(L, pg);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "host_alive", core_host_alive },
  { "cgroup_find", core_cgroup_find },
  { "cgroup_pids", core_cgroup_pids },
  { "cgroup_kill", core_cgroup_kill },
  { "cgroup_mkdir", core_cgroup_mkdir },
  { "cgroup_rmdir", core_cgroup_rmdir },
  { "cgroup_subdirs", core_cgroup_subdirs },
  { "proc_list", core_proc_list },
  { "fd_holders", core_fd_holders },
  { "getpgid", core_getpgid },
  { NULL, NULL },
};

void orch_track_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
