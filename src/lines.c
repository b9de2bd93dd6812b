/* lines.c: the orch.lines module, raw output cut into lines without a Lua string per line.
 *
 * The output of every entry goes through here (orch.status, orch.log): a splitter turns the
 * chunks read from a pipe into blocks of complete lines, each ending in "\n", and prefix() puts
 * a prefix before every line of a block in one pass. At a line per 100 bytes, making a Lua
 * string per line cost orch most of its 18 ms of CPU per MB of output; a block is one string
 * per chunk, and in the usual case (no partial line pending, no CR, no over-long line) it is
 * the chunk itself.
 *
 * Pure functions and a small state, no I/O: the same module serves the real core and the
 * simulator's fake one. */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define SPLITTER_MT "orch.lines.splitter"
#define DEFAULT_MAX ((lua_Integer)64 * 1024) /* orch.runtime.line_splitter.MAX_LINE */

typedef struct splitter {
  size_t max; /* longest line in one piece (bytes) */
  char *buf;  /* the pending partial line, malloc'd (at most max bytes once fed) */
  size_t len; /* bytes pending */
  size_t cap; /* bytes allocated */
} splitter;

/* Where the first piece of an over-long line ends: `max` bytes, stepping back at most 3 bytes
 * so that a UTF-8 character is not cut in two.   [-0, +0, -] */
static size_t piece_len(const char *line, size_t max)
{
  for (size_t back = 0; back <= 3 && back < max; back++)
    if (((unsigned char)line[max - back] & 0xC0) != 0x80)
      return max - back;
  return max;
}

/* Add `line` (no "\n") to the block, cut into pieces of at most `max` bytes; returns the
 * number of lines added.   [-?, +?, m] */
static lua_Integer add_line(luaL_Buffer *b, const char *line, size_t n, size_t max)
{
  lua_Integer count = 0;
  while (n > max) {
    size_t k = piece_len(line, max);
    luaL_addlstring(b, line, k);
    luaL_addchar(b, '\n');
    line += k;
    n -= k;
    count++;
  }
  luaL_addlstring(b, line, n);
  luaL_addchar(b, '\n');
  return count + 1;
}

/* Keep `n` more bytes pending.   [-0, +0, m] */
static void pend(lua_State *L, splitter *sp, const char *s, size_t n)
{
  if (n == 0)
    return;
  if (sp->len + n > sp->cap) {
    size_t cap = sp->cap ? sp->cap : 256;
    while (cap < sp->len + n)
      cap *= 2;
    char *nb = realloc(sp->buf, cap);
    if (nb == NULL) {
      luaL_error(L, "not enough memory"); /* does not return */
      return;
    }
    sp->buf = nb;
    sp->cap = cap;
  }
  memcpy(sp->buf + sp->len, s, n);
  sp->len += n;
}

/* Add the leading pieces of an over-long pending line to the block, keeping at most `max`
 * bytes pending; returns the number of pieces.   [-?, +?, m] */
static lua_Integer add_pending_pieces(luaL_Buffer *b, splitter *sp)
{
  lua_Integer count = 0;
  size_t off = 0;
  while (sp->len - off > sp->max) {
    size_t k = piece_len(sp->buf + off, sp->max);
    luaL_addlstring(b, sp->buf + off, k);
    luaL_addchar(b, '\n');
    off += k;
    count++;
  }
  if (off > 0) {
    memmove(sp->buf, sp->buf + off, sp->len - off);
    sp->len -= off;
  }
  return count;
}

/* Whether the complete lines s[0..n) (n > 0, s[n-1] == '\n') can go out as they are: no CR
 * before a newline, no line over `max` bytes; counts the lines.   [-0, +0, -] */
static int plain_lines(const char *s, size_t n, size_t max, lua_Integer *count)
{
  const char *p = s, *end = s + n;
  lua_Integer c = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)(nl - p);
    if (len > max || (len > 0 && nl[-1] == '\r'))
      return 0;
    c++;
    p = nl + 1;
  }
  *count = c;
  return 1;
}

/* sp:feed(chunk) -> block, count | nil: the lines `chunk` completes, as one string of lines
 * each ending in "\n" (a CR before the newline removed, lines over the maximum cut into pieces
 * at a UTF-8 boundary when one is near), and how many; nil when it completes none (the rest is
 * kept for the next chunk). sp:feed(nil) (end of the stream): the pending partial line, if
 * any, as a block of one line.   [-0, +(1|2), m] */
