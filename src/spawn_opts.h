/* spawn_opts.h: core.spawn's Lua arguments into an orch_spawn_req (see spawn_opts.c). */
#ifndef ORCH_SPAWN_OPTS_H
#define ORCH_SPAWN_OPTS_H

#include <stddef.h>

#include <lua.h>

#include "spawn.h"

/* 'inherit', 'ignore': the stdio modes besides a chunk callback. */
extern const char *const ORCH_STDIO_MODES[];

/* Read argv (table at 1) and opts (table at 2): argv, env, cwd, setsid, pidns, cgroup, fds, uid,
 * gid and groups_of (strings borrowed from the tables). Raises on misuse:
 * NUL bytes in argv, env, cwd, cgroup or groups_of; a uid or gid that is not an integer from 0
 * to 2^32 - 2; a bad stdio mode. Pushes argv's and envp's arrays (or nil).   [-0, +2, v] */
void orch_spawn_opts_read(lua_State *L, orch_spawn_req *req);

/* Make the stdio setting at opts[field]: 'inherit', 'ignore' or a chunk callback. On a
 * callback, stores its ref and creates the pipe whose write end goes to the child. 0 or a
 * negative UV_E* code.   [-0, +0, v] */
int orch_spawn_stdio(lua_State *L, int opts, const char *field, int *ref, int *child_fd,
                     int *parent_fd);

/* Free what orch_spawn_opts_read and the spawn allocated or opened (idempotent). */
void orch_spawn_req_free(orch_spawn_req *req);

#endif
