/* outbuf.c: core.outbuf(fd, bound), orch's own stdout written by a thread of its own through a
 * bounded buffer, so that a consumer that stops reading never stops the loop, and with it the
 * reading of every daemon's pipes.
 *
 * ob:write(s, wait_ms) copies s into the buffer. When it does not fit, it waits up to wait_ms
 * for room while the consumer makes progress (back-pressure: a slow reader slows the writers
 * down, nothing is lost); when the consumer wrote nothing in that time it is stalled: s is
 * dropped whole and counted (lines and bytes), and so is everything after it, at once, until
 * the consumer takes something again. orch's log is written in whole lines, so what is dropped
 * is whole lines too. The writer thread does the blocking write(2)s (also to a terminal or a
 * file: nothing of the fd's mode changes, so a shell sharing the terminal is not affected).
 * After a write error (EPIPE: nobody reads any more) everything is dropped. ob:close(ms) waits
 * up to ms for the buffer to drain, then stops the thread. Policy (when to say that lines were
 * dropped, and where) is Lua's. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_OUTBUF_MT "orch.outbuf"

typedef struct orch_outbuf {
  int fd;
  int stopping; /* the thread ends once the buffer is empty, or at once with `abandon` */
  int abandon;  /* stop without writing what is left */
  int err;      /* the first failed write (negative UV_E*), then everything is dropped */
  int stalled;  /* the consumer took nothing while a write waited: drop without waiting */
  unsigned long long stalled_at; /* written_bytes when it stalled */
  char *buf;                     /* ring of `cap` bytes */
  size_t cap, head;              /* head: the oldest byte */
  size_t len;                    /* bytes queued */
  size_t inflight;               /* bytes the thread is writing now (still counted in len) */
  unsigned long long dropped_lines, dropped_bytes, written_bytes;
  uv_mutex_t mu;
  uv_cond_t more;    /* signalled to the thread: data, or stopping */
  uv_cond_t drained; /* signalled by the thread: len went down */
  uv_thread_t thread;
} orch_outbuf;

static void writer_main(void *arg)
{
  orch_outbuf *ob = arg;
  uv_mutex_lock(&ob->mu);
  for (;;) {
    while (ob->len == 0 && !ob->stopping)
      uv_cond_wait(&ob->more, &ob->mu);
    if (ob->abandon || (ob->stopping && ob->len == 0))
      break;
    size_t n = ob->len;
    if (ob->head + n > ob->cap)
      n = ob->cap - ob->head; /* up to the end of the ring; the rest next turn */
    const char *p = ob->buf + ob->head;
    ob->inflight = n;
    uv_mutex_unlock(&ob->mu);
    ssize_t w = write(ob->fd, p, n);
    int e = w < 0 ? errno : 0;
    uv_mutex_lock(&ob->mu);
    ob->inflight = 0;
    if (w < 0 && e == EINTR)
      continue;
    if (w < 0 && e == EAGAIN) { /* someone made the fd non-blocking: wait a little */
      uv_mutex_unlock(&ob->mu);
      usleep(1000);
      uv_mutex_lock(&ob->mu);
      continue;
    }
    if (w <= 0) {
      ob->err = w < 0 ? uv_translate_sys_error(e) : UV_EIO;
      ob->dropped_bytes += ob->len; /* never written: count it as dropped */
      for (size_t i = 0; i < ob->len; i++)
        ob->dropped_lines += ob->buf[(ob->head + i) % ob->cap] == '\n';
      ob->head = ob->len = 0;
    } else {
      ob->head = (ob->head + (size_t)w) % ob->cap;
      ob->len -= (size_t)w;
      ob->written_bytes += (unsigned long long)w;
    }
    uv_cond_broadcast(&ob->drained);
  }
  uv_cond_broadcast(&ob->drained);
  uv_mutex_unlock(&ob->mu);
}

/* core.outbuf(fd, bound) -> ob | fail: the writer of `fd` with a buffer of `bound` bytes.
 * [-0, +(1|3), m] */
static int core_outbuf(lua_State *L)
{
  int fd = (int)luaL_checkinteger(L, 1);
  lua_Integer bound = luaL_checkinteger(L, 2);
  luaL_argcheck(L, fd >= 0, 1, "fd must not be negative");
  luaL_argcheck(L, bound > 0 && bound <= (lua_Integer)1 << 30, 2, "bound must be 1..2^30 bytes");
  /* the state is not the userdata: a thread left blocked by close() still owns it */
  orch_outbuf **ud = lua_newuserdatauv(L, sizeof(orch_outbuf *), 0);
  *ud = NULL;
  luaL_setmetatable(L, ORCH_OUTBUF_MT);
  orch_outbuf *ob = calloc(1, sizeof *ob);
  if (ob == NULL || (ob->buf = malloc((size_t)bound)) == NULL) {
    free(ob);
    return luaL_error(L, "not enough memory");
  }
  ob->fd = fd;
  ob->cap = (size_t)bound;
  uv_mutex_init(&ob->mu);
  uv_cond_init(&ob->more);
  uv_cond_init(&ob->drained);
  /* the thread takes no signal: orch's signals stay with the loop */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = uv_thread_create(&ob->thread, writer_main, ob);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err < 0) {
    uv_cond_destroy(&ob->drained);
    uv_cond_destroy(&ob->more);
    uv_mutex_destroy(&ob->mu);
    free(ob->buf);
    free(ob);
    return orch_pushfail(L, err, "outbuf thread");
  }
  *ud = ob;
  return 1;
}

/* The open writer at 1, or NULL once closed.   [-0, +0, v] */
static orch_outbuf *check_outbuf(lua_State *L)
{
  return *(orch_outbuf **)luaL_checkudata(L, 1, ORCH_OUTBUF_MT);
}

