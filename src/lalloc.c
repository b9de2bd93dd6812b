/* lalloc.c: the allocator of the orch binary's Lua state. Most Lua objects are small (tables,
 * closures, upvalues, short strings: 24 to 100 bytes) and Lua passes the size of a block when
 * it frees or resizes it, so small blocks need no header: they come from 8-byte size classes
 * carved out of 64 KiB slabs, and a freed block goes on its class's free list. glibc's malloc
 * adds 8 bytes to each and rounds to 16 (32 at least): with 1000 daemons that was ~1 MiB of
 * the heap. Large blocks go to malloc. Sanitizer builds use plain realloc, so that ASan and
 * valgrind still see every Lua block. */
#include "lalloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GRAIN     8u
#define SMALL_MAX 256u                    /* larger blocks come from malloc */
#define NCLASS    (SMALL_MAX / GRAIN + 1) /* class c holds blocks of c * GRAIN bytes */
#define SLAB_SIZE ((size_t)64 * 1024)

typedef struct slab {
  struct slab *next;
  max_align_t blocks[]; /* aligned for any Lua object */
} slab;

struct orch_lalloc {
  void *free_list[NCLASS]; /* each free block starts with the next free block of its class */
  slab *slabs;             /* every slab, for orch_lalloc_free */
  char *cur;               /* the unused end of the newest slab */
  size_t left;
};

orch_lalloc *orch_lalloc_new(void)
{
  return calloc(1, sizeof(orch_lalloc));
}

void orch_lalloc_free(orch_lalloc *a)
{
  if (a == NULL)
    return;
  for (slab *s = a->slabs; s != NULL;) {
    slab *next = s->next;
    free(s);
    s = next;
  }
  free(a);
}

#ifndef ORCH_PLAIN_LUA_ALLOC
static size_t class_of(size_t n)
{
  return (n + GRAIN - 1) / GRAIN;
}

static void *small_alloc(orch_lalloc *a, size_t n)
{
  size_t c = class_of(n);
  void *b = a->free_list[c];
  if (b != NULL) {
    memcpy(&a->free_list[c], b, sizeof(void *));
    return b;
  }
  size_t size = c * GRAIN;
  if (a->left < size) { /* the rest of the old slab (< SMALL_MAX bytes) stays unused */
    slab *s = malloc(SLAB_SIZE);
    if (s == NULL)
      return NULL;
    s->next = a->slabs;
    a->slabs = s;
    a->cur = (char *)s->blocks;
    a->left = SLAB_SIZE - (size_t)(a->cur - (char *)s);
  }
  b = a->cur;
  a->cur += size;
  a->left -= size;
  return b;
}

static void small_free(orch_lalloc *a, void *b, size_t n)
{
  size_t c = class_of(n);
  memcpy(b, &a->free_list[c], sizeof(void *));
  a->free_list[c] = b;
}

void *orch_lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
  orch_lalloc *a = ud;
  if (ptr == NULL) /* osize is then the kind of object, not a size */
    return nsize == 0 ? NULL : nsize <= SMALL_MAX ? small_alloc(a, nsize) : malloc(nsize);
  int was_small = osize <= SMALL_MAX;
  if (nsize == 0) {
    if (was_small)
      small_free(a, ptr, osize);
    else
      free(ptr);
    return NULL;
  }
  if (was_small && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize))
    return ptr;
  if (!was_small && nsize > SMALL_MAX)
    return realloc(ptr, nsize);
  void *nb = nsize <= SMALL_MAX ? small_alloc(a, nsize) : malloc(nsize);
  if (nb == NULL)
    /* Lua requires a shrink to succeed: a large block that shrinks keeps its place (it is then
     * recycled as a small one, lost to malloc until exit; only when memory is exhausted). */
    return nsize < osize ? ptr : NULL;
  memcpy(nb, ptr, osize < nsize ? osize : nsize);
  if (was_small)
    small_free(a, ptr, osize);
  else
    free(ptr);
  return nb;
}
#else
void *orch_lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}
#endif
