/* reap.h: between process.c (the children it spawned) and reap.c (the SIGCHLD watcher that
 * reaps them, and orphans). */
#ifndef ORCH_REAP_H
#define ORCH_REAP_H

#include <sys/types.h>

#include <lua.h>

#include "orch.h"

/* Start the SIGCHLD watcher once per ctx: 0 or a negative UV_E*.   [-0, +0, -] */
int orch_sigchld_start(orch_ctx *ctx);

/* Reference the watcher while ctx->live_procs > 0, unreference it otherwise.   [-0, +0, -] */
void orch_sigchld_refresh(orch_ctx *ctx);

/* In process.c: the child `pid` was reaped with `status`; 1 when it is ours.   [-0, +0, -] */
int orch_process_reaped(orch_ctx *ctx, pid_t pid, int status);

/* Register core.set_subreaper and core.orphans_reaped in the table at the top.   [-0, +0, m] */
void orch_reap_open(lua_State *L);

#endif
