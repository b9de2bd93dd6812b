/* stream.c: core.unix_connect(), Unix-domain stream sockets on uv_pipe_t for the local control
 * API. One type, orch.stream (stream.h), for both a listening server (only close; listening and
 * accepting are stream_listen.c's) and a connection (read, write, shutdown, peercred, close).
 *
 * Lifetime: a server stays anchored while open; a connection stays anchored while connecting,
 * reading, or with a write or shutdown in flight, so Lua may drop it after writing a last line.
 * Closing is idempotent and immediate for Lua: pending writes are cancelled by libuv, their
 * requests freed in their callbacks (which find the handle's data NULL), the handle's block in
 * its close callback. */
#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_STREAM_READ_SIZE 65536 /* bytes per read buffer, as for process pipes */

/* A write request with its own copy of the bytes (uv_write does not copy). */
typedef struct orch_write {
  uv_write_t req; /* first: freed with its bytes by on_write, even when cancelled */
  char data[];
} orch_write;

/* Writing to a peer that went away must fail with EPIPE, not kill the process: ignore SIGPIPE
 * unless the host installed a handler (orch's main already ignores it; children get SIG_DFL
 * back in spawn.c).   [-0, +0, -] */
void orch_stream_ignore_sigpipe(void)
{
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

/* Push a new, closed orch.stream.   [-0, +1, m] */
orch_stream *orch_stream_new(lua_State *L, int server)
{
  orch_stream *s = (orch_stream *)orch_handle_new(L, ORCH_STREAM_MT, sizeof *s);
  s->server = server;
  s->connect_ref = LUA_NOREF;
  s->shutdown_ref = LUA_NOREF;
  return s;
}

/* The open connection at `idx`; raises when it is closed or a server.   [-0, +0, v] */
static orch_stream *conn_check(lua_State *L, int idx)
{
  orch_stream *s = (orch_stream *)orch_handle_check(L, idx, ORCH_STREAM_MT);
  if (s->server)
    luaL_argerror(L, idx, "orch.stream is a listening server, not a connection");
  return s;
}

/* Anchor the userdata at `idx` (it has something in flight).   [-0, +0, m] */
static void stream_anchor(lua_State *L, orch_stream *s, int idx)
{
  if (s->base.self_ref == LUA_NOREF) {
    lua_pushvalue(L, idx);
    s->base.self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Drop the anchor once nothing can call back any more.   [-0, +0, -] */
static void stream_settle(lua_State *L, orch_stream *s)
{
  if (s->base.uv != NULL &&
      (s->server || s->reading || s->pending > 0 || s->connect_ref != LUA_NOREF))
    return;
  orch_handle_unanchor(L, &s->base);
}

/* Take the callback in `*ref` out of the registry: pushed, and the ref dropped.   [-0, +1, -] */
static void push_take_ref(lua_State *L, int *ref)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
}

/* The path argument at `idx`; raises on an empty path or one with a NUL byte (abstract sockets
 * are not supported). Sets *too_long when it does not fit in sun_path.   [-0, +0, v] */
const char *orch_stream_path_check(lua_State *L, int idx, int *too_long)
{
  struct sockaddr_un sun;
  size_t len;
  const char *path = luaL_checklstring(L, idx, &len);
  luaL_argcheck(L, len > 0, idx, "path must not be empty");
  luaL_argcheck(L, strlen(path) == len, idx, "path must not contain NUL bytes");
  *too_long = len >= sizeof sun.sun_path;
  return path;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  buf->base = malloc(ORCH_STREAM_READ_SIZE);
  buf->len = buf->base ? ORCH_STREAM_READ_SIZE : 0;
}

/* Protected: deliver_chunk(cb, buf, n) calls cb(chunk); the string is made here so that a
 * memory error is caught by orch_call instead of raised in the libuv callback.   [-3, +0, e] */
static int deliver_chunk(lua_State *L)
{
  const char *buf = lua_touserdata(L, 2);
  size_t n = (size_t)lua_tointeger(L, 3);
  lua_settop(L, 1);
  lua_pushlstring(L, buf, n);
  lua_call(L, 1, 0);
  return 0;
}

/* A chunk: cb(chunk). EOF or an error: reading stops, cb(nil, nil | CODE) once. */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
  orch_stream *s = st->data;
  if (s == NULL || nread == 0 || !s->reading) {
    free(buf->base);
    return;
  }
  lua_State *L = s->base.ctx->L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->base.self_ref); /* keeps it alive during the call */
  if (nread > 0) {
    lua_pushcfunction(L, deliver_chunk);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->base.cb_ref);
    lua_pushlightuserdata(L, buf->base);
    lua_pushinteger(L, (lua_Integer)nread);
    orch_call(s->base.ctx, 3);
    free(buf->base);
    lua_settop(L, base);
    return;
  }
  free(buf->base);
  uv_read_stop(st);
  s->reading = 0;
  push_take_ref(L, &s->base.cb_ref);
  lua_pushnil(L);
  if (nread == UV_EOF)
    lua_pushnil(L);
  else
    lua_pushstring(L, uv_err_name((int)nread));
  stream_settle(L, s);
  orch_call(s->base.ctx, 2);
  lua_settop(L, base);
}

