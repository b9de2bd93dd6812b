/* test_stream.c: Unix-domain streams (core.unix_listen, core.unix_connect) driven through Lua
 * snippets in a fresh state per case, so valgrind sees every request and handle freed. Each
 * case gets a fresh directory as the global `dir`, and `gid` for peercred. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_check.h"
#include "orch.h"

/* Shared by the snippets: `serve(path)` starts an echo server; `drive(ms)` runs the loop with a
 * watchdog and fails when it is still busy after `ms`. */
static const char PRELUDE[] =
    "function drive(ms) "
    "  local fired, w = false, core.timer() "
    "  w:start(ms or 5000, 0, function() fired = true core.stop() end) w:unref() "
    "  core.run() w:close() "
    "  assert(not fired, 'the loop was still busy') "
    "end "
    "function serve(path) "
    "  return assert(core.unix_listen(path, function(c) "
    "    c:read_start(function(chunk) if chunk then c:write(chunk) else c:close() end end) "
    "  end)) "
    "end ";

static void remove_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Run `code` with `core` bound to a freshly opened orch.core; returns its first result as a
 * malloc'd string ("ERROR: ..." when it raised). */
static char *run_lua(const char *code)
{
  char dir[] = "/tmp/orch-stream-XXXXXX";
  if (mkdtemp(dir) == NULL)
    return strdup("ERROR: mkdtemp");
  lua_State *L = lua_check_state();
  lua_pushstring(L, dir);
  lua_setglobal(L, "dir");
  lua_pushinteger(L, (lua_Integer)getgid());
  lua_setglobal(L, "gid");
  int ok = luaL_dostring(L, PRELUDE) == LUA_OK && luaL_loadstring(L, code) == LUA_OK &&
           lua_pcall(L, 0, 1, 0) == LUA_OK;
  char *out = lua_check_outcome(L, ok);
  remove_dir(dir);
  return out;
}

static void echo_round_trip(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local srv = serve(path) "
            "local got, status = {}, nil "
            "local c = core.unix_connect(path, function(err) status = tostring(err) end) "
            "c:read_start(function(chunk) "
            "  if chunk then got[#got + 1] = chunk end "
            "  if table.concat(got) == 'ping\\npong\\n' then c:close() srv:close() end "
            "end) "
            "assert(c:write('ping\\n')) assert(c:write('pong\\n')) "
            "drive() "
            "return status .. ' ' .. table.concat(got):gsub('\\n', '|') .. ' ' .. "
            "core.active_count() .. ' ' .. tostring(os.remove(path))",
            "nil ping|pong| 0 true");
}

static void socket_mode_0600(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local srv = serve(path) "
            "local mode = io.popen('stat -c %a ' .. path):read('l') "
            "srv:close() srv:close() "
            "return mode .. ' ' .. tostring(srv)",
            "600 orch.stream (closed)");
}

static void peercred_is_us(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local server_side, client_side "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  server_side = { conn:peercred() } conn:close() srv:close() "
            "end) "
            "local c c = core.unix_connect(path, function(err) "
            "  client_side = { c:peercred() } c:close() "
            "end) "
            "drive() "
            "local me = core.getpid() .. ',' .. core.getuid() .. ',' .. gid "
            "return tostring(table.concat(server_side, ',') == me) .. ' ' .. "
            "tostring(table.concat(client_side, ',') == me)",
            "true true");
}

static void write_to_closed_peer(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local res = {} "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  conn:read_start(function(chunk, err) "
            "    if chunk then return end "
            "    for i = 1, 2 do "
            "      local ok, msg, code = conn:write('late\\n') "
            "      res[#res + 1] = tostring(ok) .. ' ' .. msg .. ' ' .. code "
            "    end "
            "    conn:close() srv:close() "
            "  end) "
            "end) "
            "local c c = core.unix_connect(path, function() c:close() end) "
            "drive() "
            "return table.concat(res, ' | ') .. ' ' .. core.active_count()",
            "nil write: broken pipe EPIPE | nil write: broken pipe EPIPE 0");
}

