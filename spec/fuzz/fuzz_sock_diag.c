/* fuzz_sock_diag.c: libFuzzer harness for the NETLINK_SOCK_DIAG reply parser (sock_diag.c,
 * orch_sock_diag_scan). The first two bytes are the port; the rest is one reply datagram. The
 * parser must never read past it, whatever the message lengths claim. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  unsigned port = (unsigned)data[0] << 8 | data[1];
  size -= 2;
  /* an exact-size, aligned copy: ASan sees any read past the datagram */
  long *buf = malloc(size ? size : 1);
  if (buf == NULL)
    return 0;
  memcpy(buf, data + 2, size);
  int found = 0;
  int r = orch_sock_diag_scan(buf, size, port, &found);
  free(buf);
  if (r > 1 || (found != 0 && found != 1))
    __builtin_trap();
  return 0;
}