/* conn:read_start(cb) -> true | fail: cb(chunk) per chunk, then cb(nil, nil) at EOF or
 * cb(nil, CODE) on an error, once; a second call replaces the callback.   [-0, +(1|3), v] */
static int conn_read_start(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!s->reading) {
    int err = uv_read_start((uv_stream_t *)s->base.uv, on_alloc, on_read);
    if (err < 0)
      return orch_pushfail(L, err, "read");
    s->reading = 1;
  }
  orch_handle_set_cb(L, &s->base, 1, 2);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:read_stop(): no more chunks until read_start; the callback is dropped.   [-0, +0, v] */
static int conn_read_stop(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  uv_read_stop((uv_stream_t *)s->base.uv);
  s->reading = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, s->base.cb_ref);
  s->base.cb_ref = LUA_NOREF;
  stream_settle(L, s);
  return 0;
}

static void on_write(uv_write_t *req, int status)
{
  orch_stream *s = req->handle->data;
  free(req); /* the request and its bytes are one block */
  if (s == NULL)
    return; /* closed: cancelled, or finished while closing */
  s->pending--;
  if (status < 0 && s->write_err == 0)
    s->write_err = status;
  stream_settle(s->base.ctx->L, s);
}

/* conn:write(data) -> true | fail. Writes what the socket takes now and queues a copy of the
 * rest; once a write has failed (EPIPE: the peer is gone) every later one fails the same way.
 * [-0, +(1|3), v] */
static int conn_write(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, len <= INT_MAX, 2, "data too large for one write");
  uv_stream_t *st = (uv_stream_t *)s->base.uv;
  if (s->write_err != 0)
    return orch_pushfail(L, s->write_err, "write");
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int n = len > 0 ? uv_try_write(st, &buf, 1) : 0; /* what the socket takes now needs no copy */
  if (n == UV_EAGAIN)
    n = 0;
  if (n >= 0 && (size_t)n < len) {
    size_t rest = len - (size_t)n;
    orch_write *w = malloc(sizeof *w + rest);
    if (w == NULL) {
      n = UV_ENOMEM; /* part of the data may be gone: the stream is unusable now */
    } else {
      memcpy(w->data, data + n, rest);
      buf = uv_buf_init(w->data, (unsigned)rest);
      n = uv_write(&w->req, st, &buf, 1, on_write);
      if (n < 0) {
        free(w); /* on_write never runs when uv_write fails */
      } else {
        s->pending++;
        stream_anchor(L, s, 1);
      }
    }
  }
  if (n < 0) {
    s->write_err = n;
    return orch_pushfail(L, n, "write");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:write_queue_size() -> bytes queued and not yet taken by the socket.   [-0, +1, v] */
static int conn_write_queue_size(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  lua_pushinteger(L, (lua_Integer)uv_stream_get_write_queue_size((uv_stream_t *)s->base.uv));
  return 1;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
  orch_stream *s = req->handle->data;
  free(req);
  if (s == NULL)
    return;
  lua_State *L = s->base.ctx->L;
  s->pending--;
  if (s->shutdown_ref == LUA_NOREF) {
    stream_settle(L, s);
    return;
  }
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->base.self_ref);
  push_take_ref(L, &s->shutdown_ref);
  if (status < 0)
    lua_pushstring(L, uv_err_name(status));
  else
    lua_pushnil(L);
  stream_settle(L, s);
  orch_call(s->base.ctx, 1);
  lua_settop(L, base);
}

/* conn:shutdown([cb]) -> true | fail: half-close once the queued writes are flushed, then
 * cb(nil | CODE). Reading goes on; close() is still needed.   [-0, +(1|3), v] */