static void failed_queued_write_is_sticky(void)
{
  /* 8 MiB cannot fit in the socket buffers: most of it is queued, then the peer goes away. */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local queued, code "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  assert(conn:write(string.rep('x', 8 << 20))) "
            "  queued = conn:write_queue_size() "
            "  conn:read_start(function(chunk) "
            "    if chunk then return end "
            "    local t = core.timer() "
            "    t:start(1, 1, function() "
            "      local ok, _, c2 = conn:write('more') "
            "      if not ok then code = c2 t:close() conn:close() srv:close() end "
            "    end) "
            "  end) "
            "end) "
            "local c c = core.unix_connect(path, function() c:close() end) "
            "drive() "
            "return tostring(queued > 1000000) .. ' ' .. code .. ' ' .. core.active_count()",
            "true EPIPE 0");
}

static void close_with_pending_write(void)
{
  /* The write request and its 8 MiB copy are freed by the cancelled callback (valgrind). */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local queued "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  assert(conn:write(string.rep('y', 8 << 20))) "
            "  assert(conn:write('tail')) "
            "  queued = conn:write_queue_size() "
            "  conn:close() conn:close() srv:close() "
            "end) "
            "local c = core.unix_connect(path, function() end) "
            "drive() c:close() drive() "
            "return tostring(queued > 1000000) .. ' ' .. core.active_count()",
            "true 0");
}

static void dropped_writer_flushes_then_goes(void)
{
  /* Lua drops the connection right after writing: it stays anchored until the bytes are out. */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local n = 0 "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  conn:write(string.rep('z', 1 << 20)) conn:shutdown() srv:close() "
            "end) "
            "local c c = core.unix_connect(path, function() "
            "  c:read_start(function(chunk) "
            "    if chunk then n = n + #chunk else c:close() end "
            "  end) "
            "end) "
            "collectgarbage() drive() collectgarbage() "
            "return n .. ' ' .. core.active_count()",
            "1048576 0");
}

static void connect_missing_path(void)
{
  CHECK_LUA("local got "
            "local c = core.unix_connect(dir .. '/none.sock', function(code, msg) "
            "  got = code .. ' ' .. msg:gsub('^.-: ', '') "
            "end) "
            "drive() c:close() "
            "return got .. ' ' .. core.active_count()",
            "ENOENT no such file or directory 0");
}

static void stale_socket_refused(void)
{
  /* What the Lua layer's stale-socket check sees: a socket file nobody listens on. */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "serve(path):close() "
            "local got "
            "local c = core.unix_connect(path, function(code) got = code end) "
            "drive() "
            "local _, _, cred = c:peercred() "
            "c:close() "
            "local _, _, busy = core.unix_listen(path, print) "
            "os.remove(path) "
            "local srv = serve(path) srv:close() "
            "return got .. ' ' .. cred .. ' ' .. busy .. ' ' .. tostring(srv) .. ' ' .. "
            "core.active_count()",
            "ECONNREFUSED ENOTCONN EADDRINUSE orch.stream (closed) 0");
}

static void second_listen_in_use(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local srv = serve(path) "
            "local again, msg, code = core.unix_listen(path, print) "
            "local echoed "
            "local c = core.unix_connect(path, function() end) "
            "c:read_start(function(chunk) echoed = chunk c:close() srv:close() end) "
            "c:write('still here') "
            "drive() "
            "return tostring(again) .. ' ' .. code .. ' ' .. tostring(msg:find(path, 1, true) ~= "
            "nil) .. ' ' .. echoed",
            "nil EADDRINUSE true still here");
}

static void too_long_path(void)
{
  CHECK_LUA("local p = '/tmp/' .. string.rep('a', 120) "
            "local _, _, c1 = core.unix_listen(p, print) "
            "local _, _, c2 = core.unix_connect(p, print) "
            "return c1 .. ' ' .. c2 .. ' ' .. core.active_count()",
            "ENAMETOOLONG ENAMETOOLONG 0");
}

