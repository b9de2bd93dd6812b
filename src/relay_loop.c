/* relay_loop.c: the relay half of core.contain (see contain.c), shared by the in-process
 * fallback and the orch-relay program (relay.c). libc only. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay.h"

static const int RELAYED[] = {
  SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT
};

/* The relay: forward signals to `child` until it exits, then exit the same way. */
void orch_relay_signals(sigset_t *set)
{
  sigemptyset(set);
  for (size_t i = 0; i < sizeof RELAYED / sizeof RELAYED[0]; i++)
    sigaddset(set, RELAYED[i]);
  sigaddset(set, SIGCHLD);
}

_Noreturn void orch_relay(pid_t child, const sigset_t *set)
{
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(set, &si);
    if (sig < 0)
      continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t got = waitpid(child, &status, WNOHANG);
    if (got != child)
      continue;
    if (WIFEXITED(status))
      _exit(WEXITSTATUS(status));
    int death = WTERMSIG(status);
    signal(death, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, death);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    kill(getpid(), death);
    _exit(128 + death);
  }
}
