/* test_core.c: the core's lifecycle and error contracts, driven through Lua snippets in a
 * fresh state per case (so valgrind sees every finaliser run). */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_check.h"
#include "orch.h"

/* Run `code` with `core` bound to a freshly opened orch.core; returns its first result as a
 * malloc'd string ("ERROR: ..." when it raised). */
static char *run_lua(const char *code)
{
  lua_State *L = lua_check_state();
  int ok = luaL_loadstring(L, code) == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK;
  return lua_check_outcome(L, ok);
}

static void timer_order(void)
{
  CHECK_LUA("local out = {} "
            "local a, b = core.timer(), core.timer() "
            "a:start(20, 0, function() out[#out+1] = 'a' end) "
            "b:start(5, 0, function() out[#out+1] = 'b' end) "
            "core.run() return table.concat(out)",
            "ba");
}

static void timer_repeat_and_stop(void)
{
  CHECK_LUA("local n, t = 0, core.timer() "
            "t:start(1, 1, function() n = n + 1 if n == 3 then t:stop() end end) "
            "core.run() return n",
            "3");
}

static void closed_handle_raises(void)
{
  CHECK_LUA("local t = core.timer() t:close() t:close() "
            "local ok, err = pcall(function() t:start(1, 0, print) end) "
            "return tostring(t) .. ' | ' .. err:gsub('^.-: ', '')",
            "orch.timer (closed) | calling 'start' on bad self (orch.timer is closed)");
}

static void callback_error_reraised(void)
{
  CHECK_LUA("local t = core.timer() t:start(1, 0, function() error('boom') end) "
            "local ok, err = pcall(core.run) "
            "return tostring(ok) .. ' ' .. tostring(err:match('boom') ~= nil) .. ' ' .. "
            "tostring(err:match('traceback') ~= nil)",
            "false true true");
}

static void kill_reports_esrch(void)
{
  CHECK_LUA("local ok, msg, code = core.kill(999999, 'SIGTERM') return msg .. ' ' .. code",
            "kill 999999: no such process ESRCH");
}

static void bad_signal_raises(void)
{
  CHECK_LUA("local ok, err = pcall(core.kill, 1, 'SIGNOPE') return err",
            "bad argument #2 to 'orch.core.kill' (unknown signal 'SIGNOPE')");
}

static void spawn_failure_leaks_nothing(void)
{
  CHECK_LUA("local p, msg, code = core.spawn({'no-such-binary-xyz'}, {}, print) "
            "return msg .. ' ' .. code .. ' ' .. core.active_count()",
            "spawn 'no-such-binary-xyz': no such file or directory ENOENT 0");
}

static void spawn_exit_code(void)
{
  CHECK_LUA("local got "
            "core.spawn({'sh', '-c', 'exit 7'}, {}, function(c, s) got = c .. tostring(s) end) "
            "core.run() return got",
            "7nil");
}

static void spawn_signal_death(void)
{
  CHECK_LUA(
      "local got "
      "core.spawn({'sh', '-c', 'kill -TERM $$'}, {}, function(c, s) got = tostring(c) .. s end) "
      "core.run() return got",
      "nilSIGTERM");
}

static void spawn_pipe_chunks(void)
{
  /* The exit and the end of the pipe are separate events, in either order. */
  CHECK_LUA(
      "local out, exited = {}, false "
      "core.spawn({'printf', 'a\\nb'}, { stdout = function(c) out[#out+1] = c or '<eof>' end },"
      " function() exited = true end) "
      "core.run() return table.concat(out) .. tostring(exited)",
      "a\nb<eof>true");
}

static void spawn_leader_exit_leaves_group(void)
{
  /* The core kills nothing when a leader exits: what is left of its group is Lua's. */
  CHECK_LUA("local p, result p = core.spawn({'sh', '-c', 'sleep 5 & exit 0'}, {}, function() "
            "  result = tostring(p:kill(0)) p:kill('SIGKILL') end) "
            "core.run() return result",
            "true");
}

/* core.run re-raising an error keeps the host /proc descriptor of a contained orch (it was
 * reset to -1: the descriptor leaked and later children lost their host pids). */
static void run_error_keeps_host_proc_fd(void)
{
  lua_State *L = lua_check_state();
  orch_ctx *ctx = orch_ctx_get(L);
  int fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ctx->host_proc_fd = fd;
  int ok = luaL_dostring(L, "local t = core.timer() t:start(1, 0, function() error('boom') end) "
                            "return pcall(core.run)") == LUA_OK;
  CHECK(ok);
  CHECK_EQ(ctx->host_proc_fd, fd);
  ctx->host_proc_fd = -1;
  lua_close(L);
  close(fd);
}

static void finaliser_closes_active_timer(void)
{
  /* A timer still active at lua_close: the ctx finaliser must close it (valgrind: no leak). */
  CHECK_LUA("local t = core.timer() t:start(100000, 0, print) return 'ok'", "ok");
}

static void argv_with_nul_raises(void)
{
  CHECK_LUA("local ok, err = pcall(core.spawn, {'a\\0b'}, {}, print) return err",
            "bad argument #1 to 'orch.core.spawn' (argv[1] must be a string without NUL bytes)");
}

static void uid_gid_range(void)
{
  /* 2^32 would wrap to uid 0 (root), 2^32 - 1 is (uid_t)-1 ("unchanged"); both refused. */
  CHECK_LUA("local out = {} "
            "for _, o in ipairs{ {uid = 4294967296}, {uid = 4294967295}, {uid = -1}, "
            "  {uid = 65534, gid = 4294967296}, {uid = 1.5}, {uid = '0'} } do "
            "  local ok, err = pcall(core.spawn, {'true'}, o, print) "
            "  out[#out+1] = ok and 'ran' or (err:match('an integer from 0 to 4294967294') "
            "    and 'refused' or err) end "
            "return table.concat(out, ' ')",
            "refused refused refused refused refused refused");
}

static void cwd_user_nul_raise(void)
{
  CHECK_LUA("local a = select(2, pcall(core.spawn, {'true'}, {cwd = '/tmp\\0/x'}, print)) "
            "local b = select(2, pcall(core.spawn, {'true'}, {uid = 0, groups_of = 'ro\\0ot'},"
            " print)) "
            "return tostring(a:match('NUL byte') and b:match('NUL byte'))",
            "NUL byte");
}

int main(void)
{
  static const check_case cases[] = {
    { "timers fire in deadline order", timer_order },
    { "a repeating timer stops when told", timer_repeat_and_stop },
    { "a closed handle raises on use and closes idempotently", closed_handle_raises },
    { "an error in a callback is re-raised by run with a traceback", callback_error_reraised },
    { "kill of a missing pid returns ESRCH", kill_reports_esrch },
    { "an unknown signal name raises", bad_signal_raises },
    { "a failed spawn returns ENOENT and leaves no handle", spawn_failure_leaks_nothing },
    { "exit codes reach the exit callback", spawn_exit_code },
    { "a signal death reaches the exit callback", spawn_signal_death },
    { "pipe chunks then EOF then exit", spawn_pipe_chunks },
    { "the finaliser closes an active timer", finaliser_closes_active_timer },
    { "argv with a NUL byte raises", argv_with_nul_raises },
    { "a leader's exit leaves its group to Lua", spawn_leader_exit_leaves_group },
    { "an error re-raised by run keeps the host /proc fd", run_error_keeps_host_proc_fd },
    { "uid and gid are range-checked before the cast", uid_gid_range },
    { "NUL bytes in cwd or groups_of raise", cwd_user_nul_raise },
  };
  return check_run(cases, (int)(sizeof cases / sizeof cases[0]));
}
