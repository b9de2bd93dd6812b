/* tty.c: core.tty(fd), the terminal for `orch ui` on a uv_tty_t: keys read in the loop, raw
 * mode on and off, the window size; and core.tty_reset(), which puts back the mode the terminal
 * had before the first raw mode (uv_tty_reset_mode: safe from any exit path). libuv reopens
 * the terminal for its own file description, so its O_NONBLOCK never reaches fd 0 itself. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"

#define ORCH_TTY_MT "orch.tty"

/* The open orch.tty at `idx` (base.uv: a uv_tty_t; base.cb_ref: the read callback); raises
 * when it is closed.   [-0, +0, v] */
static orch_handle *tty_check(lua_State *L, int idx)
{
  return orch_handle_check(L, idx, ORCH_TTY_MT);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  (void)h;
  (void)hint;
  buf->base = malloc(4096); /* freed in on_read */
  buf->len = buf->base ? 4096 : 0;
}

/* The read callback gets the bytes, or nil and the error name ('EOF' when the terminal is
 * gone). */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  orch_handle *h = s->data;
  if (n != 0 && h != NULL) {
    lua_State *L = h->ctx->L;
    int base = orch_handle_push_cb(h);
    if (base >= 0) {
      if (n > 0) {
        lua_pushlstring(L, buf->base, (size_t)n);
        orch_call(h->ctx, 1);
      } else {
        uv_read_stop(s); /* an error or EOF ends reading: nothing more will come */
        lua_pushnil(L);
        lua_pushstring(L, uv_err_name((int)n));
        orch_call(h->ctx, 2);
      }
      lua_settop(L, base);
    }
  }
  free(buf->base);
}

/* core.tty(fd) -> tty | fail   [-0, +(1|3), m] */
static int core_tty(lua_State *L)
{
  int fd = (int)luaL_checkinteger(L, 1);
  orch_handle *h = orch_handle_new(L, ORCH_TTY_MT, sizeof *h);
  uv_tty_t *t = malloc(sizeof *t);
  if (t == NULL)
    return luaL_error(L, "not enough memory");
  int err = uv_tty_init(&h->ctx->loop, t, fd, 1);
  if (err < 0) {
    free(t);
    return orch_pushfail(L, err, lua_pushfstring(L, "tty %d", fd));
  }
  orch_handle_attach(h, (uv_handle_t *)t);
  return 1;
}

/* tty:read_start(cb) -> true | fail   [-0, +(1|3), v] */
static int tty_read_start(lua_State *L)
{
  orch_handle *h = tty_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int err = uv_read_start((uv_stream_t *)h->uv, on_alloc, on_read);
  if (err < 0)
    return orch_pushfail(L, err, "tty read");
  orch_handle_set_cb(L, h, 1, 2);
  lua_pushboolean(L, 1);
  return 1;
}

static int tty_read_stop(lua_State *L)
{
  orch_handle *h = tty_check(L, 1);
  uv_read_stop((uv_stream_t *)h->uv);
  orch_handle_unanchor(L, h);
  return 0;
}

/* tty:set_mode('raw'|'normal') -> true | fail   [-0, +(1|3), v] */
static int tty_set_mode(lua_State *L)
{
  static const char *const modes[] = { "normal", "raw", NULL };
  static const uv_tty_mode_t uv_modes[] = { UV_TTY_MODE_NORMAL, UV_TTY_MODE_RAW };
  orch_handle *h = tty_check(L, 1);
  int err = uv_tty_set_mode((uv_tty_t *)h->uv, uv_modes[luaL_checkoption(L, 2, NULL, modes)]);
  if (err < 0)
    return orch_pushfail(L, err, "tty mode");
  lua_pushboolean(L, 1);
  return 1;
}

/* tty:winsize() -> cols, rows | fail   [-0, +(2|3), v] */
static int tty_winsize(lua_State *L)
{
  int w, rows;
  int err = uv_tty_get_winsize((uv_tty_t *)tty_check(L, 1)->uv, &w, &rows);
  if (err < 0)
    return orch_pushfail(L, err, "tty size");
  lua_pushinteger(L, w);
  lua_pushinteger(L, rows);
  return 2;
}

static int tty_close(lua_State *L)
{
  orch_handle_close(L, luaL_checkudata(L, 1, ORCH_TTY_MT));
  return 0;
}

/* core.tty_reset() -> true | fail: the terminal mode before the first raw mode.
 * [-0, +(1|3), -] */
static int core_tty_reset(lua_State *L)
{
  int err = uv_tty_reset_mode();
  if (err < 0)
    return orch_pushfail(L, err, "tty reset");
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg tty_methods[] = {
  { "read_start", tty_read_start }, { "read_stop", tty_read_stop }, { "set_mode", tty_set_mode },
  { "winsize", tty_winsize },       { "close", tty_close },         { NULL, NULL },
};

static const luaL_Reg tty_meta[] = {
  { "__gc", tty_close },
  { "__close", tty_close },
  { "__tostring", orch_handle_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "tty", core_tty },
  { "tty_reset", core_tty_reset },
  { NULL, NULL },
};

void orch_tty_open(lua_State *L)
{
  orch_new_type(L, ORCH_TTY_MT, tty_meta, tty_methods);
  luaL_setfuncs(L, funcs, 0);
}
