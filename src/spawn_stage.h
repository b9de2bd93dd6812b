/* spawn_stage.h: the steps of a spawn that can fail, as the child reports them (spawn.c), and
 * their names and messages for Lua (spawn_stage.c). */
#ifndef ORCH_SPAWN_STAGE_H
#define ORCH_SPAWN_STAGE_H

#include "spawn.h"

enum stage {
  ST_HOST_PID = 1,
  ST_CHILD_PID, /* not a failure either: the real process of a pid_in_child spawn */
  ST_SETSID,
  ST_STDIO,
  ST_CHDIR,
  ST_GROUPS,
  ST_GID,
  ST_UID,
  ST_PDEATH,
  ST_MOUNT,
  ST_CGROUP,
  ST_RLIMIT,
  ST_JOIN,
  ST_OVERLAY,
  ST_CAPS,
  ST_EXEC
};

/* The static name of a failed step, for Lua to branch on (never the message text). */
const char *orch_spawn_stage_name(int stage);
/* What the failed step was, for the error message (may be written into req->detail), or NULL. */
const char *orch_spawn_stage_text(orch_spawn_req *req, int stage, int err);

#endif
