/* sock_diag.c: is a local port listening, asked of the kernel over NETLINK_SOCK_DIAG (what
 * `ss -ltu` does). Reading /proc/net/tcp makes the kernel walk the whole connection table on
 * every probe (milliseconds on a busy host); a sock_diag dump of sockets in LISTEN state (TCP)
 * or of bound sockets (UDP) costs tens of microseconds. */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "proc_net.h"

#define TCP_LISTEN_STATE 10

/* Dump one family/protocol; sets *found when a socket has local port `port`. 0 or UV_E*. */
static int dump(int fd, int family, int protocol, unsigned port, int *found)
{
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = (unsigned char)family;
  msg.req.sdiag_protocol = (unsigned char)protocol;
  /* TCP counts only in LISTEN; a UDP socket is "listening" in any state once bound */
  msg.req.idiag_states = protocol == IPPROTO_TCP ? 1U << TCP_LISTEN_STATE : ~0U;
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
    return uv_translate_sys_error(errno);
  long buf[8192 / sizeof(long)];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return uv_translate_sys_error(errno);
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE)
        return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error == -ENOENT ? 0 : (e->error ? uv_translate_sys_error(-e->error) : 0);
      }
      struct inet_diag_msg *d = NLMSG_DATA(h);
      if (ntohs(d->id.idiag_sport) == port)
        *found = 1; /* keep reading: the dump must be drained */
    }
  }
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
