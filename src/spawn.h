/* spawn.h: fork/exec of one child with the orch defaults, free of Lua (see spawn.c). */
#ifndef ORCH_SPAWN_H
#define ORCH_SPAWN_H

#include <sys/types.h>

typedef struct orch_spawn_req {
  char **argv;          /* array malloc'd by the caller, strings borrowed; NULL-terminated */
  char **envp;          /* same; NULL inherits the orchestrator's environment */
  const char *path_env; /* PATH used for the lookup of argv[0] (borrowed), NULL: our own */
  const char *cwd;      /* borrowed, NULL: ours */
  char *file;           /* resolved executable, malloc'd by orch_spawn_resolve */
  int set_user;         /* drop to uid/gid/groups */
  uid_t uid;
  gid_t gid;
  gid_t *groups; /* malloc'd by the caller */
  int ngroups;
  int setsid;     /* new session and process group */
  int pidns;      /* PID 1 of a new PID namespace with its own /proc */
  int set_nofile; /* apply rlim_nofile (RLIMIT_NOFILE, soft = hard) */
  int set_core;   /* apply rlim_core (RLIMIT_CORE, soft = hard) */
  unsigned long long rlim_nofile;
  unsigned long long rlim_core;
  int child_fd[3];    /* stdin/out/err for the child, -1 = /dev/null (stdin) or inherit */
  int extra_fd;       /* opts.fds: a descriptor of orch's (borrowed) the child gets ... */
  int extra_target;   /* ... as this number (>= 3; 0: none) */
  int stdin_fd;       /* internal: child_fd[0] or the shared /dev/null (not owned) */
  int host_proc_fd;   /* a procfs of the host's PID namespace when orch is contained, or -1 */
  int cgroup_dir_fd;  /* the cgroup the child starts in (v2: born in it, clone3), or -1 */
  int cgroup_fd;      /* internal: its cgroup.procs when the child joins by a write, or -1 */
  const char *cgroup; /* that cgroup's directory (borrowed), for error messages */
  /* Subcontainers (spawn_ns.c). All fds -1 when unused; opened by orch_spawn_ns_read. */
  int join_ns_fd[4]; /* user, mnt, uts, ipc namespaces of a leader the child enters */
  int join_pidns_fd; /* the leader's PID namespace: the child is born in it */
  int own_pidns_fd;  /* ours, to restore pid_for_children after the clone */
  int set_caps;      /* drop every capability not in cap_keep from the bounding set */
  unsigned long long cap_keep;
  pid_t join_pid;         /* the leader (0: none), in orch's PID namespace */
  const char *ovl_tmp;    /* leader: a private mount namespace with a tmpfs here (borrowed) ... */
  const char *ovl_lower;  /* ... an overlay of this directory (borrowed) ... */
  char *ovl_dirs[3];      /* ... with its upper, work and root directories in it (malloc'd) */
  char *ovl_data;         /* its mount options (malloc'd) */
  const char *stdin_file; /* the child's stdin: this file, read-only (borrowed) */
  int ovl_userns;         /* leader, not root: first a user namespace where we are uid 0 ... */
  char *ovl_maps[2];      /* ... with these uid_map and gid_map lines (malloc'd) */
  int pid_in_child;       /* not root: the child enters the PID namespace and forks the real one */
  pid_t pid;              /* out: the child */
  pid_t host_pid;         /* out: the child as the host sees it (== pid unless contained) */
  char detail[160];       /* out: what failed, e.g. "cwd '/nope'" */
  const char *stage; /* out: the step that failed, a static name: "exec", "cwd", "cgroup", ... */
} orch_spawn_req;

/* The soft RLIMIT_NOFILE a child gets when its request sets none (0: orch's own): the limit orch
 * started with, once orch raised its own (rlimit.c). */
extern unsigned long long orch_child_nofile_soft;

/* Resolve argv[0] against PATH into req->file. 0 or a negative UV_E* code. */
int orch_spawn_resolve(orch_spawn_req *req, const char **detail);
/* Start the child; 0 with req->pid set, or a negative UV_E* code with *detail naming the
 * step that failed (NULL when the exec itself failed). The child is reaped on failure. */
int orch_spawn_exec(orch_spawn_req *req, const char **detail);

#endif
