/* test_http_nocurl.c: core.http_get when libcurl cannot be loaded. tests.cmake builds the core
 * again for this binary with ORCH_LIBCURL_SONAME naming a library that does not exist. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_check.h"
#include "orch.h"

/* Run `code` with `core` bound to a freshly opened orch.core; returns its first result as a
 * malloc'd string ("ERROR: ..." when it raised). */
static char *run_lua(const char *code)
{
  lua_State *L = lua_check_state();
  int ok = luaL_loadstring(L, code) == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK;
  return lua_check_outcome(L, ok);
}

/* nil, a message naming the library and why, ECURL; the callback never runs. */
static void fails_with_the_dlopen_error(void)
{
  CHECK_LUA("local called = false "
            "local p, msg, code = core.http_get('http://127.0.0.1:9/', {timeout = 1000}, "
            "  function() called = true end) "
            "core.run() "
            "return table.concat({ tostring(p), msg, code, tostring(called) }, '|')",
            "nil|http_get http://127.0.0.1:9/: HTTP checks need libcurl: "
            "liborch-test-no-such-curl.so.4: cannot open shared object file: No such file or "
            "directory|ECURL|false");
}

/* Each call tries again (libcurl may have been installed since) and fails the same way. */
static void fails_again_on_the_next_call(void)
{
  CHECK_LUA("local a = select(2, core.http_get('http://127.0.0.1:9/a', {timeout = 1000}, print)) "
            "local b = select(2, core.http_get('http://127.0.0.1:9/b', {timeout = 1000}, print)) "
            "return a:match('need libcurl: .*$') == b:match('need libcurl: .*$')",
            "true");
}

/* Arguments are still checked first, and the rest of the core is unaffected. */
static void the_rest_still_works(void)
{
  CHECK_LUA("local ok, e = pcall(function() core.http_get('http://127.0.0.1:9/', "
            "  { timeuot = 5 }, print) end) "
            "return e:match('bad argument.*')",
            "bad argument #2 to 'http_get' (unknown option 'timeuot')");
  CHECK_LUA("core.http_get('http://127.0.0.1:9/', {timeout = 1000}, print) "
            "local n, t = 0, core.timer() "
            "t:start(1, 0, function() n = n + 1 end) "
            "core.run() return n",
            "1");
}

int main(void)
{
  static const check_case cases[] = {
    { "http_get fails with the dlopen error", fails_with_the_dlopen_error },
    { "http_get fails again on the next call", fails_again_on_the_next_call },
    { "argument checks and timers still work", the_rest_still_works },
  };
  return check_run(cases, (int)(sizeof cases / sizeof cases[0]));
}
