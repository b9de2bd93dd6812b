/* sock_diag.c: is a local port listening, asked of the kernel over NETLINK_SOCK_DIAG (what
 * `ss -ltu` does). Reading /proc/net/tcp makes the kernel walk the whole connection table on
 * every probe (milliseconds on a busy host); a sock_diag dump of sockets in LISTEN state (TCP)
 * or of bound sockets (UDP) costs tens of microseconds. */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "proc_net.h"

#define TCP_LISTEN_STATE 10

/* A dump request, with its port filter (nlmsg_len stops before rta when there is none). */
struct diag_req {
  struct nlmsghdr nlh;
  struct inet_diag_req_v2 req;
  struct rtattr rta;
  struct inet_diag_bc_op ops[2];
};

/* A kernel that refused the port filter (EINVAL): dump every socket and look in user space. */
static int no_filter;

/* Dump one family/protocol; sets *found when a socket has local port `port`. 0 or UV_E*. The
 * kernel filters by port (the bytecode `ss 'sport = :N'` sends): without it every probe read
 * every listening socket, so N port checks of N listeners cost N^2 (1000 of them: 1.4 % of a
 * core when their probes came due, against < 1 % wanted). */
static int dump_filtered(int fd, int family, int protocol, unsigned port, int *found, int filter)
{
  struct diag_req msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = filter ? sizeof msg : offsetof(struct diag_req, rta);
  if (filter) {
    /* sport == port: go on past both ops (accept), else jump 4 bytes past the end (reject) */
    msg.rta.rta_type = INET_DIAG_REQ_BYTECODE;
    msg.rta.rta_len = RTA_LENGTH(sizeof msg.ops);
    msg.ops[0].code = INET_DIAG_BC_S_EQ;
    msg.ops[0].yes = sizeof msg.ops;
    msg.ops[0].no = sizeof msg.ops + 4;
    msg.ops[1].no = (unsigned short)port;
  }
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = (unsigned char)family;
  msg.req.sdiag_protocol = (unsigned char)protocol;
  /* TCP counts only in LISTEN; a UDP socket is "listening" in any state once bound */
  msg.req.idiag_states = protocol == IPPROTO_TCP ? 1U << TCP_LISTEN_STATE : ~0U;
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (sendto(fd, &msg, msg.nlh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
    return uv_translate_sys_error(errno);
  long buf[8192 / sizeof(long)];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return uv_translate_sys_error(errno);
    }
    int r = orch_sock_diag_scan(buf, (size_t)n, port, found);
    if (r != 0)
      return r < 0 ? r : 0;
  }
}

static int dump(int fd, int family, int protocol, unsigned port, int *found)
{
  if (!no_filter) {
    int err = dump_filtered(fd, family, protocol, port, found, 1);
    if (err != UV_EINVAL)
      return err;
    /* refused: EINVAL also means this family/protocol has no diag at all; try unfiltered */
    err = dump_filtered(fd, family, protocol, port, found, 0);
    if (err != UV_EINVAL)
      no_filter = 1;
    return err;
  }
  return dump_filtered(fd, family, protocol, port, found, 0);
}

int orch_sock_diag_scan(const void *buf, size_t len, unsigned port, int *found)
{
  /* NLMSG_OK/NLMSG_NEXT on a size_t length step past the end after a last message whose
   * length is not a multiple of 4 (the remaining length wraps around): walk by hand. */
  const char *p = buf;
  size_t left = len;
  while (left >= sizeof(struct nlmsghdr)) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)p;
    if (h->nlmsg_len < sizeof *h || h->nlmsg_len > left)
      return 0; /* a broken message: nothing more can be read in this datagram */
    if (h->nlmsg_type == NLMSG_DONE)
      return 1;
    if (h->nlmsg_type == NLMSG_ERROR) {
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return UV_EPROTO;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      if (e->error == 0 || e->error == -ENOENT)
        return 1;
      return e->error < 0 && e->error > -4096 ? uv_translate_sys_error(-e->error) : UV_EPROTO;
    }
    if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) { /* else too short */
      const struct inet_diag_msg *d = NLMSG_DATA(h);
      if (ntohs(d->id.idiag_sport) == port)
        *found = 1; /* keep reading: the dump must be drained */
    }
    size_t step = NLMSG_ALIGN(h->nlmsg_len);
    if (step >= left)
      break;
    p += step;
    left -= step;
  }
  return 0;
}

int orch_sock_diag_port_listening(unsigned port, int *found)
{
  static const int families[] = { AF_INET, AF_INET6 };
  static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
  *found = 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int err = 0;
  for (int p = 0; p < 2 && !*found && err == 0; p++)
    for (int f = 0; f < 2 && !*found && err == 0; f++) {
      err = dump(fd, families[f], protocols[p], port, found);
      if (err == UV_EAFNOSUPPORT || err == UV_EINVAL) /* IPv6 or UDP diag missing */
        err = 0;
    }
  close(fd);
  return err;
}
