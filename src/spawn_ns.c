/* spawn_ns.c: what a subcontainer adds to a spawn (lua/orch/subcontainer). The leader of a
 * subcontainer (bubblewrap running orch-init) is an ordinary spawn with `overlay`: the child
 * makes a private mount namespace where a tmpfs holds the overlay's upper and work directories
 * and the overlay of the image on its `root`; bubblewrap builds the container on that root.
 * Nothing of it exists outside the namespace: it goes with the leader's last process, even when
 * orch is SIGKILLed. Every other process of the subcontainer is an ordinary spawn with `join`:
 * born in the leader's PID namespace (the parent sets pid_for_children around the clone, which
 * a multithreaded process may do), it enters the leader's mount, UTS and IPC namespaces itself
 * (setns of a mount namespace is refused to a process that shares its fs with others), so the
 * cgroup, session, pipes, credentials and reaping of spawn.c all still apply. */
#include "spawn_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

static const char *const NS_NAMES[4] = { "user", "mnt", "uts", "ipc" };

/* /proc/<pid>/ns/<name> opened, or -1 with errno set. */
static int open_ns(pid_t pid, const char *name)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/ns/%s", (long)pid, name);
  return open(path, O_RDONLY | O_CLOEXEC);
}

/* Whether two namespace files name the same namespace. */
static int same_ns(int fd, const char *self_path)
{
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(self_path, &b) == 0 && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

static char *joined(const char *a, const char *b)
{
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s%s", a, b);
  return s;
}

static int open_overlay(orch_spawn_req *req)
{
  static const char *const NAMES[3] = { "/upper", "/work", "/root" };
  for (int i = 0; i < 3; i++)
    if ((req->ovl_dirs[i] = joined(req->ovl_tmp, NAMES[i])) == NULL)
      return UV_ENOMEM;
  size_t n = strlen(req->ovl_lower) + strlen(req->ovl_dirs[0]) + strlen(req->ovl_dirs[1]) + 64;
  req->ovl_data = malloc(n);
  if (req->ovl_data == NULL)
    return UV_ENOMEM;
  snprintf(req->ovl_data, n, "lowerdir=%s,upperdir=%s,workdir=%s%s", req->ovl_lower,
           req->ovl_dirs[0], req->ovl_dirs[1], req->ovl_userns ? ",userxattr" : "");
  if (req->ovl_userns) { /* uid 0 inside is us: the one mapping an unprivileged user may write */
    for (int i = 0; i < 2; i++) {
      if ((req->ovl_maps[i] = malloc(32)) == NULL)
        return UV_ENOMEM;
      snprintf(req->ovl_maps[i], 32, "0 %lu 1\n",
               i ? (unsigned long)getgid() : (unsigned long)getuid());
    }
  }
  return 0;
}

int orch_spawn_ns_open(orch_spawn_req *req, const char **detail)
{
  if (req->ovl_tmp != NULL && open_overlay(req) < 0)
    return UV_ENOMEM;
  if (req->stdin_file != NULL && req->child_fd[0] < 0) {
    req->child_fd[0] = open(req->stdin_file, O_RDONLY | O_CLOEXEC);
    if (req->child_fd[0] < 0) {
      *detail = req->stdin_file;
      return uv_translate_sys_error(errno);
    }
  }
  if (req->join_pid == 0)
    return 0;
  for (int i = 0; i < 4; i++) {
    req->join_ns_fd[i] = open_ns(req->join_pid, NS_NAMES[i]);
    if (req->join_ns_fd[i] < 0) {
      *detail = "the subcontainer's leader is gone";
      return uv_translate_sys_error(errno == ENOENT ? ESRCH : errno);
    }
  }
  /* the user namespace is entered only when it is not ours (setns into one's own fails) */
  if (same_ns(req->join_ns_fd[0], "/proc/self/ns/user")) {
    close(req->join_ns_fd[0]);
    req->join_ns_fd[0] = -1;
  }
  if (req->pidns) /* runAsInit: PID 1 of a namespace of its own, in the leader's filesystem */
    return 0;
  req->join_pidns_fd = open_ns(req->join_pid, "pid");
  req->own_pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (req->join_pidns_fd < 0 || req->own_pidns_fd < 0) {
    *detail = "the subcontainer's PID namespace";
    return uv_translate_sys_error(errno == ENOENT ? ESRCH : errno);
  }
  return 0;
}

int orch_spawn_ns_enter_pid(orch_spawn_req *req)
{
  if (req->join_pidns_fd >= 0 && setns(req->join_pidns_fd, CLONE_NEWPID) != 0) {
    if (errno != EPERM)
      return -1;
    /* not root: no CAP_SYS_ADMIN in our own user namespace; the child, once in the leader's,
     * enters the PID namespace itself and forks the real process */
    req->pid_in_child = 1;
    close(req->own_pidns_fd);
    req->own_pidns_fd = -1;
  }
  return 0;
}

/* Write `text` into /proc/self/<file> (async-signal-safe). 0 or -1. */
static int write_self(const char *file, const char *text)
{
  char path[32] = "/proc/self/";
  size_t n = strlen(path);
  for (size_t i = 0; file[i] && n + 1 < sizeof path; i++)
    path[n++] = file[i];
  path[n] = '\0';
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t len = (ssize_t)strlen(text);
  ssize_t w = write(fd, text, (size_t)len);
  close(fd);
  return w == len ? 0 : -1;
}

void orch_spawn_ns_leave_pid(orch_spawn_req *req)
{
  if (req->own_pidns_fd >= 0 && setns(req->own_pidns_fd, CLONE_NEWPID) != 0)
    abort(); /* every later child would be born in the subcontainer: never go on like that */
}

int orch_spawn_ns_join(orch_spawn_req *req)
{
  static const int TYPES[4] = { CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC };
  for (int i = 0; i < 4; i++)
    if (req->join_ns_fd[i] >= 0 && setns(req->join_ns_fd[i], TYPES[i]) != 0)
      return -1;
  /* runAsInit: a mount namespace of its own (a copy of the leader's) for its own /proc */
  if (req->join_pid != 0 && req->pidns && unshare(CLONE_NEWNS) != 0)
    return -1;
  return 0;
}

int orch_spawn_ns_overlay(orch_spawn_req *req)
{
  if (req->ovl_tmp == NULL)
    return 0;
  if (req->ovl_userns && (unshare(CLONE_NEWUSER) != 0 || write_self("setgroups", "deny") != 0 ||
                          write_self("uid_map", req->ovl_maps[0]) != 0 ||
                          write_self("gid_map", req->ovl_maps[1]) != 0))
    return -1;
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("tmpfs", req->ovl_tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
    return -1;
  for (int i = 0; i < 3; i++)
    if (mkdir(req->ovl_dirs[i], 0755) != 0)
      return -1;
  return mount("overlay", req->ovl_dirs[2], "overlay", 0, req->ovl_data);
}

int orch_spawn_ns_caps(orch_spawn_req *req)
{
  if (!req->set_caps)
    return 0;
  for (int cap = 0; cap < 64; cap++)
    if (!(req->cap_keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
        errno != EINVAL) /* EINVAL: past the kernel's last capability */
      return -1;
  return 0;
}

void orch_spawn_ns_exec(orch_spawn_req *req, char *const envp[])
{
  const char *name = req->argv[0];
  if (strchr(name, '/') != NULL) {
    execve(name, req->argv, envp);
    return;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (int i = 0; envp[i] != NULL; i++)
    if (strncmp(envp[i], "PATH=", 5) == 0)
      path = envp[i] + 5;
  size_t nlen = strlen(name);
  int saw_eacces = 0;
  char cand[4096];
  while (*path) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    if (dlen + nlen + 2 <= sizeof cand) {
      memcpy(cand, dlen ? path : ".", dlen ? dlen : 1);
      size_t at = dlen ? dlen : 1;
      cand[at] = '/';
      memcpy(cand + at + 1, name, nlen + 1);
      execve(cand, req->argv, envp);
      if (errno == EACCES)
        saw_eacces = 1;
    }
    if (end == NULL)
      break;
    path = end + 1;
  }
  errno = saw_eacces ? EACCES : ENOENT;
}

void orch_spawn_ns_free(orch_spawn_req *req)
{
  for (int i = 0; i < 4; i++) {
    if (req->join_ns_fd[i] >= 0)
      close(req->join_ns_fd[i]);
    req->join_ns_fd[i] = -1;
  }
  if (req->join_pidns_fd >= 0)
    close(req->join_pidns_fd);
  if (req->own_pidns_fd >= 0)
    close(req->own_pidns_fd);
  req->join_pidns_fd = req->own_pidns_fd = -1;
  for (int i = 0; i < 3; i++) {
    free(req->ovl_dirs[i]);
    req->ovl_dirs[i] = NULL;
  }
  free(req->ovl_data);
  req->ovl_data = NULL;
  for (int i = 0; i < 2; i++) {
    free(req->ovl_maps[i]);
    req->ovl_maps[i] = NULL;
  }
}
