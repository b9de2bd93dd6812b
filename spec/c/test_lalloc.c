/* spec/c/test_lalloc.c: the Lua allocator of the orch binary (src/lalloc.c): block reuse per
 * size class, contents kept across every kind of resize, and a real Lua state running on it
 * (also under valgrind: every slab is released by orch_lalloc_free). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "lalloc.h"

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(seed + i);
}

static int same(const unsigned char *p, size_t n, unsigned char seed)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i))
      return 0;
  return 1;
}

static void aligned_and_reused(void)
{
  orch_lalloc *a = orch_lalloc_new();
  CHECK(a != NULL);
  void *b1 = orch_lalloc_fn(a, NULL, LUA_TTABLE, 56);
  void *b2 = orch_lalloc_fn(a, NULL, LUA_TTABLE, 56);
  CHECK(b1 != NULL && b2 != NULL && b1 != b2);
  CHECK_EQ((uintptr_t)b1 % 8, 0);
  CHECK_EQ((uintptr_t)b2 % 8, 0);
  orch_lalloc_fn(a, b1, 56, 0);
  void *b3 = orch_lalloc_fn(a, NULL, LUA_TSTRING, 50);
  orch_lalloc_fn(a, b3, 50, 0);
  void *b4 = orch_lalloc_fn(a, NULL, LUA_TSTRING, 24);
#ifndef ORCH_PLAIN_LUA_ALLOC /* sanitizer builds: plain realloc, no pools */
  CHECK(b3 == b1); /* same class (50 and 56 both round to 56): the freed block comes back */
  CHECK(b4 != b1); /* a different class does not take it */
#endif
  orch_lalloc_fn(a, b2, 56, 0);
  orch_lalloc_fn(a, b4, 24, 0);
  orch_lalloc_free(a);
}

static void resizes_keep_contents(void)
{
  orch_lalloc *a = orch_lalloc_new();
  /* small -> small (same class: in place), small -> larger small, small -> large,
   * large -> larger large, large -> small, small -> free */
  static const size_t steps[] = { 20, 24, 100, 256, 257, 4000, 100000, 300, 200, 8 };
  size_t n = 16;
  unsigned char *p = orch_lalloc_fn(a, NULL, 0, n);
  fill(p, n, 7);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    size_t m = steps[i];
    unsigned char *q = orch_lalloc_fn(a, p, n, m);
    CHECK(q != NULL);
    CHECK(same(q, n < m ? n : m, 7));
#ifndef ORCH_PLAIN_LUA_ALLOC
    if (m == 24)
      CHECK(q == p); /* 20 and 24 share a class: resized in place */
#endif
    fill(q, m, 7);
    p = q;
    n = m;
  }
  CHECK(orch_lalloc_fn(a, p, n, 0) == NULL);
  orch_lalloc_free(a);
}

static void many_blocks_span_slabs(void)
{
  orch_lalloc *a = orch_lalloc_new();
  enum { N = 20000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    size_t n = 8 + (size_t)(i % 31) * 8;
    blocks[i] = orch_lalloc_fn(a, NULL, 0, n);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], i & 0xff, n);
  }
  for (int i = 0; i < N; i++) {
    size_t n = 8 + (size_t)(i % 31) * 8;
    unsigned char *b = blocks[i];
    CHECK(b[0] == (unsigned char)(i & 0xff) && b[n - 1] == (unsigned char)(i & 0xff));
    orch_lalloc_fn(a, blocks[i], n, 0);
  }
  orch_lalloc_free(a);
}

static void a_lua_state_runs_on_it(void)
{
  orch_lalloc *a = orch_lalloc_new();
  lua_State *L = lua_newstate(orch_lalloc_fn, a);
  CHECK(L != NULL);
  luaL_openlibs(L);
  const char *code =
      "local t = {}\n"
      "for i = 1, 20000 do t[i] = { id = 'd' .. i, n = i, f = function() return i end } end\n"
      "local big = string.rep('x', 100000) .. #t\n"
      "for i = 1, 20000, 2 do t[i] = nil end\n"
      "collectgarbage()\n"
      "local s = 0\n"
      "for i = 2, 20000, 2 do s = s + t[i].f() end\n"
      "local co = coroutine.wrap(function(x) local y = coroutine.yield(x + 1) return y * 2 end)\n"
      "assert(co(1) == 2 and co(21) == 42)\n"
      "return s, #big";
  CHECK_EQ(luaL_dostring(L, code), LUA_OK);
  CHECK_EQ(lua_tointeger(L, -2), 100010000);
  CHECK_EQ(lua_tointeger(L, -1), 100005);
  lua_close(L);
  orch_lalloc_free(a);
}

int main(void)
{
  static const check_case cases[] = {
    { "blocks are 8-byte aligned and reused within their size class", aligned_and_reused },
    { "resizes across classes and to and from malloc keep the contents", resizes_keep_contents },
    { "20000 blocks of 31 sizes span slabs and keep their contents", many_blocks_span_slabs },
    { "a Lua state runs on it (tables, closures, big strings, GC, coroutines)",
      a_lua_state_runs_on_it },
  };
  return check_run(cases, (int)(sizeof cases / sizeof cases[0]));
}
