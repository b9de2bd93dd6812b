/* bytecode.h: orch's Lua modules loaded from the build's bytecode bundle (bytecode.c). */
#ifndef ORCH_BYTECODE_H
#define ORCH_BYTECODE_H

#include <lua.h>

/* Put a searcher for the bundle at `path` second in package.searchers (after preload) when
 * it is a bundle made for `lua_dir`; returns 1 when installed, 0 when not (no bundle, another
 * directory: modules are then compiled from source as usual).   [-0, +0, m] */
int orch_bytecode_install(lua_State *L, const char *path, const char *lua_dir);

#endif
