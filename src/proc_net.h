/* proc_net.h: the /proc/net/{tcp,tcp6,udp,udp6} parser (plain C: no Lua, no libuv in the
 * parser, so it can be fuzzed alone). */
#ifndef ORCH_PROC_NET_H
#define ORCH_PROC_NET_H

#include <stddef.h>

/* Scan the text of one /proc/net table (header line first) for a row whose local port is
 * `port`; for TCP (`is_tcp` != 0) the row must also be in state 0A (LISTEN), for UDP any state
 * counts. Reads at most `len` bytes, needs no NUL. Returns 1 on a hit, 0 when there is none
 * (also for an empty or header-only text), -1 when no data row could be parsed at all. */
int orch_proc_net_scan(const char *text, size_t len, unsigned port, int is_tcp);

/* Look for `port` in <dir>/tcp, tcp6, udp, udp6, in that order, stopping at the first hit.
 * A missing tcp6, udp or udp6 is skipped (IPv6 may be disabled); a missing tcp is an error.
 * Sets *found to 0 or 1 and returns 0, or returns a negative UV_E* code (UV_EINVAL for a table
 * that cannot be parsed). */
int orch_proc_net_port_listening(const char *dir, unsigned port, int *found);

/* The same question for orch's own network namespace, asked of the kernel over
 * NETLINK_SOCK_DIAG (sock_diag.c). 0 or a negative UV_E* code (the caller then falls back to
 * the /proc files). */
int orch_sock_diag_port_listening(unsigned port, int *found);

/* Parse one datagram of a sock_diag dump reply, `len` bytes at `buf` (aligned like a struct
 * nlmsghdr): sets *found when a socket with local port `port` is in it. Returns 1 when the
 * dump is complete (NLMSG_DONE, or an ENOENT error), 0 when more datagrams follow, or a
 * negative UV_E* code (an error reply). Messages too short for what they claim are skipped. */
int orch_sock_diag_scan(const void *buf, size_t len, unsigned port, int *found);

#endif
