/* notify.c: sd_notify over a datagram socket (no libsystemd), and isatty for the logger. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

/* core.notify(socket_path, message) -> true | fail; '@' names an abstract socket.
 * [-0, +(1|3), v] */
static int core_notify(lua_State *L)
{
  size_t plen, mlen;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *msg = luaL_checklstring(L, 2, &mlen);
  struct sockaddr_un sa;
  luaL_argcheck(L, plen > 0 && plen < sizeof sa.sun_path, 1, "bad socket path");
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@')
    sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return orch_pushfail(L, uv_translate_sys_error(errno), "notify socket");
  ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = n < 0 ? uv_translate_sys_error(errno) : 0;
  close(fd);
  if (err < 0)
    return orch_pushfail(L, err, lua_pushfstring(L, "notify %s", path));
  lua_pushboolean(L, 1);
  return 1;
}

/* core.isatty(fd) -> boolean   [-0, +1, v] */
static int core_isatty(lua_State *L)
{
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg funcs[] = {
  { "notify", core_notify },
  { "isatty", core_isatty },
  { NULL, NULL },
};

void orch_notify_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
