/* fuzz_proc_net.c: libFuzzer harness for the /proc/net table parser. The parser must never read
 * past `len`, whatever the bytes; a hit must only be reported for rows it could parse. */
#include <stddef.h>
#include <stdint.h>

#include "proc_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 3)
    return 0;
  unsigned port = (unsigned)data[0] << 8 | data[1];
  int is_tcp = data[2] & 1;
  int r = orch_proc_net_scan((const char *)data + 3, size - 3, port, is_tcp);
  if (r < -1 || r > 1)
    __builtin_trap();
  return 0;
}
