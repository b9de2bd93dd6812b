/* spawn.c: the fork/exec of a child. In the child, between fork and exec: the cgroup of its
 * entry (process tracking), a new session, stdio, supplementary groups then gid then uid (raw
 * syscalls: glibc's set*id would try to signal the parent's threads from a vfork child), the
 * cwd as the target user, PR_SET_PDEATHSIG(SIGKILL) after the credentials change (which clears
 * it), default signal dispositions, and no inherited fds.
 * Failures travel back to the parent through a close-on-exec pipe. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "spawn_ns.h"

#if defined(__has_include)
#if __has_include(<linux/sched.h>)
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#endif
#endif

extern char **environ;

unsigned long long orch_child_nofile_soft;

#include "spawn_stage.h"

typedef struct child_report {
  int stage;
  int err;
} child_report;

_Noreturn static void child_fail(int fd, int stage)
{
  child_report r = { stage, errno };
  ssize_t n = write(fd, &r, sizeof r);
  (void)n;
  _exit(127);
}

/* The "self" link of the host's procfs names this process as the host sees it. */
static void report_host_pid(int host_proc_fd, int report_fd)
{
  char buf[24];
  ssize_t len = readlinkat(host_proc_fd, "self", buf, sizeof buf - 1);
  if (len <= 0)
    return;
  child_report r = { ST_HOST_PID, 0 };
  for (ssize_t i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
    r.err = r.err * 10 + (buf[i] - '0');
  ssize_t n = write(report_fd, &r, sizeof r);
  (void)n;
}

/* Close the descriptors [lo, hi] (close_range, else one by one when hi is finite). */
static void close_from_to(int lo, unsigned hi)
{
  if (lo < 0 || (unsigned)lo > hi)
    return;
  if (syscall(SYS_close_range, (unsigned)lo, hi, 0U) != 0 && hi != ~0U)
    for (unsigned fd = (unsigned)lo; fd <= hi; fd++)
      close((int)fd);
}

/* Close every descriptor from 3 up but `a` and `b` (the report pipe, an opts.fds target). */
static void close_all_but(int a, int b)
{
  int lo = a < b ? a : b, hi = a < b ? b : a;
  if (lo >= 3)
    close_from_to(3, (unsigned)lo - 1);
  if (hi > lo)
    close_from_to(lo + 1, (unsigned)hi - 1);
  close_from_to(hi + 1, ~0U);
}

/* What the child needs: its request, the pipe its failures go to, orch's pid, the signal mask
 * to exec with. */
typedef struct child_args {
  orch_spawn_req *req;
  int report_fd;
  pid_t parent;
  const sigset_t *unblocked;
} child_args;

/* Runs in the child: only async-signal-safe calls and raw syscalls from here on. */
_Noreturn static void child_main(const child_args *a, int in_cgroup)
{
  orch_spawn_req *req = a->req;
  int report_fd = a->report_fd;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  /* First, so that everything the child ever starts is in the cgroup ("0" is the writer). */
  if (!in_cgroup && req->cgroup_fd >= 0 && write(req->cgroup_fd, "0", 1) != 1)
    child_fail(report_fd, ST_CGROUP);
  if (req->setsid && setsid() < 0)
    child_fail(report_fd, ST_SETSID);
  if (orch_spawn_ns_join(req) != 0) /* a subcontainer's process: into its namespaces */
    child_fail(report_fd, ST_JOIN);
  if (req->pid_in_child) { /* into the leader's PID namespace (or a new one, runAsInit): the
                            * process is a child of ours */
    if (req->pidns ? unshare(CLONE_NEWPID) != 0 : setns(req->join_pidns_fd, CLONE_NEWPID) != 0)
      child_fail(report_fd, ST_JOIN);
    pid_t real = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
    if (real < 0)
      child_fail(report_fd, ST_JOIN);
    if (real > 0) { /* orch (a subreaper) gets it once this one is gone */
      child_report r = { ST_CHILD_PID, (int)real };
      ssize_t n = write(report_fd, &r, sizeof r);
      (void)n;
      _exit(0);
    }
  }
  if (orch_spawn_ns_overlay(req) != 0) /* a subcontainer's leader: its root, privately */
    child_fail(report_fd, ST_OVERLAY);
  if (req->pidns) { /* PID 1 of a new namespace: give it a /proc of its own */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
      child_fail(report_fd, ST_MOUNT);
  }
  int extra = req->extra_fd;
  if (req->extra_target >= 3 && extra < 3 && (extra = fcntl(extra, F_DUPFD_CLOEXEC, 3)) < 0)
    child_fail(report_fd, ST_STDIO); /* the stdio dup2 below would overwrite it */
  if (dup2(req->stdin_fd, 0) < 0)
    child_fail(report_fd, ST_STDIO);
  for (int fd = 1; fd < 3; fd++)
    if (req->child_fd[fd] >= 0 && dup2(req->child_fd[fd], fd) < 0)
      child_fail(report_fd, ST_STDIO);
  if (req->extra_target >= 3) { /* opts.fds: a descriptor the child keeps at a fixed number */
    if (report_fd == req->extra_target &&
        (report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, req->extra_target + 1)) < 0)
      _exit(127); /* the report pipe itself is lost: orch sees the exit */
    if (extra == req->extra_target ? fcntl(extra, F_SETFD, 0) != 0
                                   : dup2(extra, req->extra_target) < 0)
      child_fail(report_fd, ST_STDIO);
  }
  /* Before the credentials change: raising a hard limit needs orch's privileges. */
  if (req->set_nofile) {
    struct rlimit r = { (rlim_t)req->rlim_nofile, (rlim_t)req->rlim_nofile };
    if (setrlimit(RLIMIT_NOFILE, &r) != 0)
      child_fail(report_fd, ST_RLIMIT);
  } else if (orch_child_nofile_soft != 0) {
    struct rlimit r; /* a program that still uses select() breaks above 1024 */
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && (rlim_t)orch_child_nofile_soft < r.rlim_cur) {
      r.rlim_cur = (rlim_t)orch_child_nofile_soft;
      if (setrlimit(RLIMIT_NOFILE, &r) != 0)
        child_fail(report_fd, ST_RLIMIT);
    }
  }
  if (req->set_core) {
    struct rlimit r = { (rlim_t)req->rlim_core, (rlim_t)req->rlim_core };
    if (setrlimit(RLIMIT_CORE, &r) != 0)
      child_fail(report_fd, ST_RLIMIT);
  }
  if (orch_spawn_ns_caps(req) != 0)
    child_fail(report_fd, ST_CAPS);
  if (req->set_user) {
    if (syscall(SYS_setgroups, (size_t)req->ngroups, req->groups) != 0 && errno != EPERM)
      child_fail(report_fd, ST_GROUPS);
    if (syscall(SYS_setgid, req->gid) != 0)
      child_fail(report_fd, ST_GID);
    if (syscall(SYS_setuid, req->uid) != 0)
      child_fail(report_fd, ST_UID);
  }
  /* After the credentials change: the directory must be one the target user may enter. */
  if (req->cwd && chdir(req->cwd) != 0)
    child_fail(report_fd, ST_CHDIR);
  /* (not for the grandchild of a pid_in_child spawn: its parent is about to exit; the
   * subcontainer's namespace ends with orch instead) */
  if (!req->pid_in_child && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    child_fail(report_fd, ST_PDEATH);
  /* orch died before the prctl took effect (in another PID namespace the parent is 0) */
  if (!req->pidns && !req->join_pid && getppid() != a->parent)
    _exit(127);
  if (req->host_proc_fd >= 0) /* orch is contained: tell it the pid the host sees */
    report_host_pid(req->host_proc_fd, report_fd);
  /* No descriptor of orch's leaks into the child, whatever opened it without O_CLOEXEC. */
  close_all_but(report_fd, req->extra_target >= 3 ? req->extra_target : report_fd);
  sigprocmask(SIG_SETMASK, a->unblocked, NULL);
  if (req->join_pid != 0) /* the program is found inside the subcontainer */
    orch_spawn_ns_exec(req, req->envp ? req->envp : environ);
  else
    execve(req->file, req->argv, req->envp ? req->envp : environ);
  child_fail(report_fd, ST_EXEC);
}

