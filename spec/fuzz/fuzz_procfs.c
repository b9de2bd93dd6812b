/* fuzz_procfs.c: libFuzzer harness for the procfs/cgroupfs parsers of process tracking
 * (src/procfs.c) and the PATH lookup of argv[0] (orch_spawn_resolve, src/spawn.c). The first
 * byte picks the parser; none may read past its input or report a result it could not parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"
#include "spawn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const CONTROLLERS[] = { NULL, "", "pids", "cpu", "name=systemd", "cpu,cpuacct" };

/* Split [data, data + size) at the first NUL into a C string (malloc'd) and the rest. */
static char *head_string(const uint8_t **data, size_t *size)
{
  const uint8_t *nul = memchr(*data, 0, *size);
  size_t n = nul ? (size_t)(nul - *data) : *size;
  char *s = malloc(n + 1);
  if (s == NULL)
    return NULL;
  memcpy(s, *data, n);
  s[n] = '\0';
  *data += nul ? n + 1 : n;
  *size -= nul ? n + 1 : n;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  unsigned which = data[0] % 6, arg = data[1];
  data += 2;
  size -= 2;
  const char *text = (const char *)data;
  switch (which) {
  case 0: {
    orch_stat st;
    if (orch_procfs_stat(text, size, &st) == 0 && st.pid < 0)
      __builtin_trap();
    break;
  }
  case 1: {
    char out[64];
    const char *c = CONTROLLERS[arg % (sizeof CONTROLLERS / sizeof CONTROLLERS[0])];
    if (orch_procfs_cgroup_path(text, size, c, out, sizeof out) == 0 && strlen(out) >= sizeof out)
      __builtin_trap();
    break;
  }
  case 2: {
    char root[32], point[32];
    if (orch_procfs_mount(text, size, arg & 1 ? "cgroup" : "cgroup2", arg & 2 ? "pids" : NULL, root,
                          sizeof root, point, sizeof point) == 0 &&
        (strlen(root) >= sizeof root || strlen(point) >= sizeof point))
      __builtin_trap();
    break;
  }
  case 3: {
    size_t tlen = size ? arg % (size + 1) : 0;
    int r = orch_procfs_environ_has(text + tlen, size - tlen, text, tlen);
    if (r != 0 && r != 1)
      __builtin_trap();
    break;
  }
  case 4: {
    long pids[8];
    size_t n = orch_procfs_pids(text, size, pids, arg % 9);
    for (size_t i = 0; i < n && i < arg % 9; i++)
      if (pids[i] <= 0)
        __builtin_trap();
    break;
  }
  default: {
    /* argv[0] NUL PATH: the lookup must not overrun either string */
    char *name = head_string(&data, &size);
    char *path = name ? head_string(&data, &size) : NULL;
    if (path != NULL && name[0] != '\0') {
      char *argv[2] = { name, NULL };
      orch_spawn_req req;
      memset(&req, 0, sizeof req);
      req.argv = argv;
      req.path_env = path;
      const char *detail;
      if (orch_spawn_resolve(&req, &detail) == 0 && req.file == NULL)
        __builtin_trap();
      free(req.file);
    }
    free(name);
    free(path);
    break;
  }
  }
  return 0;
}
