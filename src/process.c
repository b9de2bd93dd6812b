/* process.c: core.spawn() and the process userdata: its exit and its pipes, told to Lua.
 *
 * orch forks its children itself (vfork, or clone for a new PID namespace) instead of
 * uv_spawn, because libuv offers no hook for what every child needs between fork and exec:
 * setsid, supplementary groups, PR_SET_PDEATHSIG and closing inherited descriptors. Since
 * orch never calls uv_spawn, libuv owns no child: reap.c's one SIGCHLD watcher reaps them all
 * and hands each of ours back here (orch_process_reaped). Pids in the process table are ours.
 *
 * Mechanism only: the reaping of the leader and the end of each pipe reach Lua as separate
 * events, and proc:kill() still reaches what is left of the leader's group after it is gone.
 * What to do with that rest (SIGTERM, a timeout, SIGKILL) is orch.process's policy. The Lua
 * options are read in spawn_opts.c, the fork/exec is spawn.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "reap.h"
#include "spawn.h"
#include "spawn_opts.h"

static const char PROCS_KEY = 'p'; /* registry: pid -> process userdata, until reaped */

typedef struct orch_proc {
  orch_ctx *ctx;  /* borrowed: outlives every process */
  pid_t pid;      /* 0 once reaped */
  pid_t host_pid; /* the pid as the host sees it (differs from pid when orch is contained) */
  pid_t pgid;     /* the process group it leads (setsid), 0 when none or once found empty */
  int exited;     /* reaped */
  int self_ref;   /* anchors the userdata until reaped and both pipes are closed */
  int exit_ref;   /* on_exit callback, LUA_NOREF once called or closed */
  int out_ref;    /* stdout chunk callback or LUA_NOREF */
  int err_ref;    /* stderr chunk callback or LUA_NOREF */
  uv_pipe_t *out; /* malloc'd; freed in its close callback; NULL when none or closed */
  uv_pipe_t *err; /* same for stderr */
} orch_proc;

static void close_pipe(uv_pipe_t **pp)
{
  if (*pp == NULL)
    return;
  (*pp)->data = NULL;
  uv_close((uv_handle_t *)*pp, (uv_close_cb)free);
  *pp = NULL;
}

/* The leader's group, found empty: the watcher (orch_watch_group) forgets it, and its number,
 * which may be recycled, is never signalled again.   [-0, +0, -] */
static void proc_group_gone(orch_proc *p)
{
  orch_watch_group(p->pgid, 0);
  p->pgid = 0;
}

/* Once reaped with both pipes closed, nothing more can be delivered: drop the anchor (an empty
 * group is forgotten now; one with members left is, when a signal finds it empty).
 * [-0, +0, -] */
static void proc_maybe_release(lua_State *L, orch_proc *p)
{
  if (!p->exited || p->out != NULL || p->err != NULL)
    return;
  if (p->pgid != 0 && kill(-p->pgid, 0) != 0 && errno == ESRCH)
    proc_group_gone(p);
  luaL_unref(L, LUA_REGISTRYINDEX, p->out_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->self_ref);
  p->out_ref = p->err_ref = p->self_ref = LUA_NOREF;
}

/* One read buffer for every pipe: libuv calls on_read right after each read, which copies the
 * bytes into a Lua string before the next read (a malloc and free of 64 KiB per read, and the
 * page faults of fresh memory: about 5 % of orch's CPU under 100 chatty daemons). */
static char read_buf[65536];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  buf->base = read_buf;
  buf->len = sizeof read_buf;
}

