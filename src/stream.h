/* stream.h: the orch.stream type, shared by stream.c (connections: core.unix_connect, read,
 * write, shutdown, peercred, close) and stream_listen.c (core.unix_listen). */
#ifndef ORCH_STREAM_H
#define ORCH_STREAM_H

#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_STREAM_MT "orch.stream"

/* The libuv block of a connection. */
typedef struct orch_pipe {
  uv_pipe_t pipe;       /* first: the block is freed by free() in the close callback */
  uv_connect_t connect; /* unix_connect's request; completes before the close callback runs */
} orch_pipe;

typedef struct orch_stream {
  orch_handle base; /* base.uv: a uv_pipe_t (alone, or first in an orch_pipe); base.cb_ref:
                     * on_connection (server) or the read callback (connection) */
  int server;       /* a listening socket */
  int reading;      /* read_start is in effect */
  int pending;      /* write and shutdown requests in flight */
  int connect_ref;  /* unix_connect's callback until it runs, or LUA_NOREF */
  int shutdown_ref; /* shutdown's callback until it runs, or LUA_NOREF */
  int write_err;    /* the first failed write (negative UV_E*), returned by every later write */
  char what[128];   /* "connect '<path>'" for unix_connect's message (sun_path is 108 bytes) */
} orch_stream;

/* Ignore SIGPIPE unless the host installed a handler (see stream.c).   [-0, +0, -] */
void orch_stream_ignore_sigpipe(void);

/* Push a new, closed orch.stream.   [-0, +1, m] */
orch_stream *orch_stream_new(lua_State *L, int server);

/* The socket path argument at `idx`; raises on an empty path or one with a NUL byte. Sets
 * *too_long when it does not fit in sun_path.   [-0, +0, v] */
const char *orch_stream_path_check(lua_State *L, int idx, int *too_long);

/* core.unix_listen(path, on_connection) (stream_listen.c).   [-0, +(1|3), v] */
int orch_stream_unix_listen(lua_State *L);

#endif
