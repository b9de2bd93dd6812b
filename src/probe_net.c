/* probe_net.c: the orch.probe type (shared with probe_http.c), core.tcp_connect() and
 * core.port_listening().
 *
 * A probe is one asynchronous check whose callback runs exactly once, unless the probe is closed
 * first: then it never runs. While in flight the userdata is anchored in the registry; finishing
 * or closing drops the anchor. The libuv objects a probe owns point back at it through their
 * `data` field, which is cleared when the probe lets go of them, so a late completion (a
 * getaddrinfo that could not be cancelled, a connect cancelled by uv_close) is ignored. */
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "proc_net.h"

orch_probe *orch_probe_new(lua_State *L, size_t size, int cb_idx, void (*cancel)(orch_probe *p))
{
  cb_idx = lua_absindex(L, cb_idx);
  orch_probe *p = (orch_probe *)orch_handle_new(L, ORCH_PROBE_MT, size);
  p->cancel = cancel;
  orch_handle_set_cb(L, &p->base, -1, cb_idx);
  return p;
}

int orch_probe_push_done(orch_probe *p)
{
  lua_State *L = p->base.ctx->L;
  p->cancel = NULL;
  int base = orch_handle_push_cb(&p->base);
  if (base < 0)
    return -1;
  luaL_unref(L, LUA_REGISTRYINDEX, p->base.cb_ref);
  p->base.cb_ref = LUA_NOREF;
  orch_handle_unanchor(L, &p->base); /* the stack keeps it alive during the call */
  return base;
}

void orch_probe_close(lua_State *L, orch_probe *p)
{
  if (p->closed)
    return;
  p->closed = 1;
  if (p->cancel != NULL) {
    void (*cancel)(orch_probe *) = p->cancel;
    p->cancel = NULL;
    cancel(p);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, p->base.cb_ref);
  p->base.cb_ref = LUA_NOREF;
  orch_handle_unanchor(L, &p->base);
}

/* probe:close(), also __gc and __close: cancel what is in flight; idempotent.   [-0, +0, -] */
static int probe_close(lua_State *L)
{
  orch_probe_close(L, luaL_checkudata(L, 1, ORCH_PROBE_MT));
  return 0;
}

/* probe:active() -> boolean: still waiting for its result.   [-0, +1, -] */
static int probe_active(lua_State *L)
{
  orch_probe *p = luaL_checkudata(L, 1, ORCH_PROBE_MT);
  lua_pushboolean(L, p->cancel != NULL);
  return 1;
}

/* __tostring: "orch.probe (0x...)" or "orch.probe (closed)".   [-0, +1, m] */
static int probe_tostring(lua_State *L)
{
  orch_probe *p = luaL_checkudata(L, 1, ORCH_PROBE_MT);
  if (p->closed)
    lua_pushliteral(L, ORCH_PROBE_MT " (closed)");
  else
    lua_pushfstring(L, ORCH_PROBE_MT " (%p)", (void *)p);
  return 1;
}

static void on_close_free(uv_handle_t *h)
{
  free(h); /* every handle here is the first member of its malloc'd block */
}

/* One connection attempt. */
typedef struct net_conn {
  uv_tcp_t tcp;     /* first: the block is freed in the close callback (or by ctx's walk) */
  uv_connect_t req; /* its callback always runs before the handle's close callback */
} net_conn;

typedef struct net_probe {
  orch_probe head;
  uv_getaddrinfo_t *gai;  /* in flight; freed by on_resolved, even after a cancel */
  net_conn *conn;         /* the attempt in flight; freed in its close callback */
  uv_timer_t *timer;      /* the deadline; freed in its close callback */
  struct addrinfo *addrs; /* resolved addresses; uv_freeaddrinfo when finished */
  struct addrinfo *next;  /* the next one to try, inside addrs */
  uint64_t start;         /* uv_hrtime() at creation */
  int last_err;           /* of the last failed attempt */
  char what[300];         /* "connect host:port", for messages */
} net_probe;

