/* proc_net.c: is a port listening? Parses the /proc/net/{tcp,tcp6,udp,udp6} tables.
 *
 * A row looks like (tcp; tcp6 has 32 hex digits of address; udp has the same columns):
 *    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 ...
 * We need column 2 (local HEXADDR:HEXPORT) and column 4 (state, hex; 0A is LISTEN). */
#include "proc_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "procfs.h"

#define TCP_LISTEN   0x0A
#define PROC_NET_MAX ((size_t)1 << 30) /* no real limit: a table is read whole */

typedef struct span {
  const char *p;
  size_t n;
} span;

static int is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Value of hex digit `c`, or -1. */
static int hex_digit(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Parse all of `s` as 1..max_digits hex digits into *out; 0 on success, -1 otherwise. */
static int parse_hex(span s, size_t max_digits, unsigned long *out)
{
  unsigned long v = 0;
  if (s.n == 0 || s.n > max_digits)
    return -1;
  for (size_t i = 0; i < s.n; i++) {
    int d = hex_digit(s.p[i]);
    if (d < 0)
      return -1;
    v = v << 4 | (unsigned long)d;
  }
  *out = v;
  return 0;
}

/* The next blank-separated token of the line [*pos, end); 0 when there is none. */
static int next_token(const char **pos, const char *end, span *tok)
{
  const char *p = *pos;
  while (p < end && is_blank(*p))
    p++;
  if (p == end)
    return 0;
  tok->p = p;
  while (p < end && !is_blank(*p))
    p++;
  tok->n = (size_t)(p - tok->p);
  *pos = p;
  return 1;
}

/* Parse the row [p, end): 1 if it holds local `port` (in LISTEN for TCP), 0 if it does not,
 * -1 if it is not a well-formed row. */
static int scan_row(const char *p, const char *end, unsigned port, int is_tcp)
{
  span sl, local, remote, state;
  unsigned long local_port, st, ignored;
  if (!next_token(&p, end, &sl) || !next_token(&p, end, &local) || !next_token(&p, end, &remote) ||
      !next_token(&p, end, &state))
    return -1;
  /* "N:" with a decimal N */
  if (sl.n < 2 || sl.p[sl.n - 1] != ':')
    return -1;
  for (size_t i = 0; i + 1 < sl.n; i++)
    if (sl.p[i] < '0' || sl.p[i] > '9')
      return -1;
  /* HEXADDR:HEXPORT: 8 hex digits for IPv4, 32 for IPv6 */
  const char *colon = memchr(local.p, ':', local.n);
  if (colon == NULL)
    return -1;
  span addr = { local.p, (size_t)(colon - local.p) };
  span lport = { colon + 1, local.n - addr.n - 1 };
  if ((addr.n != 8 && addr.n != 32) || parse_hex(addr, 32, &ignored) != 0 ||
      parse_hex(lport, 4, &local_port) != 0)
    return -1;
  if (parse_hex(state, 2, &st) != 0)
    return -1;
  if (local_port != port)
    return 0;
  return !is_tcp || st == TCP_LISTEN;
}

int orch_proc_net_scan(const char *text, size_t len, unsigned port, int is_tcp)
{
  if (text == NULL || len == 0)
    return 0;
  const char *end = text + len;
  const char *nl = memchr(text, '\n', len);
  int rows = 0, parsed = 0;
  if (nl == NULL)
    return 0; /* a header without a newline: no rows */
  for (const char *p = nl + 1; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *row_end = eol ? eol : end;
    const char *q = p;
    while (q < row_end && is_blank(*q))
      q++;
    if (q < row_end) { /* blank lines are not rows */
      int r = scan_row(q, row_end, port, is_tcp);
      rows++;
      if (r == 1)
        return 1;
      if (r == 0)
        parsed++;
    }
    p = eol ? eol + 1 : end;
  }
  return rows > 0 && parsed == 0 ? -1 : 0;
}

int orch_proc_net_port_listening(const char *dir, unsigned port, int *found)
{
  static const struct {
    const char *name;
    int is_tcp, optional;
  } TABLES[] = { { "tcp", 1, 0 }, { "tcp6", 1, 1 }, { "udp", 0, 1 }, { "udp6", 0, 1 } };
  char path[4096];
  *found = 0;
  for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) {
    char *text = NULL;
    size_t len = 0;
    int n = snprintf(path, sizeof path, "%s/%s", dir, TABLES[i].name);
    if (n < 0 || (size_t)n >= sizeof path)
      return UV_ENAMETOOLONG;
    int err = orch_read_file(AT_FDCWD, path, PROC_NET_MAX, &text, &len);
    if (err == UV_ENOENT && TABLES[i].optional)
      continue;
    if (err != 0)
      return err;
    int r = orch_proc_net_scan(text, len, port, TABLES[i].is_tcp);
    free(text);
    if (r < 0)
      return UV_EINVAL;
    if (r == 1) {
      *found = 1;
      return 0;
    }
  }
  return 0;
}
