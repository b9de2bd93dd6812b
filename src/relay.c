/* relay.c: orch-relay PID, the small program the relay of a contained orch execs into, so
 * that it holds a few hundred KiB instead of a copy of orch. The signals it forwards arrive
 * blocked across the exec (contain.c blocked them before the fork).
 * `orch-relay --watch` is the watcher of an uncontained orch (relay_watch.c, watch.c). */
#include "relay.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  if (argc != 2)
    return 2;
  if (strcmp(argv[1], "--watch") == 0)
    orch_watch_loop(0);
  sigset_t set;
  orch_relay_signals(&set);
  sigprocmask(SIG_BLOCK, &set, NULL);
  char *end;
  long child = strtol(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || child <= 0)
    return 2;
  orch_relay((pid_t)child, &set);
}