/* A chunk from stdout or stderr, or its end (EOF or a read error: nil), for its callback. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  orch_proc *p = s->data;
  (void)buf;
  if (p == NULL || nread == 0)
    return;
  int is_out = (uv_pipe_t *)s == p->out;
  int ref = is_out ? p->out_ref : p->err_ref;
  lua_State *L = p->ctx->L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref); /* keeps the body alive during the call */
  if (nread > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L, read_buf, (size_t)nread);
    orch_call(p->ctx, 1);
    lua_settop(L, base);
    return;
  }
  close_pipe(is_out ? &p->out : &p->err);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_pushnil(L);
  orch_call(p->ctx, 1);
  proc_maybe_release(L, p);
  lua_settop(L, base);
}

/* The leader has been reaped with `status`: on_exit(code, signal) at once. What is left of its
 * group, and whatever holds its pipes, is the caller's to deal with (orch.process).
 * [-0, +0, -] */
static void proc_exited(orch_proc *p, int status)
{
  lua_State *L = p->ctx->L;
  int base = lua_gettop(L);
  p->exited = 1;
  p->pid = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref);
  if (p->exit_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->exit_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, p->exit_ref);
    p->exit_ref = LUA_NOREF;
    if (WIFSIGNALED(status)) {
      lua_pushnil(L);
      const char *name = orch_signal_name(WTERMSIG(status));
      if (name)
        lua_pushstring(L, name);
      else
        lua_pushinteger(L, WTERMSIG(status));
    } else {
      lua_pushinteger(L, WEXITSTATUS(status));
      lua_pushnil(L);
    }
    orch_call(p->ctx, 2);
  }
  proc_maybe_release(L, p);
  lua_settop(L, base);
}

/* The child `pid` was reaped with `status` (reap.c): 1 when it is one of ours, now told to
 * Lua; 0 for an orphan.   [-0, +0, -] */
int orch_process_reaped(orch_ctx *ctx, pid_t pid, int status)
{
  lua_State *L = ctx->L;
  int base = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &PROCS_KEY);
  lua_rawgeti(L, -1, pid);
  orch_proc *p = lua_touserdata(L, -1);
  if (p != NULL) {
    lua_pushnil(L);
    lua_rawseti(L, -3, pid);
    ctx->live_procs--;
    proc_exited(p, status);
  }
  lua_settop(L, base);
  return p != NULL;
}

static int open_pipe(orch_proc *p, uv_pipe_t **pp, int fd)
{
  uv_pipe_t *pipe = malloc(sizeof *pipe);
  if (pipe == NULL)
    return UV_ENOMEM;
  uv_pipe_init(&p->ctx->loop, pipe, 0);
  int err = uv_pipe_open(pipe, fd);
  if (err == 0)
    err = uv_read_start((uv_stream_t *)pipe, on_alloc, on_read);
  pipe->data = p;
  *pp = pipe;
  if (err < 0)
    close_pipe(pp);
  return err;
}

/* The failure of a spawn: nil, "spawn 'argv0'[: detail]: reason", CODE, stage (the step that
 * failed, a fixed name Lua may branch on: "exec", "cwd", "cgroup", "user", ...).
 * [-0, +4, m] */
static int spawn_fail(lua_State *L, orch_spawn_req *req, int err, const char *detail)
{
  const char *what = lua_pushfstring(L, "spawn '%s'", req->argv[0]);
  if (detail != NULL)
    what = lua_pushfstring(L, "%s: %s", what, detail);
  orch_pushfail(L, err, what);
  lua_pushstring(L, req->stage ? req->stage : "spawn");
  return 4;
}

