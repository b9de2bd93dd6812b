/* spawn_ns.h: what a subcontainer adds to a spawn (see spawn_ns.c). */
#ifndef ORCH_SPAWN_NS_H
#define ORCH_SPAWN_NS_H

#include "spawn.h"

/* Open what the read asked for (namespace fds, overlay paths, stdin). 0 or a negative UV_E*
 * code with *detail saying what failed. */
int orch_spawn_ns_open(orch_spawn_req *req, const char **detail);
/* In the parent, around the clone: children are born in the leader's PID namespace. */
int orch_spawn_ns_enter_pid(orch_spawn_req *req);
void orch_spawn_ns_leave_pid(orch_spawn_req *req);
/* In the child (async-signal-safe): enter the leader's namespaces / make the leader's mount
 * namespace. 0, or -1 with errno set. */
int orch_spawn_ns_join(orch_spawn_req *req);
int orch_spawn_ns_overlay(orch_spawn_req *req);
/* In the child: drop the capabilities not kept from the bounding set. 0 or -1. */
int orch_spawn_ns_caps(orch_spawn_req *req);
/* In the child: exec argv[0] searched along the PATH of envp (the subcontainer's, inside its
 * root); returns only on failure, with errno set. */
void orch_spawn_ns_exec(orch_spawn_req *req, char *const envp[]);
/* Close and free what orch_spawn_ns_open made (idempotent). */
void orch_spawn_ns_free(orch_spawn_req *req);

#endif
