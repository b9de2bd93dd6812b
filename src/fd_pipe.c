/* fd_pipe.c: core.fd_pipe(callback), a pipe whose write end a child gets as an extra
 * descriptor (core.spawn's opts.fds) and whose read end orch watches: s6's notification-fd
 * (`ready.notifyFd`, the service writes a newline when it is ready). Mechanism only: the
 * chunks, then nil at the end, go to the callback; what they mean is Lua's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_FD_PIPE_MT   "orch.fd_pipe"
#define FD_PIPE_READ_SIZE 4096 /* a notification is a line: one small buffer per read */

typedef struct {
  orch_handle base; /* base.uv: the uv_pipe_t of the read end */
  int write_fd;     /* the child's end (O_CLOEXEC here), -1 once closed */
} fd_pipe;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  buf->base = malloc(FD_PIPE_READ_SIZE);
  buf->len = buf->base ? FD_PIPE_READ_SIZE : 0;
}

/* A chunk, or the end (EOF or an error: nil, and the read end is closed).   */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  orch_handle *h = s->data;
  if (h == NULL || nread == 0) {
    free(buf->base);
    return;
  }
  lua_State *L = h->ctx->L;
  if (nread < 0)
    uv_read_stop(s);
  int base = orch_handle_push_cb(h);
  if (base < 0) {
    free(buf->base);
    return;
  }
  if (nread > 0)
    lua_pushlstring(L, buf->base, (size_t)nread);
  else
    lua_pushnil(L);
  free(buf->base);
  orch_call(h->ctx, 1);
  lua_settop(L, base);
}

/* core.fd_pipe(callback) -> fd_pipe | fail: a pipe; callback(chunk) for each chunk read from
 * it, then callback(nil) at its end.   [-0, +(1|3), v] */
static int core_fd_pipe(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "pipe");
  fd_pipe *p = (fd_pipe *)orch_handle_new(L, ORCH_FD_PIPE_MT, sizeof *p);
  p->write_fd = fds[1];
  uv_pipe_t *pipe = malloc(sizeof *pipe);
  if (pipe == NULL) {
    close(fds[0]);
    close(fds[1]);
    p->write_fd = -1;
    return luaL_error(L, "not enough memory");
  }
  uv_pipe_init(&p->base.ctx->loop, pipe, 0);
  orch_handle_attach(&p->base, (uv_handle_t *)pipe);
  int err = uv_pipe_open(pipe, fds[0]);
  if (err < 0)
    close(fds[0]); /* not adopted by the handle: ours to close */
  else
    err = uv_read_start((uv_stream_t *)pipe, on_alloc, on_read);
  if (err < 0) {
    close(fds[1]);
    p->write_fd = -1;
    orch_handle_close(L, &p->base);
    return orch_pushfail(L, err, "pipe");
  }
  orch_handle_set_cb(L, &p->base, lua_gettop(L), 1);
  return 1;
}

static fd_pipe *check_fd_pipe(lua_State *L)
{
  return luaL_checkudata(L, 1, ORCH_FD_PIPE_MT);
}

/* fd_pipe:write_fd() -> the write end's descriptor (for core.spawn's opts.fds), nil once
 * closed.   [-0, +1, -] */
static int fd_pipe_write_fd(lua_State *L)
{
  fd_pipe *p = check_fd_pipe(L);
  if (p->write_fd < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, p->write_fd);
  return 1;
}

/* fd_pipe:close_write(): close orch's copy of the write end (after the spawn: the end then
 * comes when every process holding it has closed it or exited); idempotent.   [-0, +0, -] */
static int fd_pipe_close_write(lua_State *L)
{
  fd_pipe *p = check_fd_pipe(L);
  if (p->write_fd >= 0)
    close(p->write_fd);
  p->write_fd = -1;
  return 0;
}

/* fd_pipe:close(), also __gc and __close: both ends, no more callbacks; idempotent.
 * [-0, +0, -] */
static int fd_pipe_close(lua_State *L)
{
  fd_pipe *p = check_fd_pipe(L);
  fd_pipe_close_write(L);
  orch_handle_close(L, &p->base);
  return 0;
}

static const luaL_Reg fd_pipe_methods[] = {
  { "write_fd", fd_pipe_write_fd },
  { "close_write", fd_pipe_close_write },
  { "close", fd_pipe_close },
  { NULL, NULL },
};

static const luaL_Reg fd_pipe_meta[] = {
  { "__gc", fd_pipe_close },
  { "__close", fd_pipe_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

void orch_fd_pipe_open(lua_State *L)
{
  orch_new_type(L, ORCH_FD_PIPE_MT, fd_pipe_meta, fd_pipe_methods);
  lua_pushcfunction(L, core_fd_pipe);
  lua_setfield(L, -2, "fd_pipe");
}