/* Newlines in s[0..n).   [-0, +0, -] */
static unsigned long long count_lines(const char *s, size_t n)
{
  unsigned long long k = 0;
  const char *end = s + n;
  while (s < end && (s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
    k++;
    s++;
  }
  return k;
}

/* ob:write(s[, wait_ms]) -> true | false: queued, or dropped (the consumer is stalled, the fd
 * failed, or closed). Waits up to wait_ms (default 0) for room while the consumer makes
 * progress.   [-0, +1, v] */
static int outbuf_write(lua_State *L)
{
  orch_outbuf *ob = check_outbuf(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer wait_ms = luaL_optinteger(L, 3, 0);
  if (ob == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  uv_mutex_lock(&ob->mu);
  if (ob->stalled && ob->written_bytes != ob->stalled_at)
    ob->stalled = 0; /* it reads again */
  if (n > ob->cap - ob->len && ob->err == 0 && n <= ob->cap && !ob->stalled && wait_ms > 0) {
    uint64_t deadline = uv_hrtime() + (uint64_t)wait_ms * 1000000u;
    unsigned long long before = ob->written_bytes;
    while (n > ob->cap - ob->len && ob->err == 0) {
      uint64_t now = uv_hrtime();
      if (now >= deadline || uv_cond_timedwait(&ob->drained, &ob->mu, deadline - now) != 0) {
        if (ob->written_bytes == before) { /* nothing taken in wait_ms: stalled */
          ob->stalled = 1;
          ob->stalled_at = ob->written_bytes;
          break;
        }
        before = ob->written_bytes; /* slow but moving: wait on */
        deadline = uv_hrtime() + (uint64_t)wait_ms * 1000000u;
      }
    }
  }
  int ok = ob->err == 0 && n <= ob->cap - ob->len;
  if (ok && n > 0) {
    size_t tail = (ob->head + ob->len) % ob->cap;
    size_t first = n < ob->cap - tail ? n : ob->cap - tail;
    memcpy(ob->buf + tail, s, first);
    memcpy(ob->buf, s + first, n - first);
    ob->len += n;
    uv_cond_signal(&ob->more);
  } else if (!ok) {
    ob->dropped_bytes += n;
    ob->dropped_lines += count_lines(s, n);
  }
  uv_mutex_unlock(&ob->mu);
  lua_pushboolean(L, ok);
  return 1;
}

/* ob:stats() -> {queued, written, dropped_lines, dropped_bytes, error = CODE | nil}.
 * [-0, +1, m] */
static int outbuf_stats(lua_State *L)
{
  orch_outbuf *ob = check_outbuf(L);
  if (ob == NULL)
    return luaL_error(L, "orch.outbuf is closed");
  uv_mutex_lock(&ob->mu);
  size_t queued = ob->len;
  unsigned long long written = ob->written_bytes, dl = ob->dropped_lines, db = ob->dropped_bytes;
  int err = ob->err;
  uv_mutex_unlock(&ob->mu);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, (lua_Integer)written);
  lua_setfield(L, -2, "written");
  lua_pushinteger(L, (lua_Integer)dl);
  lua_setfield(L, -2, "dropped_lines");
  lua_pushinteger(L, (lua_Integer)db);
  lua_setfield(L, -2, "dropped_bytes");
  if (err != 0) {
    lua_pushstring(L, uv_err_name(err));
    lua_setfield(L, -2, "error");
  }
  return 1;
}

/* ob:close([ms]) -> true | false: wait up to ms (default 0) for what is queued to be written
 * (false: some was left), then stop the thread. Idempotent; also __gc and __close.
 * [-0, +1, -] */
static int outbuf_close(lua_State *L)
{
  orch_outbuf **ud = luaL_checkudata(L, 1, ORCH_OUTBUF_MT);
  orch_outbuf *ob = *ud;
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  if (ob == NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  *ud = NULL;
  uint64_t deadline = uv_hrtime() + (uint64_t)(ms > 0 ? ms : 0) * 1000000u;
  uv_mutex_lock(&ob->mu);
  ob->stopping = 1;
  uv_cond_signal(&ob->more);
  while (ob->len > 0 && ob->err == 0) {
    uint64_t now = uv_hrtime();
    if (now >= deadline || uv_cond_timedwait(&ob->drained, &ob->mu, deadline - now) != 0)
      break;
  }
  if (ob->len > 0) {
    /* a write may be blocked for good (nobody reads): the thread is left with its state,
     * which it never frees (orch is exiting); it stops after the write it is in */
    ob->abandon = 1;
    uv_cond_signal(&ob->more);
    uv_mutex_unlock(&ob->mu);
    lua_pushboolean(L, 0);
    return 1;
  }
  uv_mutex_unlock(&ob->mu);
  uv_thread_join(&ob->thread);
  uv_cond_destroy(&ob->drained);
  uv_cond_destroy(&ob->more);
  uv_mutex_destroy(&ob->mu);
  free(ob->buf);
  free(ob);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg outbuf_methods[] = {
  { "write", outbuf_write },
  { "stats", outbuf_stats },
  { "close", outbuf_close },
  { NULL, NULL },
};

static const luaL_Reg outbuf_meta[] = {
  { "__gc", outbuf_close },
  { "__close", outbuf_close },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "outbuf", core_outbuf },
  { NULL, NULL },
};

void orch_outbuf_open(lua_State *L)
{
  orch_new_type(L, ORCH_OUTBUF_MT, outbuf_meta, outbuf_methods);
  luaL_setfuncs(L, funcs, 0);
}
