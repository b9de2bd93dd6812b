/* relay.h: the signal relay outside a contained orch's PID namespace (libc only). */
#ifndef ORCH_RELAY_H
#define ORCH_RELAY_H

#include <signal.h>
#include <sys/types.h>

/* The signals the relay forwards, plus SIGCHLD. */
void orch_relay_signals(sigset_t *set);
/* Forward the signals of `set` (blocked by the caller) to `child` until it exits, then exit the
 * same way (the same code, or the same signal). */
_Noreturn void orch_relay(pid_t child, const sigset_t *set);

#endif
