/* readfile.c: orch_read_file (procfs.h), the one reader of the procfs and cgroupfs texts that
 * process tracking (track.c) and the port check (proc_net.c) parse. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "procfs.h"

int orch_read_file(int dirfd, const char *path, size_t max, char **out, size_t *len)
{
  *out = NULL;
  *len = 0;
  int fd;
  do
    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return errno > 0 ? -errno : -EIO;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  int err = buf ? 0 : -ENOMEM;
  while (err == 0) {
    if (n + 1 >= cap) {
      if (cap >= max)
        break;
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        err = -ENOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      err = errno > 0 ? -errno : -EIO;
    else if (r == 0)
      break;
    else
      n += (size_t)r;
  }
  close(fd);
  if (err < 0) {
    free(buf);
    return err;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}
