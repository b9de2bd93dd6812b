/* unpreload.c: a tool for `make sanitize` (not a test). busted's lua5.4 is not instrumented but
 * loads the instrumented core.so, so it starts with libasan in LD_PRELOAD; loaded right after
 * it, this takes LD_PRELOAD out of the environment before any Lua runs. The processes the specs
 * start then do not inherit libasan: python3 and procps (ps, pgrep) deadlock at start with it
 * (daemons_integration_spec's listeners never listened, core_watch_spec hung). orch itself is
 * linked with the sanitizers and needs no preload; a spec that starts lua5.4 with the core
 * passes ORCH_ASAN_PRELOAD (set by spec/c/tests.cmake) as LD_PRELOAD.
 *
 * Only unsetenv: anything that allocates here would start libasan's initialisation from this
 * constructor, which then aborts ("ASan runtime does not come first"). */
#include <stdlib.h>

__attribute__((constructor)) static void unpreload(void)
{
  unsetenv("LD_PRELOAD");
}