static int splitter_feed(lua_State *L)
{
  splitter *sp = luaL_checkudata(L, 1, SPLITTER_MT);
  luaL_Buffer b;
  lua_Integer count = 0;
  if (lua_isnoneornil(L, 2)) {
    if (sp->len == 0) {
      lua_pushnil(L);
      return 1;
    }
    luaL_buffinitsize(L, &b, sp->len + 1);
    luaL_addlstring(&b, sp->buf, sp->len);
    luaL_addchar(&b, '\n');
    sp->len = 0;
    luaL_pushresult(&b);
    lua_pushinteger(L, 1);
    return 2;
  }
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  const char *last = n > 0 ? memrchr(s, '\n', n) : NULL;
  if (last == NULL) { /* no line ends here: all of it pending, over-long pieces out */
    pend(L, sp, s, n);
    if (sp->len <= sp->max) {
      lua_pushnil(L);
      return 1;
    }
    luaL_buffinit(L, &b);
    count = add_pending_pieces(&b, sp);
    luaL_pushresult(&b);
    lua_pushinteger(L, count);
    return 2;
  }
  size_t whole = (size_t)(last - s) + 1; /* bytes up to and with the last newline */
  size_t rest = n - whole;
  if (sp->len == 0 && rest <= sp->max && plain_lines(s, whole, sp->max, &count)) {
    if (rest == 0)
      lua_pushvalue(L, 2); /* the usual case: the chunk is the block */
    else
      lua_pushlstring(L, s, whole);
    pend(L, sp, s + whole, rest);
    lua_pushinteger(L, count);
    return 2;
  }
  luaL_buffinitsize(L, &b, sp->len + whole);
  for (const char *p = s, *end = s + whole; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *line = p;
    size_t len = (size_t)(nl - p);
    if (sp->len > 0) { /* the first line completes the pending one */
      pend(L, sp, p, len);
      line = sp->buf;
      len = sp->len;
      sp->len = 0;
    }
    if (len > 0 && line[len - 1] == '\r')
      len--;
    count += add_line(&b, line, len, sp->max);
    p = nl + 1;
  }
  pend(L, sp, s + whole, rest);
  count += add_pending_pieces(&b, sp);
  luaL_pushresult(&b);
  lua_pushinteger(L, count);
  return 2;
}

/* sp:pending() -> bytes of the partial line kept.   [-0, +1, -] */
static int splitter_pending(lua_State *L)
{
  splitter *sp = luaL_checkudata(L, 1, SPLITTER_MT);
  lua_pushinteger(L, (lua_Integer)sp->len);
  return 1;
}

static int splitter_gc(lua_State *L)
{
  splitter *sp = luaL_checkudata(L, 1, SPLITTER_MT);
  free(sp->buf);
  sp->buf = NULL;
  sp->len = sp->cap = 0;
  return 0;
}

/* lines.splitter([max]) -> a splitter of one stream; `max`: the longest line in one piece
 * (bytes, default 65536, at least 4).   [-0, +1, m] */
static int lines_splitter(lua_State *L)
{
  lua_Integer max = luaL_optinteger(L, 1, DEFAULT_MAX);
  luaL_argcheck(L, max >= 4, 1, "a length of at least 4 bytes expected");
  splitter *sp = lua_newuserdatauv(L, sizeof *sp, 0);
  memset(sp, 0, sizeof *sp);
  sp->max = (size_t)max;
  luaL_setmetatable(L, SPLITTER_MT);
  return 1;
}

/* The number of lines of s[0..n) (a last one without "\n" counts).   [-0, +0, -] */
static size_t count_lines(const char *s, size_t n)
{
  size_t count = 0;
  for (const char *p = s, *end = s + n; p < end; count++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  return count;
}

/* lines.prefix(block, prefix[, count]) -> the block with `prefix` before each of its lines (a
 * last line without "\n" gets one). `count`, the block's number of lines when the caller has
 * it (the splitter's), saves a pass over the block; a wrong one is an error.   [-0, +1, v] */
static int lines_prefix(lua_State *L)
{
  size_t n, plen;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *prefix = luaL_checklstring(L, 2, &plen);
  size_t count = lua_isnoneornil(L, 3) ? count_lines(s, n) : (size_t)luaL_checkinteger(L, 3);
  int open_end = n > 0 && s[n - 1] != '\n';
  luaL_Buffer b;
  size_t size = n + count * plen + (size_t)open_end;
  char *out = luaL_buffinitsize(L, &b, size);
  char *limit = out + size;
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
    if ((size_t)(limit - out) < plen + len + (size_t)open_end)
      return luaL_argerror(L, 3, "more lines in the block than counted");
    memcpy(out, prefix, plen);
    memcpy(out + plen, p, len);
    out += plen + len;
    p += len;
  }
  if (open_end)
    *out++ = '\n';
  luaL_pushresultsize(&b, (size_t)(out - b.b));
  return 1;
}

/* lines.count(block) -> the number of lines of a block (a last one without "\n" counts).
 * [-0, +1, -] */
static int lines_count(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)count_lines(s, n));
  return 1;
}

static const luaL_Reg splitter_methods[] = {
  { "feed", splitter_feed },
  { "pending", splitter_pending },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "splitter", lines_splitter },
  { "prefix", lines_prefix },
  { "count", lines_count },
  { NULL, NULL },
};

int luaopen_orch_lines(lua_State *L)
{
  if (luaL_newmetatable(L, SPLITTER_MT)) {
    luaL_newlib(L, splitter_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, splitter_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, DEFAULT_MAX);
  lua_setfield(L, -2, "MAX_LINE");
  return 1;
}
