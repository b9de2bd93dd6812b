/* spawn_stage.c: what a failed spawn step is called, for Lua (a static name to branch on) and
 * for the user (a message naming the step: the cwd, the cgroup, a missing "#!" interpreter). */
#include "spawn_stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *orch_spawn_stage_name(int stage)
{
  static const char *const NAMES[] = {
    [ST_SETSID] = "setsid",     [ST_STDIO] = "stdio",       [ST_CHDIR] = "cwd",
    [ST_GROUPS] = "user",       [ST_GID] = "user",          [ST_UID] = "user",
    [ST_PDEATH] = "prctl",      [ST_MOUNT] = "pidns",       [ST_CGROUP] = "cgroup",
    [ST_RLIMIT] = "rlimit",     [ST_JOIN] = "subcontainer", [ST_OVERLAY] = "subcontainer",
    [ST_CAPS] = "subcontainer", [ST_EXEC] = "exec"
  };
  return stage > 0 && stage <= ST_EXEC && NAMES[stage] ? NAMES[stage] : "exec";
}

/* exec failed with ENOENT although the file exists: its "#!" interpreter is missing. Names it
 * in req->detail; NULL when the file has no such line (a missing ELF loader, say). */
static const char *bad_interpreter(orch_spawn_req *req)
{
  char head[128];
  int fd = open(req->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, head, sizeof head - 1);
  close(fd);
  if (n < 3 || head[0] != '#' || head[1] != '!')
    return NULL;
  head[n] = '\0';
  char *p = head + 2;
  while (*p == ' ' || *p == '\t')
    p++;
  size_t len = strcspn(p, " \t\r\n");
  if (len == 0)
    return NULL;
  snprintf(req->detail, sizeof req->detail, "bad interpreter '%.*s'", (int)len, p);
  return req->detail;
}

const char *orch_spawn_stage_text(orch_spawn_req *req, int stage, int err)
{
  switch (stage) {
  case ST_EXEC:
    return err == ENOENT && !req->join_pid ? bad_interpreter(req) : NULL;
  case ST_JOIN:
    return "enter the subcontainer's namespaces";
  case ST_OVERLAY:
    return "mount the subcontainer's overlay root";
  case ST_CAPS:
    return "drop capabilities (PR_CAPBSET_DROP)";
  case ST_SETSID:
    return "setsid";
  case ST_STDIO:
    return "stdio";
  case ST_CHDIR:
    snprintf(req->detail, sizeof req->detail, "cwd '%s'", req->cwd);
    return req->detail;
  case ST_GROUPS:
    return "setgroups";
  case ST_GID:
    return "setgid";
  case ST_UID:
    return "setuid";
  case ST_PDEATH:
    return "prctl(PR_SET_PDEATHSIG)";
  case ST_RLIMIT:
    return "setrlimit (exec.limits.nofile/core)";
  case ST_MOUNT:
    return "mount /proc in the new PID namespace";
  case ST_CGROUP:
    snprintf(req->detail, sizeof req->detail, "join cgroup '%s'", req->cgroup);
    return req->detail;
  default:
    return NULL;
  }
}
