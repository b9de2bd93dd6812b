/* lines.h: the orch.lines module (lines.c), output cut into blocks of lines. */
#ifndef ORCH_LINES_H
#define ORCH_LINES_H

#include <lua.h>

int luaopen_orch_lines(lua_State *L);

#endif
