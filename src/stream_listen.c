/* stream_listen.c: core.unix_listen(), the listening side of stream.c's orch.stream: binding
 * the socket file and accepting each client into a new connection. Binding is done here, not
 * by uv_pipe_bind, so the errors are the kernel's and closing never unlinks the path: the
 * socket file (mode 0600) belongs to the caller. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "stream.h"

#define ORCH_STREAM_BACKLOG 128

/* Protected: deliver_conn(cb, block) wraps the accepted block in a new orch.stream and calls
 * cb(conn). A memory error before the wrap leaves block->pipe.data NULL.   [-2, +0, e] */
static int deliver_conn(lua_State *L)
{
  orch_pipe *p = lua_touserdata(L, 2);
  lua_settop(L, 1);
  orch_stream *c = orch_stream_new(L, 0);
  orch_handle_attach(&c->base, (uv_handle_t *)&p->pipe);
  lua_call(L, 1, 0);
  return 0;
}

/* Accept a connection into a new block; NULL with *err set on failure.   [-0, +0, -] */
static orch_pipe *accept_one(uv_stream_t *server, int *err)
{
  orch_pipe *p = malloc(sizeof *p);
  if (p == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  uv_pipe_init(server->loop, &p->pipe, 0);
  p->pipe.data = NULL;
  *err = uv_accept(server, (uv_stream_t *)&p->pipe);
  if (*err < 0) {
    uv_close((uv_handle_t *)&p->pipe, (uv_close_cb)free);
    return NULL;
  }
  return p;
}

/* A client is waiting: on_connection(conn). When accept failed (EMFILE...): on_connection(nil,
 * CODE); the server keeps listening, except after ENOMEM where libuv cannot go on: it is
 * closed. */
static void on_connection(uv_stream_t *server, int status)
{
  orch_stream *s = server->data;
  if (s == NULL)
    return;
  orch_ctx *ctx = s->base.ctx;
  lua_State *L = ctx->L;
  int err = status;
  orch_pipe *p = status < 0 ? NULL : accept_one(server, &err);
  int base = orch_handle_push_cb(&s->base);
  if (base < 0) {
    if (p != NULL)
      uv_close((uv_handle_t *)&p->pipe, (uv_close_cb)free);
    return;
  }
  if (p == NULL) {
    if (err == UV_ENOMEM) /* the fd libuv accepted stays pending: it would stop listening */
      orch_handle_close(L, &s->base); /* the stack keeps the userdata and callback alive */
    lua_pushnil(L);
    lua_pushstring(L, uv_err_name(err));
    orch_call(ctx, 2);
    lua_settop(L, base);
    return;
  }
  lua_pushcfunction(L, deliver_conn);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, p);
  orch_call(ctx, 2);
  if (p->pipe.data == NULL && !uv_is_closing((uv_handle_t *)&p->pipe))
    uv_close((uv_handle_t *)&p->pipe, (uv_close_cb)free); /* deliver_conn failed early */
  lua_settop(L, base);
}

/* Bind a new Unix socket at `path` with mode 0600 and listen on it. 0 or a negative UV_E*,
 * with *what naming the step that failed; the path is removed again when it was created here.
 * [-0, +0, -] */
static int unix_bind(uv_pipe_t *pipe, const char *path, const char **what)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, strlen(path) + 1);
  *what = "socket";
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int err = 0;
  *what = "bind";
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
    err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  *what = "chmod";
  if (chmod(path, S_IRUSR | S_IWUSR) != 0) {
    err = uv_translate_sys_error(errno);
    goto fail;
  }
  *what = "listen";
  err = uv_pipe_open(pipe, fd);
  if (err < 0)
    goto fail;
  return 0;
fail:
  unlink(path);
  close(fd);
  return err;
}

/* core.unix_listen(path, on_connection) -> server | fail: on_connection(conn) per client.
 * The directory and a stale socket are the caller's business: an existing path fails with
 * EADDRINUSE. The socket file gets mode 0600; server:close() leaves it in place.
 * [-0, +(1|3), v] */
int orch_stream_unix_listen(lua_State *L)
{
  int too_long;
  const char *path = orch_stream_path_check(L, 1, &too_long);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (too_long)
    return orch_pushfail(L, UV_ENAMETOOLONG, lua_pushfstring(L, "listen '%s'", path));
  orch_stream_ignore_sigpipe();
  orch_stream *s = orch_stream_new(L, 1);
  uv_pipe_t *pipe = malloc(sizeof *pipe);
  if (pipe == NULL)
    return luaL_error(L, "not enough memory");
  uv_pipe_init(&s->base.ctx->loop, pipe, 0);
  orch_handle_attach(&s->base, (uv_handle_t *)pipe);
  const char *what;
  int err = unix_bind(pipe, path, &what);
  if (err == 0) {
    what = "listen";
    err = uv_listen((uv_stream_t *)pipe, ORCH_STREAM_BACKLOG, on_connection);
    if (err < 0)
      unlink(path); /* the fd is the handle's now: closed with it below */
  }
  if (err < 0) {
    orch_handle_close(L, &s->base);
    return orch_pushfail(L, err, lua_pushfstring(L, "%s '%s'", what, path));
  }
  orch_handle_set_cb(L, &s->base, -1, 2);
  return 1;
}