/* AddressSanitizer cannot follow a child running on a stack of our own (false stack-buffer-
 * overflow reports): sanitizer builds join the cgroup by a write instead. */
#if defined(__SANITIZE_ADDRESS__)
#define ORCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ORCH_ASAN 1
#endif
#endif

#if defined(CLONE_INTO_CGROUP) && defined(__x86_64__) && !defined(ORCH_ASAN)
#define ORCH_CLONE_INTO_CGROUP 1
/* Set once clone3 turned out to be unavailable: joining by a write to cgroup.procs from then
 * on. */
static int clone3_refused;

_Noreturn static void child_entry(child_args *a)
{
  child_main(a, 1);
}

/* The child's stack: the parent is suspended until the child execs or exits (CLONE_VFORK) and
 * spawns happen on the loop thread only, so one stack serves every spawn. */
static char child_stack[64 * 1024] __attribute__((aligned(64)));

/* vfork into the cgroup of req->cgroup_dir_fd: clone3(CLONE_VM | CLONE_VFORK |
 * CLONE_INTO_CGROUP) on child_stack. glibc has no wrapper, so the child side is a few lines of
 * assembly: it switches to nothing of the parent's and calls child_entry, which never returns.
 * Returns the pid, or -1 with errno set. */
static pid_t vfork_into_cgroup(child_args *ca)
{
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.stack = (__u64)(uintptr_t)child_stack;
  args.stack_size = sizeof child_stack;
  args.cgroup = (__u64)ca->req->cgroup_dir_fd;
  long ret;
  __asm__ volatile("syscall\n\t"
                   "test %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   /* the child, on child_stack: rax, rcx and r11 are the only registers the
                    * syscall changed, so the inputs below are still valid */
                   "xor %%ebp, %%ebp\n\t"
                   "and $-16, %%rsp\n\t"
                   "mov %[arg], %%rdi\n\t"
                   "call *%[fn]\n\t"
                   "ud2\n\t"
                   "1:\n\t"
                   : "=a"(ret)
                   : "a"((long)SYS_clone3), "D"(&args),
                     "S"(sizeof args), [fn] "r"(child_entry), [arg] "r"(ca)
                   : "rcx", "r11", "memory");
  if (ret < 0) {
    errno = (int)-ret;
    return -1;
  }
  return (pid_t)ret;
}
#endif

