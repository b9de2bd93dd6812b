/* probe_http_opts.c: the options table of core.http_get(), checked before any libcurl call, and
 * what the URL's host needs from libcurl's resolver. */
#include "probe_http_opts.h"

#include <string.h>
#include <strings.h>

#include <lauxlib.h>

/* Read and check the options table at `idx`. `timeout` is required: its default is policy
 * (orch.health's). Raises on misuse.   [-0, +0, v] */
void orch_http_check_opts(lua_State *L, int idx, http_opts *o)
{
  o->timeout = 0;
  o->max_redirects = HTTP_DEFAULT_MAX_REDIRECTS;
  o->insecure = o->head = 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int t = lua_type(L, -1);
    if (strcmp(key, "timeout") == 0) {
      luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0, idx,
                    "timeout must be a positive integer (ms)");
      o->timeout = lua_tointeger(L, -1);
    } else if (strcmp(key, "max_redirects") == 0) {
      luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0, idx,
                    "max_redirects must be a non-negative integer");
      o->max_redirects = lua_tointeger(L, -1);
    } else if (strcmp(key, "insecure") == 0) {
      luaL_argcheck(L, t == LUA_TBOOLEAN, idx, "insecure must be a boolean");
      o->insecure = lua_toboolean(L, -1);
    } else if (strcmp(key, "method") == 0) {
      const char *method = lua_tostring(L, -1);
      luaL_argcheck(L,
                    t == LUA_TSTRING && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0),
                    idx, "method must be 'GET' or 'HEAD'");
      o->head = method[0] == 'H';
    } else {
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -2, NULL)));
    }
  }
}

/* Whether the URL's host needs no name lookup: an IP literal, or "localhost" (which libcurl
 * resolves itself). Such probes keep nothing in libcurl's DNS cache: its entries are per
 * host:port, and every transfer walks them all to prune (1000 port-specific checks: 7 % of
 * orch's CPU in that walk). */
int orch_http_host_is_literal(const char *url)
{
  const char *h = strstr(url, "://");
  if (h == NULL)
    return 0;
  h += 3;
  const char *at = h + strcspn(h, "/?#");
  const char *cred = memchr(h, '@', (size_t)(at - h));
  if (cred != NULL)
    h = cred + 1;
  if (*h == '[')
    return 1;
  size_t n = strcspn(h, ":/?#");
  if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
    return 1;
  return n > 0 && strspn(h, "0123456789.") == n;
}
