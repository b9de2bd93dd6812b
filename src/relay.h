/* relay.h: the signal relay outside a contained orch's PID namespace, and the watcher outside an
 * uncontained one (libc only). */
#ifndef ORCH_RELAY_H
#define ORCH_RELAY_H

#include <signal.h>
#include <sys/types.h>

/* The signals the relay forwards, plus SIGCHLD. */
void orch_relay_signals(sigset_t *set);
/* Forward the signals of `set` (blocked by the caller) to `child` until it exits, then exit the
 * same way (the same code, or the same signal). */
_Noreturn void orch_relay(pid_t child, const sigset_t *set);
/* The watcher of an uncontained orch (relay_watch.c): read orch's messages from `fd` until EOF,
 * then SIGKILL every process group and cgroup orch left, and exit 0. */
_Noreturn void orch_watch_loop(int fd);
/* The watcher's state, also kept by orch itself (watch.c) for its last-resort exit: take one
 * message (a line without its newline), and SIGKILL everything the messages left listed. */
void orch_watch_note(const char *line);
void orch_watch_kill_all(void);

#endif
