/* signal.c: core.signal() watches the orchestrator's own signals; core.kill() sends them.
 * core.stop_guard() is the last resort behind the second SIGINT (see below). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

static const struct {
  const char *name;
  int num;
} SIGNALS[] = {
  { "SIGHUP", SIGHUP },       { "SIGINT", SIGINT },   { "SIGQUIT", SIGQUIT },
  { "SIGILL", SIGILL },       { "SIGTRAP", SIGTRAP }, { "SIGABRT", SIGABRT },
  { "SIGBUS", SIGBUS },       { "SIGFPE", SIGFPE },   { "SIGKILL", SIGKILL },
  { "SIGUSR1", SIGUSR1 },     { "SIGSEGV", SIGSEGV }, { "SIGUSR2", SIGUSR2 },
  { "SIGPIPE", SIGPIPE },     { "SIGALRM", SIGALRM }, { "SIGTERM", SIGTERM },
  { "SIGCHLD", SIGCHLD },     { "SIGCONT", SIGCONT }, { "SIGSTOP", SIGSTOP },
  { "SIGTSTP", SIGTSTP },     { "SIGTTIN", SIGTTIN }, { "SIGTTOU", SIGTTOU },
  { "SIGURG", SIGURG },       { "SIGXCPU", SIGXCPU }, { "SIGXFSZ", SIGXFSZ },
  { "SIGVTALRM", SIGVTALRM }, { "SIGPROF", SIGPROF }, { "SIGWINCH", SIGWINCH },
  { "SIGIO", SIGIO },         { "SIGPWR", SIGPWR },   { "SIGSYS", SIGSYS },
};

const char *orch_signal_name(int signum)
{
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (SIGNALS[i].num == signum)
      return SIGNALS[i].name;
  return NULL;
}

/* A signal given as 'SIGTERM', 'TERM' or 15; raises on anything else.   [-0, +0, v] */
int orch_signal_check(lua_State *L, int idx)
{
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0 && n < NSIG, idx, "invalid signal number");
    return (int)n;
  }
  const char *name = luaL_checkstring(L, idx);
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (strcmp(SIGNALS[i].name, name) == 0 || strcmp(SIGNALS[i].name + 3, name) == 0)
      return SIGNALS[i].num;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

static void on_signal(uv_signal_t *s, int signum)
{
  orch_handle *h = s->data;
  lua_State *L = h->ctx->L;
  int base = orch_handle_push_cb(h);
  if (base < 0)
    return;
  const char *name = orch_signal_name(signum);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushinteger(L, signum);
  orch_call(h->ctx, 1);
  lua_settop(L, base);
}

/* core.signal() -> sig   [-0, +1, m] */
static int core_signal(lua_State *L)
{
  orch_handle *h = orch_handle_new(L, ORCH_SIGNAL_MT, sizeof *h);
  uv_signal_t *s = malloc(sizeof *s);
  if (s == NULL)
    return luaL_error(L, "not enough memory");
  uv_signal_init(&h->ctx->loop, s);
  orch_handle_attach(h, (uv_handle_t *)s);
  return 1;
}

