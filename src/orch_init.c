/* orch-init: the leader of a subcontainer, PID 1 of its PID namespace (bubblewrap --as-pid-1
 * execs it; see lua/orch/subcontainer/leader.lua). It says "ready" on stderr once it runs (the
 * whole container is set up by then), lets go of its stdio, reaps every orphan of the
 * namespace, and exits on SIGTERM or SIGINT, which ends the namespace and every process in it.
 * Static and libc-only: it runs inside any image's root filesystem. */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (write(2, "ready\n", 6) != 6) /* bwrap closed stdout: its --info-fd */
    return 1;
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3; fd++)
    if (null >= 0)
      dup2(null, fd);
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGTERM || sig == SIGINT)
      return 0;
    while (waitpid(-1, NULL, WNOHANG) > 0)
      ;
  }
}
