/* procfs.c: the procfs/cgroupfs parsers of procfs.h. Every function works on a byte range
 * [text, text + len) and never reads outside it. */
#include "procfs.h"

#include <string.h>

/* Parse a decimal number at [*p, end) (optionally negative when `sign`); advances *p past it.
 * 0, or -1 when there is no digit or it overflows. */
static int parse_dec(const char **p, const char *end, int sign, long long *out)
{
  const char *s = *p;
  int neg = 0;
  if (sign && s < end && *s == '-') {
    neg = 1;
    s++;
  }
  if (s == end || *s < '0' || *s > '9')
    return -1;
  unsigned long long v = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    unsigned d = (unsigned)(*s - '0');
    if (v > (0x7fffffffffffffffULL - d) / 10)
      return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = neg ? -(long long)v : (long long)v;
  return 0;
}

static const char *skip_spaces(const char *p, const char *end)
{
  while (p < end && *p == ' ')
    p++;
  return p;
}

/* Skip one space-separated field. */
static const char *skip_field(const char *p, const char *end)
{
  p = skip_spaces(p, end);
  while (p < end && *p != ' ' && *p != '\n')
    p++;
  return p;
}

int orch_procfs_stat(const char *text, size_t len, orch_stat *out)
{
  const char *p = text, *end = text + len;
  long long v;
  if (parse_dec(&p, end, 0, &v) != 0)
    return -1;
  out->pid = (long)v;
  /* the comm: from the first '(' to the last ')' */
  const char *close = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == ')')
      close = q;
  p = skip_spaces(p, end);
  if (p == end || *p != '(' || close == NULL || close < p)
    return -1;
  p = skip_spaces(close + 1, end);
  if (p == end || *p == '\n')
    return -1;
  out->state = *p++;
  p = skip_spaces(p, end);
  if (parse_dec(&p, end, 1, &v) != 0)
    return -1;
  out->ppid = (long)v;
  p = skip_spaces(p, end);
  if (parse_dec(&p, end, 1, &v) != 0)
    return -1;
  out->pgrp = (long)v;
  /* fields 6..21 (session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt, utime,
   * stime, cutime, cstime, priority, nice, num_threads, itrealvalue), then 22: starttime */
  for (int i = 6; i <= 21; i++) {
    p = skip_field(p, end);
    if (p == end || *p != ' ')
      return -1;
  }
  p = skip_spaces(p, end);
  if (parse_dec(&p, end, 0, &v) != 0)
    return -1;
  out->start = (unsigned long long)v;
  return 0;
}

/* Copy [s, s + n) NUL-terminated into out; -1 when it does not fit. */
static int copy_out(const char *s, size_t n, char *out, size_t outlen)
{
  if (outlen == 0 || n >= outlen)
    return -1;
  memcpy(out, s, n);
  out[n] = '\0';
  return 0;
}

/* Whether the comma-separated list [s, s + n) holds `item`. */
static int list_has(const char *s, size_t n, const char *item)
{
  size_t ilen = strlen(item);
  const char *end = s + n;
  while (s <= end) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *stop = comma ? comma : end;
    if ((size_t)(stop - s) == ilen && memcmp(s, item, ilen) == 0)
      return 1;
    if (comma == NULL)
      break;
    s = comma + 1;
  }
  return 0;
}

int orch_procfs_cgroup_path(const char *text, size_t len, const char *controller, char *out,
                            size_t outlen)
{
  const char *p = text, *end = text + len;
  int want_v2 = controller == NULL || controller[0] == '\0';
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    const char *c1 = memchr(p, ':', (size_t)(eol - p));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
    if (c2 != NULL) {
      size_t clen = (size_t)(c2 - c1 - 1);
      int match = want_v2 ? (clen == 0 && c1 - p == 1 && *p == '0')
                          : (clen > 0 && list_has(c1 + 1, clen, controller));
      if (match)
        return copy_out(c2 + 1, (size_t)(eol - c2 - 1), out, outlen);
    }
    p = eol + 1;
  }
  return -1;
}

/* Decode the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of a
 * mountinfo field [s, s + n) into out. */
static int unescape_out(const char *s, size_t n, char *out, size_t outlen)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '\\' && i + 3 < n) {
      int ok = 1, v = 0;
      for (size_t k = 1; k <= 3; k++) {
        if (s[i + k] < '0' || s[i + k] > '7') {
          ok = 0;
          break;
        }
        v = v * 8 + (s[i + k] - '0');
      }
      if (ok && v < 256) {
        c = (char)v;
        i += 3;
      }
    }
    if (o + 1 >= outlen)
      return -1;
    out[o++] = c;
  }
  if (outlen == 0)
    return -1;
  out[o] = '\0';
  return 0;
}

/* The next space-separated field of [*p, end) as [*s, *s + *n); 0 when there is none. */
static int next_field(const char **p, const char *end, const char **s, size_t *n)
{
  const char *q = skip_spaces(*p, end);
  if (q == end)
    return 0;
  *s = q;
  while (q < end && *q != ' ')
    q++;
  *n = (size_t)(q - *s);
  *p = q;
  return 1;
}

int orch_procfs_mount(const char *text, size_t len, const char *fstype, const char *option,
                      char *root, size_t rootlen, char *point, size_t pointlen)
{
  const char *p = text, *end = text + len;
  size_t tlen = strlen(fstype);
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    const char *q = p, *f[6];
    size_t n[6];
    int i;
    /* id, parent, major:minor, root, mount point, mount options */
    for (i = 0; i < 6; i++)
      if (!next_field(&q, eol, &f[i], &n[i]))
        break;
    if (i == 6) {
      /* optional fields up to the "-" separator, then fstype, source, super options */
      const char *s;
      size_t sn;
      int sep = 0;
      while (next_field(&q, eol, &s, &sn))
        if (sn == 1 && *s == '-') {
          sep = 1;
          break;
        }
      const char *type, *src, *opts;
      size_t typen, srcn, optsn;
      if (sep && next_field(&q, eol, &type, &typen) && next_field(&q, eol, &src, &srcn) &&
          next_field(&q, eol, &opts, &optsn) && typen == tlen && memcmp(type, fstype, tlen) == 0 &&
          (option == NULL || list_has(opts, optsn, option)))
        return unescape_out(f[3], n[3], root, rootlen) == 0 &&
                       unescape_out(f[4], n[4], point, pointlen) == 0
                   ? 0
                   : -1;
    }
    p = eol + 1;
  }
  return -1;
}

int orch_procfs_environ_has(const char *text, size_t len, const char *entry, size_t entry_len)
{
  const char *p = text, *end = text + len;
  if (entry_len == 0)
    return 0;
  while (p < end) {
    const char *nul = memchr(p, '\0', (size_t)(end - p));
    const char *stop = nul ? nul : end;
    if ((size_t)(stop - p) == entry_len && memcmp(p, entry, entry_len) == 0)
      return 1;
    if (nul == NULL)
      break;
    p = nul + 1;
  }
  return 0;
}

size_t orch_procfs_pids(const char *text, size_t len, long *pids, size_t max)
{
  const char *p = text, *end = text + len;
  size_t count = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    const char *q = p;
    long long v;
    if (parse_dec(&q, eol, 0, &v) == 0 && q == eol && v > 0 && v <= 0x7fffffff) {
      if (count < max)
        pids[count] = (long)v;
      count++;
    }
    p = eol + 1;
  }
  return count;
}
