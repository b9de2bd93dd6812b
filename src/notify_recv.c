/* notify_recv.c: core.notify_listen(path), the receiving end of sd_notify for one entry: a
 * datagram unix socket with SO_PASSCRED, so that each message comes with the sender's pid
 * (the kernel's, not a claim) for Lua to check against the entry's processes. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_NOTIFY_MT "orch.notify_listener"

typedef struct {
  uv_poll_t poll; /* first: the handle's uv pointer is this struct, freed by the close cb */
  int fd;
} listener;

/* Read every queued datagram: callback(message, sender_pid or 0).   */
static void on_readable(uv_poll_t *p, int status, int events)
{
  (void)events;
  orch_handle *h = p->data;
  listener *l = (listener *)p;
  if (h == NULL || status < 0)
    return;
  lua_State *L = h->ctx->L;
  for (;;) {
    char buf[4096];
    union {
      struct cmsghdr align;
      char space[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = { buf, sizeof buf - 1 };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.space;
    mh.msg_controllen = sizeof ctl.space;
    ssize_t n = recvmsg(l->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0)
      return; /* EAGAIN: drained (or an error the next readiness reports again) */
    if ((size_t)n > sizeof buf - 1)
      continue; /* longer than any sd_notify message we accept */
    pid_t pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
          c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        pid = cred.pid;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        /* fds sent along (FDSTORE=1): not supported, never kept */
        int *fds = (int *)CMSG_DATA(c);
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++)
          close(fds[i]);
      }
    }
    int base = orch_handle_push_cb(h);
    if (base < 0)
      return;
    lua_pushlstring(L, buf, (size_t)n);
    lua_pushinteger(L, pid);
    orch_call(h->ctx, 2);
    lua_settop(L, base);
    if (h->uv == NULL)
      return; /* closed by the callback */
  }
}

/* core.notify_listen(path, callback) -> listener | fail: bind a datagram socket at `path` and
 * call callback(message, pid) for each datagram.   [-0, +(1|3), v] */
static int core_notify_listen(lua_State *L)
{
  size_t plen;
  const char *path = luaL_checklstring(L, 1, &plen);
  struct sockaddr_un sa;
  luaL_argcheck(L, plen > 0 && plen < sizeof sa.sun_path && strlen(path) == plen, 1,
                "bad socket path");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "notify socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1)) != 0) {
    int err = uv_translate_sys_error(errno);
    close(fd);
    return orch_pushfail(L, err, lua_pushfstring(L, "notify socket %s", path));
  }
  orch_handle *h = orch_handle_new(L, ORCH_NOTIFY_MT, sizeof *h);
  listener *l = malloc(sizeof *l);
  if (l == NULL) {
    close(fd);
    return luaL_error(L, "not enough memory");
  }
  l->fd = fd;
  int err = uv_poll_init(&h->ctx->loop, &l->poll, fd);
  if (err < 0) {
    free(l);
    close(fd);
    return orch_pushfail(L, err, "notify socket poll");
  }
  orch_handle_attach(h, (uv_handle_t *)&l->poll);
  orch_handle_set_cb(L, h, lua_gettop(L), 2);
  uv_poll_start(&l->poll, UV_READABLE, on_readable);
  return 1;
}

/* listener:close(), also __gc and __close; idempotent   [-0, +0, -] */
static int listener_close(lua_State *L)
{
  orch_handle *h = luaL_checkudata(L, 1, ORCH_NOTIFY_MT);
  if (h->uv != NULL) {
    listener *l = (listener *)h->uv;
    uv_poll_stop(&l->poll);
    close(l->fd); /* not polled any more: safe before the handle's own close */
    l->fd = -1;
  }
  orch_handle_close(L, h);
  return 0;
}

static const luaL_Reg listener_methods[] = {
  { "close", listener_close },
  { NULL, NULL },
};

static const luaL_Reg listener_meta[] = {
  { "__gc", listener_close },
  { "__close", listener_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

void orch_notify_recv_open(lua_State *L)
{
  orch_new_type(L, ORCH_NOTIFY_MT, listener_meta, listener_methods);
  lua_pushcfunction(L, core_notify_listen);
  lua_setfield(L, -2, "notify_listen");
}