/* Let go of every libuv object; their late callbacks find data == NULL. */
static void net_release(net_probe *p)
{
  if (p->gai != NULL) {
    p->gai->data = NULL;
    uv_cancel((uv_req_t *)p->gai); /* fails when already running: on_resolved frees it */
    p->gai = NULL;
  }
  if (p->conn != NULL) {
    p->conn->tcp.data = NULL;
    uv_close((uv_handle_t *)&p->conn->tcp, on_close_free);
    p->conn = NULL;
  }
  if (p->timer != NULL) {
    p->timer->data = NULL;
    uv_close((uv_handle_t *)p->timer, on_close_free);
    p->timer = NULL;
  }
  if (p->addrs != NULL) {
    uv_freeaddrinfo(p->addrs);
    p->addrs = p->next = NULL;
  }
}

static void net_cancel(orch_probe *p)
{
  net_release((net_probe *)p);
}

/* Release everything, then call cb(nil, elapsed) or cb(CODE, elapsed, message). */
static void net_finish(net_probe *p, int err)
{
  orch_ctx *ctx = p->head.base.ctx;
  lua_State *L = ctx->L;
  lua_Integer elapsed = (lua_Integer)((uv_hrtime() - p->start) / 1000000);
  net_release(p);
  int base = orch_probe_push_done(&p->head);
  if (base < 0)
    return;
  if (err == 0) {
    lua_pushnil(L);
    lua_pushinteger(L, elapsed);
    orch_call(ctx, 2);
  } else {
    lua_pushstring(L, uv_err_name(err));
    lua_pushinteger(L, elapsed);
    lua_pushfstring(L, "%s: %s", p->what, uv_strerror(err));
    orch_call(ctx, 3);
  }
  lua_settop(L, base);
}

static void on_connect(uv_connect_t *req, int status);

/* Start a connection to the next resolved address; finish when none is left. */
static void net_try_next(net_probe *p)
{
  while (p->next != NULL) {
    struct addrinfo *ai = p->next;
    p->next = ai->ai_next;
    net_conn *c = malloc(sizeof *c);
    if (c == NULL) {
      net_finish(p, UV_ENOMEM);
      return;
    }
    uv_tcp_init(&p->head.base.ctx->loop, &c->tcp);
    c->tcp.data = p;
    int err = uv_tcp_connect(&c->req, &c->tcp, ai->ai_addr, on_connect);
    if (err == 0) {
      p->conn = c;
      return;
    }
    p->last_err = err; /* e.g. EAFNOSUPPORT: IPv6 disabled */
    c->tcp.data = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_close_free);
  }
  net_finish(p, p->last_err != 0 ? p->last_err : UV_EAI_NONAME);
}

static void on_connect(uv_connect_t *req, int status)
{
  net_conn *c = (net_conn *)((char *)req - offsetof(net_conn, req));
  net_probe *p = c->tcp.data;
  if (p == NULL)
    return; /* released (UV_ECANCELED); the close callback frees the block */
  if (status == 0) {
    net_finish(p, 0);
    return;
  }
  p->last_err = status;
  p->conn = NULL;
  c->tcp.data = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_close_free);
  net_try_next(p);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  net_probe *p = req->data;
  free(req);
  if (p == NULL) {
    uv_freeaddrinfo(res); /* cancelled, or completed after the probe let go */
    return;
  }
  p->gai = NULL;
  if (status < 0) {
    uv_freeaddrinfo(res);
    net_finish(p, status);
    return;
  }
  p->addrs = p->next = res;
  net_try_next(p);
}

static void on_deadline(uv_timer_t *t)
{
  net_probe *p = t->data;
  if (p != NULL)
    net_finish(p, UV_ETIMEDOUT);
}

/* Start resolving; the probe is on top. 0 or a negative UV_E*.   [-0, +0, -] */
static int net_start(net_probe *p, const char *host, int port, uint64_t timeout)
{
  uv_loop_t *loop = &p->head.base.ctx->loop;
  struct addrinfo hints;
  char service[8];
  p->timer = malloc(sizeof *p->timer);
  p->gai = malloc(sizeof *p->gai);
  if (p->timer == NULL || p->gai == NULL) {
    free(p->timer);
    free(p->gai);
    p->timer = NULL;
    p->gai = NULL;
    return UV_ENOMEM;
  }
  uv_timer_init(loop, p->timer);
  p->timer->data = p;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC; /* no AI_ADDRCONFIG: it hides ::1 on hosts with IPv6 only on lo */
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(service, sizeof service, "%d", port);
  int err = uv_getaddrinfo(loop, p->gai, on_resolved, host, service, &hints);
  if (err < 0) {
    free(p->gai);
    p->gai = NULL;
    return err;
  }
  p->gai->data = p;
  uv_timer_start(p->timer, on_deadline, timeout, 0);
  return 0;
}

