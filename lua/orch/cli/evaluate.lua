--- Loading main.lua: evaluating the script (and the function(ctx) it may return) into a
-- Daemons chain and its entries, with error messages and tracebacks that show the user's frames,
-- not the library's; running a command's work as the root task.
-- @module orch.cli.evaluate
local sched = require 'orch.sched'
local locate = require 'orch.locate'
local util = require 'orch.util'
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

--- Evaluate `script` (yields: call it from a task): run the chunk with `args`, call a returned
-- function with `ctx`, check it is a chain and list its entries.
-- @treturn table|nil chain
-- @treturn table|string entries, or the error message (`file:line: message` + traceback)
function M.evaluate(script, args, ctx)
  local chunk, lerr = loadfile(script)
  if not chunk then
    return nil, lerr
  end
  local a = { [0] = script }
  for i, v in ipairs(args) do
    a[i] = v
  end
  arg = a -- luacheck: ignore (the script's `arg`, as lua.c sets it)
  -- Validation errors of add* calls get the position of the call and field (orch.locate); any
  -- other error without a position (a tail call has no caller frame) gets the last line the
  -- script ran. Building the chain is refused meanwhile (Daemons.evaluating).
  local locator = locate.new(lib_dir())
  local Daemons = require 'orch.daemons'
  local function handler(e)
    if type(e) == 'string' and e == locator.raised then
      return e
    end
    return traceback_handler(locate.relocate(e, locator.lib, 2))
  end
  local end_scope
  local function finish()
    locator:stop()
    end_scope()
  end
  local function fail(msg)
    finish()
    local last = locator.last
    if last.line and not msg:match('^[^\n]-:%d+: ') then
      msg = ('%s:%d: %s'):format(last.source:sub(2), last.line, msg)
    end
    return nil, msg
  end
  require('orch.cli.require_cycle').install()
  locator:start()
  end_scope = Daemons.evaluating({ locator = locator, effects = ctx and ctx.effects })
  local res = table.pack(xpcall(chunk, handler, table.unpack(args)))
  local what = 'the script'
  if res[1] and type(res[2]) == 'function' and res.n <= 2 then
    what = "the script's function(ctx)"
    res = table.pack(xpcall(res[2], handler, ctx))
  end
  if not res[1] then
    return fail(res[2])
  end
  finish()
  local extra = 0
  for i = 3, res.n do
    if res[i] ~= nil then
      extra = extra + 1
    end
  end
  if extra > 0 then
    return nil, ('%s: %s returned %d values; it must return one Daemons chain'):format(
      script, what, extra + 1)
  end
  res = res[2]
  if not is_chain(res) then
    local desc = res == nil and 'nothing' or ('a ' .. type(res))
    return nil, ('%s: %s returned %s; it must return a Daemons chain ' ..
      '(orch.Daemons.of{...}:addDaemon(...)) or a function(ctx) returning one'):format(script,
      what, desc)
  end
  local ok, entries = xpcall(res.entries, traceback_handler, res)
  if not ok then
    return nil, entries
  end
  return res, entries
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
