/* bytecode.c: a package searcher that loads orch's Lua modules from the bytecode bundle the
 * build makes (tools/luac.lua) instead of compiling their source at every start (about 10 ms
 * of the 40 before the first process of a small main.lua).
 *
 * A module's bytecode is used only when the bundle was made for the library directory in use
 * and the module's source file there still has the text it was compiled from (FNV-1a of the
 * whole file): an edited, missing or unknown module falls through to the usual source
 * searcher. Only the index stays in memory; each module's bytecode is read when required. */
#include "bytecode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "procfs.h"

#define MAGIC      "ORCHBC1"                  /* and a NUL: 8 bytes */
#define MAX_INDEX  ((size_t)64 * 1024)        /* the header and index fit (about 9 KiB) */
#define MAX_SOURCE ((size_t)16 * 1024 * 1024) /* a module's source file read to check it */
#define BUNDLE_MT  "orch.bytecode.bundle"

typedef struct module {
  char *rel;       /* path under the library directory, e.g. orch/cli/run.lua */
  uint64_t hash;   /* FNV-1a 64 of the source text compiled */
  uint32_t offset; /* of the bytecode in the bundle */
  uint32_t len;
} module;

typedef struct bundle {
  int fd;    /* the bundle, -1 once closed */
  char *dir; /* the library directory it was made for, canonical */
  size_t count;
  module *mods;
} bundle;

static uint64_t fnv1a(const char *s, size_t n)
{
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
  return h;
}

/* A reader of the index: bounds-checked, `ok` cleared by any overrun. */
typedef struct cursor {
  const char *p, *end;
  int ok;
} cursor;

static void take(cursor *c, void *out, size_t n)
{
  if (!c->ok || (size_t)(c->end - c->p) < n) {
    c->ok = 0;
    memset(out, 0, n);
    return;
  }
  memcpy(out, c->p, n);
  c->p += n;
}

static char *take_string(cursor *c)
{
  uint32_t n = 0;
  take(c, &n, sizeof n);
  if (!c->ok || (size_t)(c->end - c->p) < n) {
    c->ok = 0;
    return NULL;
  }
  char *s = malloc((size_t)n + 1);
  if (s == NULL) {
    c->ok = 0;
    return NULL;
  }
  memcpy(s, c->p, n);
  s[n] = '\0';
  c->p += n;
  return s;
}

static void bundle_free(bundle *b)
{
  if (b->fd >= 0)
    close(b->fd);
  b->fd = -1;
  for (size_t i = 0; i < b->count; i++)
    free(b->mods[i].rel);
  free(b->mods);
  free(b->dir);
  b->mods = NULL;
  b->dir = NULL;
  b->count = 0;
}

static int bundle_gc(lua_State *L)
{
  bundle_free(luaL_checkudata(L, 1, BUNDLE_MT));
  return 0;
}

/* Read the header and index of the bundle at `path` into `b`; 0 when it is one.
 * [-0, +0, -] */
static int bundle_open(bundle *b, const char *path)
{
  char *data = NULL;
  size_t len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  data = malloc(MAX_INDEX);
  ssize_t n = data ? pread(fd, data, MAX_INDEX, 0) : -1;
  if (n < (ssize_t)sizeof MAGIC || memcmp(data, MAGIC, sizeof MAGIC) != 0) {
    free(data);
    close(fd);
    return -1;
  }
  len = (size_t)n;
  cursor c = { data + sizeof MAGIC, data + len, 1 };
  b->fd = fd;
  b->dir = take_string(&c);
  uint32_t count = 0;
  take(&c, &count, sizeof count);
  b->mods = c.ok && count > 0 ? calloc(count, sizeof *b->mods) : NULL;
  for (uint32_t i = 0; b->mods != NULL && c.ok && i < count; i++) {
    module *m = &b->mods[b->count];
    m->rel = take_string(&c);
    take(&c, &m->hash, sizeof m->hash);
    take(&c, &m->offset, sizeof m->offset);
    take(&c, &m->len, sizeof m->len);
    if (m->rel != NULL)
      b->count++;
  }
  free(data);
  if (!c.ok || b->mods == NULL || b->count != count) {
    bundle_free(b);
    return -1;
  }
  return 0;
}

static const module *find(const bundle *b, const char *rel)
{
  for (size_t i = 0; i < b->count; i++)
    if (strcmp(b->mods[i].rel, rel) == 0)
      return &b->mods[i];
  return NULL;
}

/* The searcher: (name) -> loader, path | message.   [-0, +(1|2), m] */
static int search(lua_State *L)
{
  luaL_checkstring(L, 1);
  bundle *b = luaL_checkudata(L, lua_upvalueindex(1), BUNDLE_MT);
  /* The file the source searcher would load: a directory put before the library's on
   * package.path (orch test --lpath, a script's own modules) still wins. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushvalue(L, 1);
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  const char *found = lua_tostring(L, -1);
  size_t dir_len = strlen(b->dir);
  const module *m = NULL;
  if (found != NULL && strncmp(found, b->dir, dir_len) == 0 && found[dir_len] == '/')
    m = find(b, found + dir_len + 1);
  if (m == NULL) {
    lua_pushliteral(L, "\n\tno module in orch's bytecode bundle");
    return 1;
  }
  char *src = NULL;
  size_t src_len = 0;
  const char *file = found;
  int fresh = orch_read_file(AT_FDCWD, file, MAX_SOURCE, &src, &src_len) == 0 &&
              fnv1a(src, src_len) == m->hash;
  free(src);
  if (!fresh) {
    lua_pushfstring(L, "\n\tbytecode of '%s' not used: the source changed", file);
    return 1;
  }
  char *code = malloc(m->len ? m->len : 1);
  ssize_t got = code ? pread(b->fd, code, m->len, (off_t)m->offset) : -1;
  int status = got == (ssize_t)m->len ? luaL_loadbufferx(L, code, m->len, file, "b") : LUA_ERRFILE;
  free(code);
  if (status != LUA_OK) { /* a bundle of another Lua build, or damaged: compile the source */
    lua_pushfstring(L, "\n\tbytecode of '%s' not loaded", file);
    return 1;
  }
  lua_pushstring(L, file);
  return 2;
}

int orch_bytecode_install(lua_State *L, const char *path, const char *lua_dir)
{
  bundle b = { -1, NULL, 0, NULL };
  char *want = realpath(lua_dir, NULL);
  char *have = NULL;
  int ok = want != NULL && bundle_open(&b, path) == 0 && (have = realpath(b.dir, NULL)) != NULL &&
           strcmp(want, have) == 0;
  free(want);
  if (!ok) {
    free(have);
    bundle_free(&b);
    return 0;
  }
  free(b.dir); /* the canonical name: package.path's, and what searchpath finds */
  b.dir = have;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  bundle *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = b;
  if (luaL_newmetatable(L, BUNDLE_MT)) {
    lua_pushcfunction(L, bundle_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, search, 1);
  /* second, after package.preload's searcher: before the source searcher */
  for (lua_Integer i = (lua_Integer)luaL_len(L, -2); i >= 2; i--) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -3, i + 1);
  }
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
  return 1;
}