/* core.tcp_connect(host, port, timeout_ms, cb) -> probe | fail
 * cb(nil, elapsed_ms) once connected (the connection is closed at once), or
 * cb(CODE, elapsed_ms, message) with CODE such as 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_NONAME'.
 * [-0, +(1|3), v] */
static int core_tcp_connect(lua_State *L)
{
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  lua_Integer port = luaL_checkinteger(L, 2);
  lua_Integer timeout = luaL_checkinteger(L, 3);
  luaL_argcheck(L, len > 0 && len < 256 && strlen(host) == len, 1, "invalid host name");
  luaL_argcheck(L, port >= 1 && port <= 65535, 2, "port must be 1..65535");
  luaL_argcheck(L, timeout >= 0, 3, "must not be negative");
  luaL_checktype(L, 4, LUA_TFUNCTION);
  net_probe *p = (net_probe *)orch_probe_new(L, sizeof *p, 4, net_cancel);
  p->start = uv_hrtime();
  snprintf(p->what, sizeof p->what, strchr(host, ':') ? "connect [%s]:%d" : "connect %s:%d", host,
           (int)port);
  int err = net_start(p, host, (int)port, (uint64_t)timeout);
  if (err < 0) {
    orch_probe_close(L, &p->head);
    return orch_pushfail(L, err, p->what);
  }
  return 1;
}

/* The directory named by port_listening's options at `idx` (nil: /proc/net); the string stays
 * on the stack, referenced by the table.   [-0, +1, v] */
static const char *listening_dir(lua_State *L, int idx)
{
  lua_Integer pid = 0;
  const char *dir = NULL;
  if (lua_isnoneornil(L, idx)) {
    lua_pushliteral(L, "/proc/net");
    return lua_tostring(L, -1);
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (key != NULL && strcmp(key, "pid") == 0) {
      luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0, idx,
                    "pid must be a positive integer");
      pid = lua_tointeger(L, -1);
    } else if (key != NULL && strcmp(key, "dir") == 0) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, idx, "dir must be a string");
      dir = lua_tostring(L, -1);
    } else {
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -2, NULL)));
    }
  }
  luaL_argcheck(L, !(pid && dir), idx, "give pid or dir, not both");
  if (dir != NULL)
    lua_pushstring(L, dir);
  else if (pid != 0)
    lua_pushfstring(L, "/proc/%I/net", pid);
  else
    lua_pushliteral(L, "/proc/net");
  return lua_tostring(L, -1);
}

/* core.port_listening(port [, {pid = N} | {dir = path}]) -> boolean | fail
 * true when a TCP socket listens on `port` or a UDP socket is bound to it.   [-0, +(1|3), v] */
static int core_port_listening(lua_State *L)
{
  lua_Integer port = luaL_checkinteger(L, 1);
  luaL_argcheck(L, port >= 1 && port <= 65535, 1, "port must be 1..65535");
  int own_netns = lua_isnoneornil(L, 2);
  const char *dir = listening_dir(L, 2);
  int found = 0;
  int err = -1;
  if (own_netns) /* the cheap kernel query first */
    err = orch_sock_diag_port_listening((unsigned)port, &found);
  if (err < 0)
    err = orch_proc_net_port_listening(dir, (unsigned)port, &found);
  if (err < 0)
    return orch_pushfail(L, err, lua_pushfstring(L, "port_listening %s", dir));
  lua_pushboolean(L, found);
  return 1;
}

static const luaL_Reg probe_methods[] = {
  { "close", probe_close },
  { "active", probe_active },
  { NULL, NULL },
};

static const luaL_Reg probe_meta[] = {
  { "__gc", probe_close },
  { "__close", probe_close },
  { "__tostring", probe_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "tcp_connect", core_tcp_connect },
  { "port_listening", core_port_listening },
  { NULL, NULL },
};

void orch_probe_net_open(lua_State *L)
{
  orch_new_type(L, ORCH_PROBE_MT, probe_meta, probe_methods);
  luaL_setfuncs(L, funcs, 0);
}
