--- Loading main.lua: evaluating the script (and the function(ctx) it may return) into a
-- Daemons chain and its entries, with error messages and tracebacks that show the user's frames,
-- not the library's; running a command's work as the root task.
-- @module orch.cli.evaluate
local sched = require 'orch.runtime.sched'
local locate = require 'orch.graph.locate'
local util = require 'orch.runtime.util'
local Dynamic = require 'orch.graph.dynamic'
local err = require('orch.cli.args').err

local M = {}

-- The directory of the orch Lua library, to keep its frames out of user tracebacks.
local function lib_dir()
  local path = package.searchpath('orch.cli', package.path)
  return path and path:match('^(.*/)') or '/lua/orch/'
end

-- Error message of any error value (with its position, if it has one).
local function message_of(e)
  local text, t = util.error_text(e)
  return text or ('error object is a %s value'):format(t)
end

-- A message handler: the message plus a short traceback of the user's frames only.
local function traceback_handler(e)
  local msg = message_of(e)
  local tb = debug.traceback('', 2)
  local dir = lib_dir()
  local frames = {}
  for line in tb:gmatch('[^\n]+') do
    if line:sub(1, 1) == '\t' and not line:find(dir, 1, true) and not line:find('^\t%[C%]')
      and not line:find('tail calls', 1, true) then
      frames[#frames + 1] = line
      if #frames == 6 then
        break
      end
    end
  end
  if #frames > 0 then
    msg = msg .. '\nstack traceback:\n' .. table.concat(frames, '\n')
  end
  return msg
end

-- Strip a `.../lua/orch/x.lua:N: ` prefix from a message raised inside the library.
local function strip_lib_position(msg)
  local dir = lib_dir()
  if msg:sub(1, #dir) == dir then
    return (msg:gsub('^[^\n]-:%d+: ', '', 1))
  end
  return msg
end

local function is_chain(v)
  -- a chain instance: the Daemons class itself (`return orch.Daemons`) has the methods too
  return type(v) == 'table' and type(v.build) == 'function' and type(v.entries) == 'function'
    and rawget(v, 'build') == nil and getmetatable(v) ~= nil
end

--- The longest a script may run without yielding while it is evaluated (ms of wall time
-- between two yields; `ORCH_EVAL_DEADLINE` overrides it). Past it the evaluation is stopped
-- with an error at the line it was running: at start orch exits 1, a reload is abandoned and
-- the running graph stays.
M.EVAL_DEADLINE = 10000

local function eval_deadline()
  local v = tonumber(os.getenv('ORCH_EVAL_DEADLINE') or '')
  if v and v >= 1 and v == math.floor(v) then
    return math.tointeger(v)
  end
  return M.EVAL_DEADLINE
end

--- A scope for one evaluation: every chain the script builds while it is evaluated (directly
-- or from a task it spawns) is recorded in `scope.chains`, so that it can be stopped with
-- `term_scope` when the evaluation fails, is interrupted, or when orch stops.
-- With `dry` (orch check, which never starts a process), such a chain is validated as every
-- chain is, then neither built nor run: `build()` does nothing and `runUntilSuccess()` returns
-- at once as if it had succeeded; `scope.chains` lists them for check's report.
function M.new_scope(dry)
  local scope = { chains = {}, dry = dry or nil }
  function scope.built(chain)
    for _, c in ipairs(scope.chains) do
      if c == chain then
        return
      end
    end
    scope.chains[#scope.chains + 1] = chain
  end
  return scope
end

--- Stop every chain built in `scope` (yields), latest first. With `keep` (the scope of the
-- evaluation that replaces it: a reload), the chains the script detached (`chain:detach()`)
-- are not stopped but handed to `keep`, so that orch stops them when it stops.
-- @async
function M.term_scope(scope, keep)
  local chains = scope and scope.chains or {}
  for i = #chains, 1, -1 do
    local c = chains[i]
    if keep and type(c.detached) == 'function' and c:detached() then
      keep.built(c)
    else
      pcall(c.term, c)
    end
  end
end

--- SIGKILL every process group of the chains built in `scope` (a forced stop).
function M.kill_scope(scope)
  for _, chain in ipairs(scope and scope.chains or {}) do
    pcall(chain.kill_all, chain)
  end
end

local CANCEL_GUARD = { __close = function(g)
  if not g.task:finished() then
    g.task:cancel()
  end
end }

-- Run `fn(...)` in the evaluation task: its own deadline, the locator's line hook, the scope;
-- returns pcall-style results. Cancelling the caller cancels it too.
local function in_eval_task(scope, locator, handler, fn, ...)
  local res
  local task = sched.start({ name = 'main.lua', quiet = true, deadline = eval_deadline(),
    scope = scope, on_line = locator:start() }, function(...)
    res = table.pack(xpcall(fn, handler, ...))
  end, ...)
  local _ <close> = setmetatable({ task = task }, CANCEL_GUARD)
  local ok, e = task:wait()
  if task:preempted() then
    e = res and res[2] or e
    if type(e) == 'string' then
      e = e:match('^[^\n]*') -- its own position says where; no traceback of the library
    end
    return false, ('%s (the script is stopped: it must not busy-wait; orch.sleep yields)')
      :format(message_of(e))
  end
  if not ok then
    return false, e
  end
  return table.unpack(res, 1, res.n)
end

--- Evaluate `script` (yields: call it from a task): run the chunk with `args`, call a returned
-- function with `ctx`, check it is a chain and list its entries. The script runs in a task of
-- its own (`EVAL_DEADLINE`); it may yield: sleep, probe, run commands, build, `term()` and
-- `runUntilSuccess` chains of its own, which are recorded in `scope` (see `new_scope`; the
-- caller stops them). On an error the chains it built are stopped before this returns.
-- @treturn table|nil chain
-- @treturn table|string entries (nil with `scope.no_entries`), or the error message
--   (`file:line: message` + traceback)
function M.evaluate(script, args, ctx, scope)
  local chunk, lerr = loadfile(script)
  if not chunk then
    return nil, lerr
  end
  scope = scope or M.new_scope()
  local a = { [0] = script }
  for i, v in ipairs(args) do
    a[i] = v
  end
  arg = a -- luacheck: ignore (the script's `arg`, as lua.c sets it)
  -- Validation errors of add* calls get the position of the call and field (orch.locate); any
  -- other error without a position (a tail call has no caller frame) gets the last line the
  -- script ran. The locator and ctx.effects reach the chains through the evaluation's scope
  -- (sched.scope(), inherited by every task the script starts).
  local locator = locate.new(lib_dir())
  local function handler(e)
    if type(e) == 'string' and e == locator.raised then
      return e
    end
    return traceback_handler(locate.relocate(e, locator.lib, 2))
  end
  local function finish()
    locator:stop()
  end
  local function fail(msg)
    finish()
    local last = locator.last
    if last.line and not msg:match('^[^\n]-:%d+: ') then
      msg = ('%s:%d: %s'):format(last.source:sub(2), last.line, msg)
    end
    M.term_scope(scope)
    return nil, msg
  end
  require('orch.cli.require_cycle').install()
  if scope.reads then -- orch run --watch: record the files the script reads
    require('orch.cli.read_hooks').install()
  end
  scope.locator, scope.effects = locator, ctx and ctx.effects
  scope.data_dir = ctx and ctx.dataDir -- orch.runtime.datadir.current()
  local res = table.pack(in_eval_task(scope, locator, handler, chunk, table.unpack(args)))
  local what = 'the script'
  if res[1] and type(res[2]) == 'function' and res.n <= 2 then
    what = "the script's function(ctx)"
    res = table.pack(in_eval_task(scope, locator, handler, res[2], ctx))
  end
  -- orch check on a Daemons.dynamic main: list what one run of its function produces
  if res[1] and scope.dry and Dynamic.is(res[2]) and res.n <= 2 then
    local dyn = res[2]
    res = table.pack(in_eval_task(scope, locator, handler, dyn.preview, dyn, ctx and ctx.effects))
    if res[1] then
      scope.dynamic = res[2]:entries()
      scope.dynamic_chain = res[2] -- what orch export and orch probe translate
      res = table.pack(true, dyn)
    end
  end
  if not res[1] then
    return fail(message_of(res[2]))
  end
  finish()
  local extra = 0
  for i = 3, res.n do
    if res[i] ~= nil then
      extra = extra + 1
    end
  end
  if extra > 0 then
    M.term_scope(scope)
    return nil, ('%s: %s returned %d values; it must return one Daemons chain'):format(
      script, what, extra + 1)
  end
  res = res[2]
  if not is_chain(res) then
    M.term_scope(scope)
    local desc = res == nil and 'nothing' or ('a ' .. type(res))
    return nil, ('%s: %s returned %s; it must return a Daemons chain ' ..
      '(orch.Daemons.of{...}:addDaemon(...)) or a function(ctx) returning one'):format(script,
      what, desc)
  end
  if scope.no_entries then -- a reload lists the entries once applied (1000 entries: ~5 ms)
    return res, nil
  end
  local ok, entries = xpcall(res.entries, traceback_handler, res)
  if ok and scope.dynamic then
    entries = scope.dynamic
  end
  if not ok then
    M.term_scope(scope)
    return nil, entries
  end
  return res, entries
end

--- The exit status `os.exit(code)` means: true/nil 0, false 1, an integer itself (else 1).
local function exit_status(code)
  if code == nil or code == true then
    return 0
  elseif code == false then
    return 1
  end
  return math.tointeger(tonumber(code)) or 1
end

--- Replace `os.exit` while scripts run: script code (top level, `ready.fn`, `exec.fn`, a
-- trigger) must not end orch at once, leaving its services to die without SIGTERM. The
-- replacement calls `on_exit(status, where)` (where: `file:line` of the caller) and raises
-- an error `os.exit(N) called: orch is stopping`, which ends the calling code. Returns the
-- function that puts the real `os.exit` back.
function M.capture_exit(on_exit)
  local real = os.exit
  os.exit = function(code) -- luacheck: ignore (replaced on purpose)
    local status = exit_status(code)
    local info = debug.getinfo(2, 'Sl')
    local where = info and info.currentline and info.currentline > 0
      and ('%s:%d'):format(info.short_src, info.currentline) or '?'
    if on_exit then
      on_exit(status, where)
    end
    error(('os.exit(%d) called: %s'):format(status, on_exit and 'orch is stopping'
      or 'orch check does not exit'), 2)
  end
  return function()
    os.exit = real -- luacheck: ignore
  end
end

-- Run `fn` as the root task; returns its results, or prints an internal error and returns 1.
local function run_root(fn)
  local res = table.pack(pcall(sched.run, fn))
  if not res[1] then
    err('orch: internal error: ' .. message_of(res[2]) .. '\n')
    return 1
  end
  return table.unpack(res, 2, res.n)
end

-- Let `require` find modules next to the script (after the library).
local function add_script_dir(script)
  local dir = script:match('^(.*)/[^/]*$') or '.'
  local add = dir .. '/?.lua;' .. dir .. '/?/init.lua'
  if not package.path:find(add, 1, true) then
    package.path = package.path .. ';' .. add
  end
end

M.message_of = message_of
M.traceback_handler = traceback_handler
M.strip_lib_position = strip_lib_position
M.run_root = run_root
M.add_script_dir = add_script_dir

return M