/* Open the cgroup directory the child starts in.   [-0, +0, -] */
static int open_cgroup(orch_spawn_req *req, const char **detail)
{
  if (req->cgroup == NULL)
    return 0;
  req->cgroup_dir_fd = open(req->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (req->cgroup_dir_fd >= 0)
    return 0;
  snprintf(req->detail, sizeof req->detail, "join cgroup '%s'", req->cgroup);
  *detail = req->detail;
  req->stage = "cgroup";
  return uv_translate_sys_error(errno);
}

/* The new process userdata for a started child, registered for reaping.   [-0, +1, m] */
static orch_proc *proc_new(lua_State *L, orch_ctx *ctx, orch_spawn_req *req, int out_ref,
                           int err_ref)
{
  orch_proc *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->pid = req->pid;
  p->host_pid = req->host_pid;
  p->pgid = req->setsid ? req->pid : 0;
  p->out_ref = out_ref;
  p->err_ref = err_ref;
  lua_pushvalue(L, 3);
  p->exit_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_setmetatable(L, ORCH_PROCESS_MT);
  lua_pushvalue(L, -1);
  p->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &PROCS_KEY);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, p->pid);
  lua_pop(L, 1);
  ctx->live_procs++;
  if (p->pgid != 0)
    orch_watch_group(p->pgid, 1); /* killed by the watcher should orch die */
  orch_sigchld_refresh(ctx);
  return p;
}

/* core.spawn(argv, opts, on_exit) -> proc | nil, msg, CODE, stage
 * on_exit(code, signal) runs once the child is reaped; opts.stdout/stderr callbacks get each
 * chunk, then nil at the end of the pipe. The three are separate events, in any order.
 * [-0, +(1|4), v] */
static int core_spawn(lua_State *L)
{
  orch_ctx *ctx = orch_ctx_get(L);
  orch_spawn_req req;
  memset(&req, 0, sizeof req);
  req.child_fd[0] = req.child_fd[1] = req.child_fd[2] = -1;
  req.host_proc_fd = ctx->host_proc_fd;
  req.cgroup_fd = -1;
  req.cgroup_dir_fd = -1;
  int parent_out = -1, parent_err = -1, out_ref = LUA_NOREF, err_ref = LUA_NOREF;
  const char *detail = NULL;
  /* Every check that can raise comes before anything is allocated or opened (argv and envp
   * are collectable userdata): a misuse leaks nothing. */
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  else {
    lua_newtable(L);
    lua_replace(L, 2);
  }
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  orch_spawn_opts_read(L, &req); /* raises on misuse; may allocate req.groups (freed below) */
  int err = open_cgroup(&req, &detail);
  if (err == 0)
    err = orch_spawn_resolve(&req, &detail);
  if (err == 0)
    err = orch_spawn_stdio(L, 2, "stdout", &out_ref, &req.child_fd[1], &parent_out);
  if (err == 0)
    err = orch_spawn_stdio(L, 2, "stderr", &err_ref, &req.child_fd[2], &parent_err);
  if (err == 0)
    err = orch_sigchld_start(ctx);
  if (err == 0)
    err = orch_spawn_exec(&req, &detail);
  if (err < 0) {
    int n = spawn_fail(L, &req, err, detail);
    orch_spawn_req_free(&req);
    if (parent_out >= 0)
      close(parent_out);
    if (parent_err >= 0)
      close(parent_err);
    luaL_unref(L, LUA_REGISTRYINDEX, out_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, err_ref);
    return n;
  }
  orch_spawn_req_free(&req);
  orch_proc *p = proc_new(L, ctx, &req, out_ref, err_ref);
  /* A pipe that cannot be watched is closed: the child then sees EPIPE, never a hang. */
  if (parent_out >= 0 && open_pipe(p, &p->out, parent_out) < 0)
    close(parent_out);
  if (parent_err >= 0 && open_pipe(p, &p->err, parent_err) < 0)
    close(parent_err);
  return 1;
}

static orch_proc *check_proc(lua_State *L)
{
  return luaL_checkudata(L, 1, ORCH_PROCESS_MT);
}

static int proc_pid(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pid == 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, p->pid);
  return 1;
}

/* proc:host_pid() -> the pid as seen outside orch's PID namespace (nil once reaped). */
static int proc_host_pid(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pid == 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, p->host_pid);
  return 1;
}

/* proc:pgid() -> the process group the child leads, nil when none (or once found empty). */
static int proc_pgid(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pgid == 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, p->pgid);
  return 1;
}

