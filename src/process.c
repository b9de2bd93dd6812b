/* process.c: core.spawn() and the reaping of children and orphans.
 *
 * orch forks its children itself (vfork, or clone for a new PID namespace) instead of
 * uv_spawn, because libuv offers no hook for what every child needs between fork and exec:
 * setsid, supplementary groups, PR_SET_PDEATHSIG and closing inherited descriptors. Since
 * orch never calls uv_spawn, libuv owns no child, and one SIGCHLD watcher reaps them all:
 * waitid(WNOWAIT) peeks at an exited child, then waitpid() reaps exactly that pid. Pids in the
 * process table are ours; any other pid is an orphan handed to us as a subreaper. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "spawn.h"

static const char PROCS_KEY = 'p'; /* registry: pid -> process userdata, until reaped */

typedef struct orch_proc {
  orch_ctx *ctx;    /* borrowed: outlives every process */
  pid_t pid;        /* 0 once reaped */
  pid_t host_pid;   /* the pid as the host sees it (differs from pid when orch is contained) */
  int exit_code;    /* valid once exited */
  int term_signal;  /* 0 unless killed by a signal */
  int exited;       /* reaped */
  int done;         /* exit callback delivered (or detached) */
  int group;        /* leads its own process group (setsid) */
  int self_ref;     /* anchors the userdata until done */
  int exit_ref;     /* on_exit callback, LUA_NOREF once called or closed */
  int out_ref;      /* stdout chunk callback or LUA_NOREF */
  int err_ref;      /* stderr chunk callback or LUA_NOREF */
  uv_pipe_t *out;   /* malloc'd; freed in its close callback; NULL when none or closed */
  uv_pipe_t *err;   /* same for stderr */
  orch_track track; /* processes that left the group (track.c); signalled with it */
} orch_proc;

static void proc_unref_all(lua_State *L, orch_proc *p)
{
  luaL_unref(L, LUA_REGISTRYINDEX, p->exit_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->out_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->err_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, p->self_ref);
  p->exit_ref = p->out_ref = p->err_ref = p->self_ref = LUA_NOREF;
}

static void close_pipe(uv_pipe_t **pp)
{
  if (*pp == NULL)
    return;
  (*pp)->data = NULL;
  uv_close((uv_handle_t *)*pp, (uv_close_cb)free);
  *pp = NULL;
}

/* Deliver on_exit(code, signal) once the child is reaped and every pipe hit EOF. */
static void proc_maybe_done(orch_proc *p)
{
  if (p->done || !p->exited || p->out != NULL || p->err != NULL)
    return;
  p->done = 1;
  lua_State *L = p->ctx->L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref); /* keeps the body alive during the call */
  if (p->exit_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->exit_ref);
    if (p->term_signal) {
      lua_pushnil(L);
      const char *name = orch_signal_name(p->term_signal);
      if (name)
        lua_pushstring(L, name);
      else
        lua_pushinteger(L, p->term_signal);
    } else {
      lua_pushinteger(L, p->exit_code);
      lua_pushnil(L);
    }
    proc_unref_all(L, p);
    orch_call(p->ctx, 2);
  } else {
    proc_unref_all(L, p);
  }
  lua_settop(L, base);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  buf->base = malloc(65536);
  buf->len = buf->base ? 65536 : 0;
}

/* A chunk (or EOF) from stdout or stderr: pass it to its callback. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  orch_proc *p = s->data;
  if (p == NULL || nread == 0) {
    free(buf->base);
    return;
  }
  int is_out = (uv_pipe_t *)s == p->out;
  int ref = is_out ? p->out_ref : p->err_ref;
  lua_State *L = p->ctx->L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->self_ref);
  if (nread > 0 && ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L, buf->base, (size_t)nread);
    free(buf->base);
    orch_call(p->ctx, 1);
    lua_settop(L, base);
    return;
  }
  free(buf->base);
  if (nread < 0) { /* EOF or a read error: either way this stream is finished */
    close_pipe(is_out ? &p->out : &p->err);
    if (ref != LUA_NOREF) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
      lua_pushnil(L);
      orch_call(p->ctx, 1);
    }
    proc_maybe_done(p);
  }
  lua_settop(L, base);
}