/* sig:start(signal, callback [, keep_loop_alive]) -> true | fail   [-0, +(1|3), v] */
static int sig_start(lua_State *L)
{
  orch_handle *h = orch_handle_check(L, 1, ORCH_SIGNAL_MT);
  int signum = orch_signal_check(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  int err = uv_signal_start((uv_signal_t *)h->uv, on_signal, signum);
  if (err < 0)
    return orch_pushfail(L, err, "signal");
  orch_handle_set_cb(L, h, 1, 3);
  /* A signal watcher alone should not keep the loop running unless asked to. */
  if (!lua_toboolean(L, 4))
    uv_unref(h->uv);
  lua_pushboolean(L, 1);
  return 1;
}

static int sig_stop(lua_State *L)
{
  orch_handle *h = orch_handle_check(L, 1, ORCH_SIGNAL_MT);
  uv_signal_stop((uv_signal_t *)h->uv);
  orch_handle_unanchor(L, h);
  return 0;
}

static int sig_close(lua_State *L)
{
  orch_handle_close(L, luaL_checkudata(L, 1, ORCH_SIGNAL_MT));
  return 0;
}

/* core.kill(pid, signal) -> true | fail; a negative pid signals a process group. [-0,+(1|3),v] */
static int core_kill(lua_State *L)
{
  lua_Integer pid = luaL_checkinteger(L, 1);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : orch_signal_check(L, 2);
  luaL_argcheck(L, pid != 0 && pid != -1, 1, "refusing to signal every process");
  int err = uv_kill((int)pid, signum);
  if (err < 0)
    return orch_pushfail(L, err, lua_pushfstring(L, "kill %d", (int)pid));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.signame(n) -> 'SIGTERM' | nil; core.signum('TERM') -> 15   [-0, +1, v] */
static int core_signame(lua_State *L)
{
  const char *name = orch_signal_name((int)luaL_checkinteger(L, 1));
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushnil(L);
  return 1;
}

static int core_signum(lua_State *L)
{
  lua_pushinteger(L, orch_signal_check(L, 1));
  return 1;
}

static const luaL_Reg sig_methods[] = {
  { "start", sig_start },
  { "stop", sig_stop },
  { "close", sig_close },
  { NULL, NULL },
};

static const luaL_Reg sig_meta[] = {
  { "__gc", sig_close },
  { "__close", sig_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

void orch_early_signals(sigset_t *set)
{
  static const int SIGS[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
  sigemptyset(set);
  for (size_t i = 0; i < sizeof SIGS / sizeof SIGS[0]; i++)
    sigaddset(set, SIGS[i]);
}

/* core.unblock_signals(): unblock what main.c blocked at start (orch_early_signals); a signal
 * that arrived meanwhile is delivered now, to the handlers installed by then.   [-0, +0, -] */
static int core_unblock_signals(lua_State *L)
{
  (void)L;
  sigset_t set;
  orch_early_signals(&set);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  return 0;
}

/* The stop guard. The second SIGINT must end orch even when Lua never gets to see it: a
 * script stuck in a C call (a blocking read, a huge string.rep) keeps the loop, and with it
 * every uv_signal callback, from running. A handler chained in front of libuv's counts SIGINT
 * and SIGTERM as they arrive; a SIGINT after one of them (or after Lua said it is stopping)
 * wakes a thread that gives Lua GUARD_ACK_MS to acknowledge (core.stop_guard_ack, from its
 * forced stop) and orch GUARD_EXIT_MS in all to be gone; past either it SIGKILLs every process
 * group, cgroup and tagged process orch made (watch.c) and _exits 1. */
#define GUARD_ACK_MS  2000
#define GUARD_EXIT_MS 5000

static struct sigaction guard_old[2]; /* libuv's handlers for SIGINT, SIGTERM */
static atomic_int guard_stops;        /* SIGINT/SIGTERM seen, or Lua stopping (1) */
static atomic_int guard_acked;        /* Lua runs its forced stop */
static int guard_pipe[2] = { -1, -1 };

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
  int saved = errno;
  if (sig == SIGINT && atomic_fetch_add(&guard_stops, 1) > 0)
    (void)!write(guard_pipe[1], "!", 1); /* a forcing SIGINT: wake the guard */
  else if (sig == SIGTERM)
    atomic_fetch_add(&guard_stops, 1);
  struct sigaction *old = &guard_old[sig == SIGINT ? 0 : 1];
  if (old->sa_flags & SA_SIGINFO)
    old->sa_sigaction(sig, si, uc);
  else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN)
    old->sa_handler(sig);
  errno = saved;
}

static long ms_since(const struct timespec *t0)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *guard_thread(void *arg)
{
  (void)arg;
  char c;
  while (read(guard_pipe[0], &c, 1) < 0 && errno == EINTR)
    ;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const struct timespec step = { 0, 20L * 1000000L };
  int stuck = 0;
  for (;;) {
    long elapsed = ms_since(&t0);
    if (!atomic_load(&guard_acked) && elapsed >= GUARD_ACK_MS) {
      stuck = 1;
      break;
    }
    if (elapsed >= GUARD_EXIT_MS)
      break;
    nanosleep(&step, NULL);
  }
  char msg[200];
  int n = stuck ? snprintf(msg, sizeof msg,
                           "orch: no answer to the second SIGINT in %d ms (stuck in a C call?): "
                           "killing every process group, exiting 1\n",
                           GUARD_ACK_MS)
                : snprintf(msg, sizeof msg,
                           "orch: still running %d ms after the second SIGINT: killing every "
                           "process group, exiting 1\n",
                           GUARD_EXIT_MS);
  fcntl(2, F_SETFL, fcntl(2, F_GETFL) | O_NONBLOCK); /* a full stderr must not hold us */
  (void)!write(2, msg, (size_t)n);
  orch_watch_kill_all();
  _exit(1);
}

/* core.stop_guard() -> true | nil, msg, CODE: chain the guard in front of the SIGINT and SIGTERM
 * handlers installed so far (call it after starting their uv_signal watchers) and start its
 * thread. Once per process.   [-0, +(1|3), -] */
static int core_stop_guard(lua_State *L)
{
  if (guard_pipe[0] >= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (pipe2(guard_pipe, O_CLOEXEC) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "stop guard: pipe");
  fcntl(guard_pipe[1], F_SETFL, O_NONBLOCK);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread never takes a signal */
  pthread_t t;
  int err = pthread_create(&t, NULL, guard_thread, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    close(guard_pipe[0]);
    close(guard_pipe[1]);
    guard_pipe[0] = guard_pipe[1] = -1;
    return orch_pushfail(L, uv_translate_sys_error(err), "stop guard: thread");
  }
  pthread_detach(t);
  static const int SIGS[2] = { SIGINT, SIGTERM };
  for (int i = 0; i < 2; i++) {
    struct sigaction sa;
    sigaction(SIGS[i], NULL, &guard_old[i]);
    if (!(guard_old[i].sa_flags & SA_SIGINFO) &&
        (guard_old[i].sa_handler == SIG_DFL || guard_old[i].sa_handler == SIG_IGN))
      continue; /* no handler to chain: the signal keeps its disposition */
    sa = guard_old[i];
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = (int)(((unsigned)guard_old[i].sa_flags & ~(unsigned)SA_RESETHAND) | SA_SIGINFO);
    sigaction(SIGS[i], &sa, NULL);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.stop_guard_stopping(): Lua is stopping (whatever asked it), so the next SIGINT forces.
 * core.stop_guard_ack(): Lua runs the forced stop; the guard then only bounds its duration.
 * [-0, +0, -] */
static int core_stop_guard_stopping(lua_State *L)
{
  (void)L;
  int zero = 0;
  atomic_compare_exchange_strong(&guard_stops, &zero, 1);
  return 0;
}

static int core_stop_guard_ack(lua_State *L)
{
  (void)L;
  atomic_store(&guard_acked, 1);
  return 0;
}

/* core.stop_guard_count() -> n: the SIGINTs and SIGTERMs the guard has seen (plus one once Lua
 * said it is stopping). Read while a long stretch of Lua keeps the loop from running the signal
 * callbacks: the start of 10,000 entries stops starting more as soon as one arrived.
 * [-0, +1, -] */
static int core_stop_guard_count(lua_State *L)
{
  lua_pushinteger(L, atomic_load(&guard_stops));
  return 1;
}

static const luaL_Reg funcs[] = {
  { "stop_guard", core_stop_guard },
  { "stop_guard_count", core_stop_guard_count },
  { "stop_guard_stopping", core_stop_guard_stopping },
  { "stop_guard_ack", core_stop_guard_ack },
  { "signal", core_signal },
  { "kill", core_kill },
  { "signame", core_signame },
  { "signum", core_signum },
  { "unblock_signals", core_unblock_signals },
  { NULL, NULL },
};

void orch_signal_open(lua_State *L)
{
  orch_new_type(L, ORCH_SIGNAL_MT, sig_meta, sig_methods);
  luaL_setfuncs(L, funcs, 0);
}