/* proc:kill([sig]) -> true | fail: the whole group when the child leads one, the child
 * otherwise. After the leader is reaped, what is left of its group, until a signal finds it
 * empty (ESRCH; the group number is then never used again: it may be recycled). Signal 0
 * only asks whether anything is left.   [-0, +(1|3), v] */
static int proc_kill(lua_State *L)
{
  orch_proc *p = check_proc(L);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : orch_signal_check(L, 2);
  int err = UV_ESRCH;
  if (p->pgid != 0) {
    err = uv_kill(-p->pgid, signum);
    if (err == UV_ESRCH && p->pid != 0) /* group empty but the leader not yet reaped */
      err = uv_kill(p->pid, signum);
    else if (err == UV_ESRCH)
      proc_group_gone(p);
  } else if (p->pid != 0) {
    err = uv_kill(p->pid, signum);
  }
  if (err < 0)
    return orch_pushfail(L, err, lua_pushfstring(L, "kill %d", (int)(p->pid ? p->pid : p->pgid)));
  lua_pushboolean(L, 1);
  return 1;
}

/* proc:pipes() -> {inode...}: the pipes from the child that orch still reads (the inode of
 * each, to find who else holds it: core.fd_holders).   [-0, +1, m] */
static int proc_pipes(lua_State *L)
{
  orch_proc *p = check_proc(L);
  uv_pipe_t *pipes[2] = { p->out, p->err };
  int n = 0;
  lua_createtable(L, 2, 0);
  for (int i = 0; i < 2; i++) {
    uv_os_fd_t fd;
    struct stat st;
    if (pipes[i] != NULL && uv_fileno((uv_handle_t *)pipes[i], &fd) == 0 && fstat(fd, &st) == 0) {
      lua_pushinteger(L, (lua_Integer)st.st_ino);
      lua_rawseti(L, -2, ++n);
    }
  }
  return 1;
}

/* proc:close_pipes(): stop reading the child's pipes and close orch's ends (the writers then
 * get EPIPE); their callbacks get no end-of-pipe call.   [-0, +0, -] */
static int proc_close_pipes(lua_State *L)
{
  orch_proc *p = check_proc(L);
  close_pipe(&p->out);
  close_pipe(&p->err);
  proc_maybe_release(L, p);
  return 0;
}

/* proc:close(): detach every callback; a live child (its group) is SIGKILLed, and still reaped.
 * [-0, +0, -] */
static int proc_close(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pid != 0 && p->exit_ref != LUA_NOREF)
    kill(p->pgid ? -p->pgid : p->pid, SIGKILL);
  close_pipe(&p->out);
  close_pipe(&p->err);
  luaL_unref(L, LUA_REGISTRYINDEX, p->exit_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->out_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->self_ref);
  p->exit_ref = p->out_ref = p->err_ref = p->self_ref = LUA_NOREF;
  return 0;
}

static int proc_tostring(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pid)
    lua_pushfstring(L, ORCH_PROCESS_MT " (pid %d)", (int)p->pid);
  else
    lua_pushliteral(L, ORCH_PROCESS_MT " (exited)");
  return 1;
}

static const luaL_Reg proc_methods[] = {
  { "pid", proc_pid },     { "host_pid", proc_host_pid },
  { "pgid", proc_pgid },   { "kill", proc_kill },
  { "pipes", proc_pipes }, { "close_pipes", proc_close_pipes },
  { "close", proc_close }, { NULL, NULL },
};

static const luaL_Reg proc_meta[] = {
  { "__gc", proc_close },
  { "__close", proc_close },
  { "__tostring", proc_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "spawn", core_spawn },
  { NULL, NULL },
};

void orch_process_open(lua_State *L)
{
  orch_new_type(L, ORCH_PROCESS_MT, proc_meta, proc_methods);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &PROCS_KEY) != LUA_TTABLE) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PROCS_KEY);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  orch_reap_open(L);
}