/* The child `pid` has been reaped with `status`. */
static void proc_exited(orch_proc *p, int status)
{
  p->exited = 1;
  if (WIFSIGNALED(status))
    p->term_signal = WTERMSIG(status);
  else
    p->exit_code = WEXITSTATUS(status);
  /* The leader is gone: what is left of its group would hold the pipes open for ever; so
   * would what left the group, a setsid'd grandchild, when it is tracked. */
  if (p->group) {
    kill(-p->pid, SIGKILL);
    orch_watch_group(p->pid, 0); /* every member has a SIGKILL pending */
  }
  (void)orch_track_signal(&p->track, 0, SIGKILL);
  p->pid = 0;
  proc_maybe_done(p);
}

static void sigchld_refresh(orch_ctx *ctx)
{
  if (ctx->sigchld == NULL)
    return;
  if (ctx->live_procs > 0)
    uv_ref((uv_handle_t *)ctx->sigchld);
  else
    uv_unref((uv_handle_t *)ctx->sigchld);
}

static void on_sigchld(uv_signal_t *s, int signum)
{
  (void)signum;
  orch_ctx *ctx = s->data;
  if (ctx == NULL)
    return;
  lua_State *L = ctx->L;
  for (;;) {
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
      break;
    int status;
    pid_t pid = si.si_pid;
    if (waitpid(pid, &status, WNOHANG) != pid)
      break;
    int base = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PROCS_KEY);
    lua_rawgeti(L, -1, pid);
    orch_proc *p = lua_touserdata(L, -1);
    if (p != NULL) {
      lua_pushnil(L);
      lua_rawseti(L, -3, pid);
      ctx->live_procs--;
      proc_exited(p, status);
    } else {
      ctx->orphans++;
    }
    lua_settop(L, base);
  }
  sigchld_refresh(ctx);
}

/* Start the SIGCHLD watcher once per ctx.   [-0, +0, -] */
static int sigchld_start(orch_ctx *ctx)
{
  if (ctx->sigchld != NULL)
    return 0;
  uv_signal_t *s = malloc(sizeof *s);
  if (s == NULL)
    return UV_ENOMEM;
  uv_signal_init(&ctx->loop, s);
  s->data = ctx;
  int err = uv_signal_start(s, on_sigchld, SIGCHLD);
  if (err < 0) {
    uv_close((uv_handle_t *)s, (uv_close_cb)free);
    return err;
  }
  ctx->sigchld = s;
  sigchld_refresh(ctx);
  return 0;
}

void orch_process_shutdown(orch_ctx *ctx)
{
  if (ctx->sigchld != NULL) {
    ctx->sigchld->data = NULL;
    uv_close((uv_handle_t *)ctx->sigchld, (uv_close_cb)free);
    ctx->sigchld = NULL;
  }
}

/* Make a stdio setting at opts[field]: 'inherit', 'ignore' or a chunk callback. On a callback,
 * stores its ref and creates the pipe whose write end goes to the child.
 * [-0, +0, v] */
static const char *const STDIO_MODES[] = { "inherit", "ignore", NULL };

