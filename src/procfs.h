/* procfs.h: parsers for the procfs and cgroupfs texts orch reads to track the processes of an
 * entry (see track.c). Plain C with no Lua and no libuv, so they can be fuzzed alone
 * (spec/fuzz/fuzz_procfs.c). None of them needs a NUL-terminated input or reads past `len`. */
#ifndef ORCH_PROCFS_H
#define ORCH_PROCFS_H

#include <stddef.h>

typedef struct orch_stat {
  long pid;
  long ppid;
  long pgrp;
  char state;               /* R, S, D, Z, T, ... */
  unsigned long long start; /* start time in clock ticks after boot (field 22) */
} orch_stat;

/* Parse /proc/<pid>/stat: "pid (comm) state ppid pgrp ... starttime ...". The comm may hold
 * any byte, ')' and spaces included: it ends at the last ')'. 0, or -1 when malformed. */
int orch_procfs_stat(const char *text, size_t len, orch_stat *out);

/* The cgroup path of /proc/<pid>/cgroup ("id:controllers:path" lines): for `controller` NULL
 * or "" the cgroup v2 line ("0::/path"), otherwise the v1 line whose comma-separated
 * controller list holds `controller` ("name=systemd" for a named hierarchy). Copies the path
 * NUL-terminated into out. 0, or -1 when there is no such line or the path does not fit. */
int orch_procfs_cgroup_path(const char *text, size_t len, const char *controller, char *out,
                            size_t outlen);

/* The first mount of /proc/<pid>/mountinfo with filesystem type `fstype` ("cgroup2",
 * "cgroup") and, when `option` is not NULL, `option` among its super options ("pids"). Copies
 * its root (the path of the mounted tree inside the filesystem) and its mount point, with the
 * octal escapes (\040) decoded, NUL-terminated. 0, or -1 when none matches or a field does not
 * fit. */
int orch_procfs_mount(const char *text, size_t len, const char *fstype, const char *option,
                      char *root, size_t rootlen, char *point, size_t pointlen);

/* Whether the NUL-separated list of /proc/<pid>/environ holds exactly the entry `entry`
 * (e.g. "ORCH_INVOCATION_ID=12-3"). 1 or 0. */
int orch_procfs_environ_has(const char *text, size_t len, const char *entry, size_t entry_len);

/* Parse a list of decimal pids, one per line (cgroup.procs), into pids[0..max). Lines that
 * are not a positive number are skipped. Returns how many lines held a pid (may exceed max:
 * only the first max are stored). */
size_t orch_procfs_pids(const char *text, size_t len, long *pids, size_t max);

/* Read all of `path` (relative to `dirfd`, or absolute; AT_FDCWD) into a malloc'd buffer that
 * the caller frees, NUL-terminated (the NUL is not counted in *len). Reads at most `max` bytes
 * (the rest of a longer file is left out). 0, or -errno (a negative UV_E* code on Linux). */
int orch_read_file(int dirfd, const char *path, size_t max, char **out, size_t *len);

#endif
