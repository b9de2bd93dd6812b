/* lalloc.h: the Lua allocator of the orch binary (size-class pools for small blocks). */
#ifndef ORCH_LALLOC_H
#define ORCH_LALLOC_H

#include <stddef.h>

typedef struct orch_lalloc orch_lalloc;

/* A new allocator state (NULL when out of memory), and its release after lua_close. */
orch_lalloc *orch_lalloc_new(void);
void orch_lalloc_free(orch_lalloc *a);
/* A lua_Alloc; `ud` is the orch_lalloc. */
void *orch_lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
