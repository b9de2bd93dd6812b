/* spawn_resolve.c: the lookup of a command's argv[0] along PATH, as execvp does it (an empty
 * PATH element is the current directory), telling "not executable" (EACCES) from "not found". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "spawn.h"

static int is_exec_file(const char *path, int *saw_eacces)
{
  struct stat st;
  if (stat(path, &st) != 0 || S_ISDIR(st.st_mode))
    return 0;
  if (access(path, X_OK) == 0)
    return 1;
  *saw_eacces = 1;
  return 0;
}

int orch_spawn_resolve(orch_spawn_req *req, const char **detail)
{
  const char *name = req->argv[0];
  *detail = NULL;
  req->stage = "exec";
  if (name[0] == '\0')
    return UV_ENOENT;
  if (strchr(name, '/') != NULL || req->join_pid != 0) { /* joined: looked up inside */
    req->file = strdup(name);
    return req->file ? 0 : UV_ENOMEM;
  }
  const char *path = req->path_env ? req->path_env : getenv("PATH");
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  size_t nlen = strlen(name);
  int saw_eacces = 0;
  while (*path) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    char *cand = malloc(dlen + nlen + 3);
    if (cand == NULL)
      return UV_ENOMEM;
    if (dlen == 0)
      snprintf(cand, nlen + 3, "./%s", name);
    else
      snprintf(cand, dlen + nlen + 2, "%.*s/%s", (int)dlen, path, name);
    if (is_exec_file(cand, &saw_eacces)) {
      req->file = cand;
      return 0;
    }
    free(cand);
    if (end == NULL)
      break;
    path = end + 1;
  }
  return saw_eacces ? UV_EACCES : UV_ENOENT;
}