static int stdio_setup(lua_State *L, int opts, const char *field, int *ref, int *child_fd,
                       int *parent_fd)
{
  const char *const *modes = STDIO_MODES;
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
  int mode = lua_isnil(L, -1) ? 0 : luaL_checkoption(L, -1, NULL, modes);
  lua_pop(L, 1);
  if (mode == 1) {
    *child_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (*child_fd < 0)
      return uv_translate_sys_error(errno);
  }
  return 0;
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

/* Resolve opts.user (a name, a uid or "uid:gid") into req: raises on misuse; an unknown
 * user returns UV_EINVAL with *fail describing it (left on the stack).   [-0, +(0|1), v] */
static int read_user(lua_State *L, int opts, orch_spawn_req *req, const char **fail)
{
  lua_getfield(L, opts, "user");
  int t = lua_type(L, -1);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  struct passwd *pw = NULL;
  long uid = -1, gid = -1;
  if (t == LUA_TNUMBER) {
    uid = (long)luaL_checkinteger(L, -1);
    pw = getpwuid((uid_t)uid);
  } else {
    const char *spec = luaL_checkstring(L, -1);
    char *end;
    uid = strtol(spec, &end, 10);
    if (end != spec && *end == ':' && end[1] != '\0') {
      char *end2;
      gid = strtol(end + 1, &end2, 10);
      if (*end2 != '\0' || gid < 0)
        gid = -2;
      pw = getpwuid((uid_t)uid);
    } else if (end != spec && *end == '\0') {
      pw = getpwuid((uid_t)uid);
    } else {
      pw = getpwnam(spec);
      uid = pw ? (long)pw->pw_uid : -1;
    }
    if (uid < 0 || gid == -2) {
      *fail = lua_pushfstring(L, "unknown user '%s'", spec);
      lua_insert(L, -2);
      lua_pop(L, 1);
      return UV_EINVAL;
    }
  }
  if (gid < 0)
    gid = pw ? (long)pw->pw_gid : uid;
  req->uid = (uid_t)uid;
  req->gid = (gid_t)gid;
  req->set_user = 1;
  if (pw != NULL) {
    int n = 32;
    for (;;) {
      gid_t *groups = realloc(req->groups, sizeof(gid_t) * (size_t)n);
      if (groups == NULL)
        break;
      req->groups = groups;
      int got = n;
      if (getgrouplist(pw->pw_name, req->gid, groups, &got) >= 0) {
        req->ngroups = got;
        break;
      }
      n = got > n ? got : n * 2;
    }
  }
  lua_pop(L, 1);
  return 0;
}

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

static void req_free(orch_spawn_req *req)
{
  if (req->cgroup_fd >= 0)
    close(req->cgroup_fd);
  req->cgroup_fd = -1;
  if (req->cgroup_dir_fd >= 0)
    close(req->cgroup_dir_fd);
  req->cgroup_dir_fd = -1;
  free(req->groups); /* argv and envp are userdata on the stack (push_ptr_array) */
  free(req->file);
  for (int i = 0; i < 3; i++)
    if (req->child_fd[i] >= 0)
      close(req->child_fd[i]);
}

/* core.spawn(argv, opts, on_exit) -> proc | nil, msg, CODE   [-0, +(1|3), v] */
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
  const char *fail = NULL;
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
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, 2, i ? "stderr" : "stdout");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
      luaL_checkoption(L, -1, NULL, STDIO_MODES);
    lua_pop(L, 1);
  }
  read_argv(L, &req);
  read_env(L, 2, &req);
  lua_getfield(L, 2, "cwd");
  req.cwd = luaL_optstring(L, -1, NULL);
  lua_pop(L, 1); /* borrowed from opts */
  lua_getfield(L, 2, "setsid");
  req.setsid = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "pidns");
  req.pidns = lua_toboolean(L, -1);
  lua_pop(L, 1);
  size_t ntag = 0;
  lua_getfield(L, 2, "tag");
  const char *tag = luaL_optlstring(L, -1, NULL, &ntag);
  lua_getfield(L, 2, "cgroup");
  req.cgroup = luaL_optstring(L, -1, NULL);
  lua_pop(L, 2); /* borrowed from opts */
  int err = read_user(L, 2, &req, &fail);
  if (err == 0 && req.cgroup != NULL) {
    req.cgroup_dir_fd = open(req.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (req.cgroup_dir_fd < 0) {
      err = uv_translate_sys_error(errno);
      fail = lua_pushfstring(L, "join cgroup '%s'", req.cgroup);
    }
  }
  if (err == 0)
    err = orch_spawn_resolve(&req, &fail);
  if (err == 0)
    err = stdio_setup(L, 2, "stdout", &out_ref, &req.child_fd[1], &parent_out);
  if (err == 0)
    err = stdio_setup(L, 2, "stderr", &err_ref, &req.child_fd[2], &parent_err);
  if (err == 0)
    err = sigchld_start(ctx);
  if (err == 0)
    err = orch_spawn_exec(&req, &fail);
  if (err < 0) {
    const char *what = lua_pushfstring(L, "spawn '%s'", req.argv[0]);
    int plain = fail != NULL && strncmp(fail, "unknown user", 12) == 0;
    if (fail != NULL)
      what = lua_pushfstring(L, "%s: %s", what, fail);
    req_free(&req);
    if (parent_out >= 0)
      close(parent_out);
    if (parent_err >= 0)
      close(parent_err);
    luaL_unref(L, LUA_REGISTRYINDEX, out_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, err_ref);
    if (!plain)
      return orch_pushfail(L, err, what);
    luaL_pushfail(L);
    lua_pushstring(L, what);
    lua_pushstring(L, uv_err_name(err));
    return 3;
  }
  orch_proc *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->pid = req.pid;
  p->host_pid = req.host_pid;
  p->group = req.setsid;
  p->out_ref = out_ref;
  p->err_ref = err_ref;
  if (req.cgroup != NULL)
    p->track.cgroup = strdup(req.cgroup);
  else if (tag != NULL && (p->track.tag = malloc(ntag + 1)) != NULL) {
    memcpy(p->track.tag, tag, ntag + 1);
    p->track.ntag = ntag;
  }
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
  sigchld_refresh(ctx);
  if (p->group)
    orch_watch_group(p->pid, 1);
  req_free(&req);
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

/* proc:kill([sig]) -> true | fail: the whole group when the child leads one.  [-0,+(1|3),v] */
static int proc_kill(lua_State *L)
{
  orch_proc *p = check_proc(L);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : orch_signal_check(L, 2);
  if (p->pid == 0)
    return orch_pushfail(L, UV_ESRCH, "kill");
  int err = uv_kill(p->group ? -p->pid : p->pid, signum);
  if (err == UV_ESRCH && p->group) /* group already empty but the leader not yet reaped */
    err = uv_kill(p->pid, signum);
  (void)orch_track_signal(&p->track, p->pid, signum);
  if (err < 0)
    return orch_pushfail(L, err, lua_pushfstring(L, "kill %d", (int)p->pid));
  lua_pushboolean(L, 1);
  return 1;
}

/* proc:close(): detach callbacks; a live group is SIGKILLed (and still reaped). [-0,+0,-] */
static int proc_close(lua_State *L)
{
  orch_proc *p = check_proc(L);
  if (p->pid != 0 && !p->exited && p->exit_ref != LUA_NOREF) {
    kill(p->group ? -p->pid : p->pid, SIGKILL);
    (void)orch_track_signal(&p->track, p->pid, SIGKILL);
  }
  close_pipe(&p->out);
  close_pipe(&p->err);
  if (!p->done) {
    p->done = 1;
    proc_unref_all(L, p);
  }
  return 0;
}

/* __gc: close, then forget the tracking state.   [-0, +0, -] */
static int proc_gc(lua_State *L)
{
  proc_close(L);
  orch_track_free(&check_proc(L)->track);
  return 0;
}

/* proc:tracked([sig]) -> n | fail: how many processes of the child besides the leader are still
 * tracked (its cgroup, or its tag and descendants), after sending them `sig` when given.
 * [-0, +(1|3), v] */
static int proc_tracked(lua_State *L)
{
  orch_proc *p = check_proc(L);
  int signum = lua_isnoneornil(L, 2) ? 0 : orch_signal_check(L, 2);
  long n = orch_track_signal(&p->track, p->exited ? 0 : p->pid, signum);
  if (n < 0)
    return orch_pushfail(L, (int)n, "tracked processes");
  lua_pushinteger(L, n);
  return 1;
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

/* core.set_subreaper() -> true | fail: orphaned descendants are re-parented to orch. */
static int core_set_subreaper(lua_State *L)
{
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "prctl(PR_SET_CHILD_SUBREAPER)");
  int err = sigchld_start(orch_ctx_get(L));
  if (err < 0)
    return orch_pushfail(L, err, "signal SIGCHLD");
  lua_pushboolean(L, 1);
  return 1;
}

static int core_orphans_reaped(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)orch_ctx_get(L)->orphans);
  return 1;
}

static const luaL_Reg proc_methods[] = {
  { "pid", proc_pid },         { "host_pid", proc_host_pid }, { "kill", proc_kill },
  { "tracked", proc_tracked }, { "close", proc_close },       { NULL, NULL },
};

static const luaL_Reg proc_meta[] = {
  { "__gc", proc_gc },
  { "__close", proc_close },
  { "__tostring", proc_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "spawn", core_spawn },
  { "set_subreaper", core_set_subreaper },
  { "orphans_reaped", core_orphans_reaped },
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
}