/* The child's stdin when none is given: one /dev/null for every spawn (close-on-exec). */
static int shared_devnull(void)
{
  static int fd = -1;
  if (fd < 0)
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

/* The cgroup.procs of req's cgroup, for a child that joins it by a write (no clone3). */
static int open_cgroup_procs(orch_spawn_req *req)
{
  if (req->cgroup_dir_fd < 0 || req->cgroup_fd >= 0)
    return 0;
  req->cgroup_fd = openat(req->cgroup_dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  return req->cgroup_fd < 0 ? uv_translate_sys_error(errno) : 0;
}

/* Start the child born in its cgroup when the kernel allows: 1 with *pid set (the child, or
 * -1 and errno for a failure of the spawn itself), 0 when the child must be started another way
 * (no clone3, a v1 cgroup, a PID namespace). */
static int start_in_cgroup(orch_spawn_req *req, child_args *ca, pid_t *pid)
{
#ifdef ORCH_CLONE_INTO_CGROUP
  /* Joining a cgroup by writing cgroup.procs waits for an RCU grace period (measured 0.7 to
   * 15 ms per child); a child born in it with clone3(CLONE_INTO_CGROUP) costs a vfork. */
  if (req->pidns || req->cgroup_dir_fd < 0 || clone3_refused)
    return 0;
  *pid = vfork_into_cgroup(ca);
  if (*pid >= 0)
    return 1;
  /* no clone3 at all (remembered), or not into this cgroup (a v1 one: this spawn only), or a
   * seccomp filter that refuses clone3 with EPERM (older container runtimes): the write path
   * then reports a real permission problem itself */
  if (errno == ENOSYS || errno == E2BIG) {
    clone3_refused = 1;
    return 0;
  }
  return errno == EINVAL || errno == EBADF || errno == EOPNOTSUPP || errno == EPERM ? 0 : 1;
#else
  (void)req;
  (void)ca;
  (void)pid;
  return 0;
#endif
}

int orch_spawn_exec(orch_spawn_req *req, const char **detail)
{
  int fds[2];
  *detail = NULL;
  int nerr = orch_spawn_ns_open(req, detail);
  if (nerr < 0) {
    req->stage = "subcontainer";
    return nerr;
  }
  req->stdin_fd = req->child_fd[0] >= 0 ? req->child_fd[0] : shared_devnull();
  if (req->stdin_fd < 0)
    return uv_translate_sys_error(errno);
  if (pipe2(fds, O_CLOEXEC) != 0)
    return uv_translate_sys_error(errno);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  sigset_t unblocked;
  sigemptyset(&unblocked);
  pid_t parent = getpid();
  pid_t pid = -1;
  child_args ca = { req, fds[1], parent, &unblocked };
  if (orch_spawn_ns_enter_pid(req) != 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(fds[0]);
    close(fds[1]);
    *detail = "enter the subcontainer's PID namespace";
    req->stage = "subcontainer";
    return uv_translate_sys_error(e);
  }
  int in_cgroup = start_in_cgroup(req, &ca, &pid);
  if (!in_cgroup) {
    int err = open_cgroup_procs(req); /* the child joins by a write */
    if (err < 0) {
      orch_spawn_ns_leave_pid(req);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      close(fds[0]);
      close(fds[1]);
      *detail = orch_spawn_stage_text(req, ST_CGROUP, 0);
      req->stage = orch_spawn_stage_name(ST_CGROUP);
      return err;
    }
    pid = req->pidns
              ? (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0)
              : vfork();
    if (pid < 0 && errno == EPERM && req->pidns && req->join_pid) {
      /* runAsInit in a subcontainer, not root: the child makes the PID namespace once in the
       * leader's user namespace, and forks its PID 1 */
      req->pid_in_child = 1;
      pid = vfork();
    }
  }
  if (pid == 0)
    child_main(&ca, in_cgroup);
  int fork_errno = errno;
  orch_spawn_ns_leave_pid(req);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    if (req->pidns && (fork_errno == EPERM || fork_errno == EINVAL))
      *detail = "new PID namespace";
    req->stage = req->pidns ? "pidns" : "fork";
    return uv_translate_sys_error(fork_errno);
  }
  child_report r;
  ssize_t n;
  req->host_pid = pid;
  pid_t real = 0;
  for (;;) {
    do
      n = read(fds[0], &r, sizeof r);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof r || (r.stage != ST_HOST_PID && r.stage != ST_CHILD_PID))
      break;
    if (r.stage == ST_CHILD_PID)
      real = (pid_t)r.err;
    else
      req->host_pid = r.err; /* not a failure: the pid the host sees, reported first */
  }
  close(fds[0]);
  if (real > 0) { /* the intermediate child exits at once; the process is its child */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    pid = real;
    req->host_pid = real;
  }
  if (n != (ssize_t)sizeof r) {
    req->pid = pid;
    return 0;
  }
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *detail = orch_spawn_stage_text(req, r.stage, r.err);
  req->stage = orch_spawn_stage_name(r.stage);
  return uv_translate_sys_error(r.err);
}
