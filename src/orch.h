/* orch core: the single internal header shared by the C sources. */
#ifndef ORCH_H
#define ORCH_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#define ORCH_TIMER_MT   "orch.timer"
#define ORCH_SIGNAL_MT  "orch.signal"
#define ORCH_PROCESS_MT "orch.process"
#define ORCH_PROBE_MT   "orch.probe"
#define ORCH_CTX_MT     "orch.ctx"

/* The one process-wide state: the loop and what hangs off it. Lives in a userdata anchored in
 * the registry; its __gc (run last at lua_close) closes every leftover handle. */
typedef struct orch_ctx {
  uv_loop_t loop;
  lua_State *L;          /* main thread; callbacks run on it */
  int running;           /* inside core.run() */
  int error_ref;         /* registry ref of the first error escaping a callback, or LUA_NOREF */
  uv_signal_t *sigchld;  /* owned by reap.c; freed in its close callback */
  int live_procs;        /* processes not yet reaped; keeps sigchld referenced */
  unsigned long orphans; /* orphans reaped so far (not started by us) */
  int host_proc_fd;      /* O_PATH fd of the host's /proc once contained (contain.c), else -1 */
  void *http;            /* owned by probe_http.c (curl multi state); freed by orch_http_close */
} orch_ctx;

/* Common head of every handle userdata. */
typedef struct orch_handle {
  uv_handle_t *uv; /* malloc'd, owned by C, freed in the close callback; NULL once closed */
  orch_ctx *ctx;   /* borrowed: the ctx outlives every handle */
  const char *mt;  /* metatable name, static storage */
  int self_ref;    /* registry ref anchoring the userdata while a callback can arrive */
  int cb_ref;      /* registry ref of the Lua callback, or LUA_NOREF */
} orch_handle;

/* The head of every orch.probe userdata (probe_net.c: tcp_connect, probe_http.c: http_get).
 * probe_net.c owns the metatable; its methods dispatch through `cancel`. */
typedef struct orch_probe {
  orch_handle base; /* base.uv stays NULL: a probe owns several libuv objects, see each kind */
  void (*cancel)(struct orch_probe *p); /* stops everything in flight; NULL once finished */
  int closed;                           /* :close() or __gc ran */
} orch_probe;

/* Push a new probe userdata of `size` bytes (>= sizeof(orch_probe)) whose callback is the
 * function at `cb_idx`, anchored until it finishes or is closed.   [-0, +1, m] */
orch_probe *orch_probe_new(lua_State *L, size_t size, int cb_idx, void (*cancel)(orch_probe *p));

/* probe:close(): cancel what is in flight (the callback will never run), drop the anchor and the
 * callback; idempotent.   [-0, +0, -] */
void orch_probe_close(lua_State *L, orch_probe *p);

/* The probe has finished: push its callback onto ctx->L, with the userdata below it so a close()
 * inside the callback cannot free it, and drop its anchor and callback refs. Returns the stack
 * base to restore after orch_call, or -1 (nothing pushed) when it was closed.   [-0, +2, -] */
int orch_probe_push_done(orch_probe *p);

/* core.c */
orch_ctx *orch_ctx_get(lua_State *L);
int orch_pushfail(lua_State *L, int err, const char *what);
/* Call the function below `nargs` arguments on ctx->L in protected mode. An error is kept as the
 * loop's first error and stops the loop; core.run() re-raises it. Pops function and arguments.
 * [-(nargs+1), +0, -] */
int orch_call(orch_ctx *ctx, int nargs);

/* handle.c */
orch_handle *orch_handle_new(lua_State *L, const char *mt, size_t size);
void orch_handle_attach(orch_handle *h, uv_handle_t *uv);
orch_handle *orch_handle_check(lua_State *L, int idx, const char *mt);
void orch_handle_set_cb(lua_State *L, orch_handle *h, int self_idx, int cb_idx);
void orch_handle_unanchor(lua_State *L, orch_handle *h);
/* Push the userdata and its callback onto ctx->L; returns the stack base to restore, or -1
 * (nothing pushed) when the handle has no callback.   [-0, +2, -] */
int orch_handle_push_cb(orch_handle *h);
void orch_handle_close(lua_State *L, orch_handle *h);
int orch_handle_tostring(lua_State *L);
void orch_new_type(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods);

/* signal.c */
/* The signals main.c blocks until orch.cli has handlers for them (core.unblock_signals). */
void orch_early_signals(sigset_t *set);
int orch_signal_check(lua_State *L, int idx);
const char *orch_signal_name(int signum);

/* The openers: each adds its constructors to the module table on top of the stack. */
void orch_timer_open(lua_State *L);
void orch_signal_open(lua_State *L);
void orch_process_open(lua_State *L);
void orch_probe_net_open(lua_State *L);
void orch_notify_open(lua_State *L);
void orch_notify_recv_open(lua_State *L);
void orch_fd_pipe_open(lua_State *L);
void orch_contain_open(lua_State *L);
void orch_probe_http_open(lua_State *L);
void orch_stream_open(lua_State *L);
void orch_outbuf_open(lua_State *L);
void orch_fs_open(lua_State *L);
void orch_fswatch_open(lua_State *L);
void orch_tty_open(lua_State *L);
void orch_rlimit_open(lua_State *L);
void orch_http_close(orch_ctx *ctx);

/* track.c: the facts of process tracking (cgroups, /proc); orch.track decides. */
void orch_track_open(lua_State *L);
void orch_preempt_open(lua_State *L);

/* watch.c: the watcher of an uncontained orch. process.c reports each process group it
 * creates (`alive` 1) and each one that is gone, its leader reaped and the rest SIGKILLed (0). */
void orch_watch_group(pid_t pgid, int alive);
/* SIGKILL every process group, cgroup and tagged process listed so far (relay_watch.c). */
void orch_watch_kill_all(void);
void orch_watch_open(lua_State *L);

/* process.c: called from the ctx finaliser */
void orch_process_shutdown(orch_ctx *ctx);

int luaopen_orch_core(lua_State *L);

#endif