static int conn_shutdown(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TFUNCTION);
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL)
    return luaL_error(L, "not enough memory");
  int err = uv_shutdown(req, (uv_stream_t *)s->base.uv, on_shutdown);
  if (err < 0) {
    free(req);
    return orch_pushfail(L, err, "shutdown");
  }
  s->pending++;
  stream_anchor(L, s, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    s->shutdown_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:peercred() -> pid, uid, gid | fail: who is at the other end (SO_PEERCRED, taken by the
 * kernel at connect time).   [-0, +3, v] */
static int conn_peercred(lua_State *L)
{
  orch_stream *s = conn_check(L, 1);
  uv_os_fd_t fd;
  struct ucred cred = { 0 };
  socklen_t len = sizeof cred;
  int err = uv_fileno(s->base.uv, &fd);
  if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    err = uv_translate_sys_error(errno);
  if (err == 0 && cred.uid == (uid_t)-1)
    err = UV_ENOTCONN; /* never connected: the kernel has no credentials, not a real uid */
  if (err < 0)
    return orch_pushfail(L, err, "peercred");
  lua_pushinteger(L, (lua_Integer)cred.pid);
  lua_pushinteger(L, (lua_Integer)cred.uid);
  lua_pushinteger(L, (lua_Integer)cred.gid);
  return 3;
}

/* stream:close(), also __gc and __close: pending writes are cancelled and no callback runs
 * any more; idempotent.   [-0, +0, -] */
static int stream_close(lua_State *L)
{
  orch_stream *s = luaL_checkudata(L, 1, ORCH_STREAM_MT);
  luaL_unref(L, LUA_REGISTRYINDEX, s->connect_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->shutdown_ref);
  s->connect_ref = s->shutdown_ref = LUA_NOREF;
  s->reading = 0;
  s->pending = 0;
  orch_handle_close(L, &s->base);
  return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
  orch_stream *s = req->handle->data;
  if (s == NULL || s->connect_ref == LUA_NOREF)
    return; /* closed before connecting: the callback is never called */
  lua_State *L = s->base.ctx->L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->base.self_ref);
  push_take_ref(L, &s->connect_ref);
  if (status < 0) {
    lua_pushstring(L, uv_err_name(status));
    lua_pushfstring(L, "%s: %s", s->what, uv_strerror(status));
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  stream_settle(L, s);
  orch_call(s->base.ctx, 2);
  lua_settop(L, base);
}

/* core.unix_connect(path, cb) -> conn | fail: cb(nil) once connected, or cb(CODE, message)
 * ('ENOENT', 'ECONNREFUSED', 'EACCES'...); never called when conn is closed first. Writes and
 * read_start may be issued at once.   [-0, +(1|3), v] */
static int core_unix_connect(lua_State *L)
{
  int too_long;
  const char *path = orch_stream_path_check(L, 1, &too_long);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (too_long)
    return orch_pushfail(L, UV_ENAMETOOLONG, lua_pushfstring(L, "connect '%s'", path));
  orch_stream_ignore_sigpipe();
  orch_stream *s = orch_stream_new(L, 0);
  snprintf(s->what, sizeof s->what, "connect '%s'", path);
  orch_pipe *p = malloc(sizeof *p);
  if (p == NULL)
    return luaL_error(L, "not enough memory");
  uv_pipe_init(&s->base.ctx->loop, &p->pipe, 0);
  orch_handle_attach(&s->base, (uv_handle_t *)&p->pipe);
  uv_pipe_connect(&p->connect, &p->pipe, path, on_connect); /* errors arrive in on_connect */
  lua_pushvalue(L, 2);
  s->connect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  stream_anchor(L, s, -1);
  return 1;
}

static const luaL_Reg stream_methods[] = {
  { "read_start", conn_read_start }, { "read_stop", conn_read_stop },
  { "write", conn_write },           { "write_queue_size", conn_write_queue_size },
  { "shutdown", conn_shutdown },     { "peercred", conn_peercred },
  { "close", stream_close },         { NULL, NULL },
};

static const luaL_Reg stream_meta[] = {
  { "__gc", stream_close },
  { "__close", stream_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "unix_listen", orch_stream_unix_listen },
  { "unix_connect", core_unix_connect },
  { NULL, NULL },
};

void orch_stream_open(lua_State *L)
{
  orch_new_type(L, ORCH_STREAM_MT, stream_meta, stream_methods);
  luaL_setfuncs(L, funcs, 0);
}