static void misuse_raises(void)
{
  CHECK_LUA("local r = {} "
            "r[1] = select(2, pcall(core.unix_listen, '', print)) "
            "r[2] = select(2, pcall(core.unix_connect, 'a\\0b', print)) "
            "r[3] = select(2, pcall(core.unix_listen, dir .. '/s.sock', 42)) "
            "local srv = serve(dir .. '/s.sock') "
            "r[4] = select(2, pcall(function() return srv:write('x') end)) "
            "srv:close() "
            "r[5] = select(2, pcall(function() return srv:peercred() end)) "
            "return (table.concat(r, '\\n'):gsub('%[string [^\\n]-:1: ', ''))",
            "bad argument #1 to 'orch.core.unix_listen' (path must not be empty)\n"
            "bad argument #1 to 'orch.core.unix_connect' (path must not contain NUL bytes)\n"
            "bad argument #2 to 'orch.core.unix_listen' (function expected, got number)\n"
            "calling 'write' on bad self (orch.stream is a listening server, not a connection)\n"
            "calling 'peercred' on bad self (orch.stream is closed)");
}

static void connection_callback_error(void)
{
  /* The error reaches run() with a traceback; the accepted connection is still closed (by
   * its finaliser here) and nothing leaks. */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local srv = core.unix_listen(path, function(conn) error('boom') end) "
            "local c = core.unix_connect(path, function() end) "
            "local ok, err = pcall(core.run) "
            "c:close() srv:close() "
            "return tostring(ok) .. ' ' .. tostring(err:match('boom') ~= nil)",
            "false true");
}

static void closed_before_connect(void)
{
  CHECK_LUA("local called = false "
            "local srv = serve(dir .. '/s.sock') "
            "local c = core.unix_connect(dir .. '/s.sock', function() called = true end) "
            "c:write('never') c:close() srv:close() "
            "drive() "
            "return tostring(called) .. ' ' .. core.active_count()",
            "false 0");
}

static void finaliser_closes_everything(void)
{
  /* lua_close with a listening server, a reading connection and a queued write. */
  CHECK_LUA("local path = dir .. '/s.sock' "
            "keep = {} "
            "keep.srv = core.unix_listen(path, function(conn) "
            "  keep.conn = conn conn:write(string.rep('q', 4 << 20)) core.stop() "
            "end) "
            "keep.c = core.unix_connect(path, function() end) "
            "keep.c:read_start(function() end) "
            "drive() "
            "return tostring(keep.conn:write_queue_size() > 0)",
            "true");
}

static void eof_and_shutdown_callback(void)
{
  CHECK_LUA("local path = dir .. '/s.sock' "
            "local seen = {} "
            "local srv srv = core.unix_listen(path, function(conn) "
            "  conn:read_start(function(chunk, err) "
            "    if chunk then seen[#seen + 1] = chunk "
            "    else seen[#seen + 1] = 'eof:' .. tostring(err) conn:close() srv:close() end "
            "  end) "
            "end) "
            "local c = core.unix_connect(path, function() end) "
            "c:write('bye') "
            "c:shutdown(function(err) seen[#seen + 1] = 'shut:' .. tostring(err) end) "
            "local again = select(3, c:shutdown()) "
            "drive() c:close() "
            "table.sort(seen) "
            "return table.concat(seen, ' ') .. ' ' .. again",
            "bye eof:nil shut:nil ENOTCONN");
}

int main(void)
{
  static const check_case cases[] = {
    { "listen, connect and an echo round trip; close leaves the path", echo_round_trip },
    { "the socket file gets mode 0600; close is idempotent", socket_mode_0600 },
    { "peercred reports our own pid, uid and gid on both ends", peercred_is_us },
    { "a write to a closed peer returns EPIPE, again and again", write_to_closed_peer },
    { "a queued write that fails makes later writes fail", failed_queued_write_is_sticky },
    { "close with a pending write frees everything", close_with_pending_write },
    { "a dropped connection flushes its writes before it goes", dropped_writer_flushes_then_goes },
    { "connect to a missing path calls back ENOENT", connect_missing_path },
    { "a stale socket file: ECONNREFUSED, replaced once removed", stale_socket_refused },
    { "a second listen on a live path is EADDRINUSE", second_listen_in_use },
    { "a path too long for sun_path is ENAMETOOLONG", too_long_path },
    { "misuse raises", misuse_raises },
    { "an error in on_connection is re-raised by run", connection_callback_error },
    { "closed before connecting: the callback never runs", closed_before_connect },
    { "the finaliser closes servers, readers and queued writes", finaliser_closes_everything },
    { "peer EOF and the shutdown callback", eof_and_shutdown_callback },
  };
  return check_run(cases, (int)(sizeof cases / sizeof cases[0]));
}
