--- The incarnation of an `exec.fn` (orch.entries.incarnation): a task runs the fn with its abort
-- token, then the command it returned, if any, as its inner `CommandInc` (`FnInc`). A command
-- whose subcontainer is not up yet is an `FnInc` too: its task starts the subcontainer first.
-- @module orch.entries.incarnation_fn
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local validate = require 'orch.entries.validate_exec'
local spawn = require 'orch.entries.incarnation_spawn'
local command = require 'orch.entries.incarnation_command'

local M = {}

local emit = command.emit

--- A token handed to `exec.fn` as its abort signal: `.aborted` and `:onAbort(cb)`.
local Abort = {}
Abort.__index = Abort

local function new_abort()
  return setmetatable({ aborted = false, _cbs = {} }, Abort)
end

--- Call `cb()` when the incarnation is stopped (at once if it already is).
function Abort:onAbort(cb)
  if self.aborted then
    pcall(cb)
  else
    self._cbs[#self._cbs + 1] = cb
  end
end

function Abort:_fire()
  if self.aborted then
    return
  end
  self.aborted = true
  for _, cb in ipairs(self._cbs) do
    pcall(cb)
  end
  self._cbs = {}
end

--- An `exec.fn` incarnation: one task runs the fn, then the command it returned, if any.
local FnInc = {}
FnInc.__index = FnInc

-- Spawn `cmd` as the inner command of `inc` and wait for it (yields): ok, info.
local function run_inner(inc, rt, cmd)
  local inner, err, code = command.start(rt, cmd)
  if not inner then
    emit(rt, { event = 'spawn-error', message = err, code = code })
    return false, { message = err, spawn_error = true }
  end
  inc.inner, inc.pid = inner, inner.pid
  return inner:wait()
end

-- The fn task: the outcome is `inc.ok, inc.info` once `inc.done` is set.
local function run_fn(inc, exec)
  local rt = inc.rt
  local res = table.pack(pcall(exec.fn, rt.subcontainer, inc.abort))
  local ok, info
  if not res[1] then
    ok, info = false, { message = 'exec.fn raised: ' .. util.error_message(res[2]) }
  elseif res[2] == nil or inc.abort.aborted then
    ok, info = true, { message = 'exec.fn returned' }
  else
    local cmd, msg = validate.check(validate.fn_result, res[2], rt.id, rt.subcontainer ~= nil)
    if not cmd then
      ok, info = false, { message = tostring(msg) }
    else
      ok, info = run_inner(inc, rt, cmd)
    end
  end
  inc.ok, inc.info = ok, info
  inc.done:set()
end

-- A new FnInc of the supervisor `self` (its task not started yet).
local function new_inc(self, exec)
  return setmetatable({
    done = sched.event(),
    abort = new_abort(),
    timeout = spawn.sigterm_timeout(self, exec),
    rt = self,
  }, FnInc)
end

--- Start `exec.fn` for the supervisor `self` as an incarnation (never fails).
function M.start(self, exec)
  local inc = new_inc(self, exec)
  inc.task = sched.spawn(self.id .. ':exec.fn', run_fn, inc, exec)
  return inc
end

--- A command whose subcontainer is not up yet: a task starts it (yields), then the command
-- runs as the task's inner one (an FnInc without a fn: term, kill and signal work the same).
function M.start_in_subcontainer(self, exec)
  local inc = new_inc(self, exec)
  inc.task = sched.spawn(self.id .. ':subcontainer', function()
    local sok, serr = pcall(self.subcontainer._ensure, self.subcontainer)
    local ok, info
    if not sok then
      local msg = util.error_message(serr)
      emit(self, { event = 'spawn-error', message = msg, code = 'ENOENT' })
      ok, info = false, { message = msg, spawn_error = true }
    elseif inc.abort.aborted then
      ok, info = true, { message = 'stopped before the subcontainer was up' }
    else
      ok, info = run_inner(inc, self, exec)
    end
    inc.ok, inc.info = ok, info
    inc.done:set()
  end)
  return inc
end

function FnInc:on_exit(fn)
  self.done:on_set(fn)
end

function FnInc:result()
  if self.ok == nil then
    return false, { message = 'exec.fn was cancelled' }
  end
  return self.ok, self.info
end

--- Stop (yields): the command's TERM -> KILL once the fn returned one; before that, fire the
-- abort token and force-close the fn task if it has not ended within `sigtermTimeout`.
function FnInc:term()
  if self.inner then
    return self.inner:term()
  end
  self.abort:_fire()
  self.task:abort()
  if not self.done:wait(self.timeout) then
    self.task:cancel()
    self.done:set()
  end
  return true
end

function FnInc:env_file_changed()
  return self.inner ~= nil and self.inner:env_file_changed()
end

function FnInc:env_file_seen(path)
  if self.inner then
    self.inner:env_file_seen(path)
  end
end

function FnInc:running_command()
  return self.inner ~= nil and self.inner:running_command()
end

function FnInc:stop_command()
  return self.inner:stop_command()
end

function FnInc:kill_now()
  if self.inner then
    self.inner:kill_now()
  else
    self.abort:_fire()
    self.task:cancel()
  end
end

function FnInc:signal(sig)
  if self.inner then
    return self.inner:signal(sig)
  end
  return nil, 'exec.fn has not returned a command yet'
end

function FnInc:close()
  if self.inner then
    self.inner:close()
  end
  if not self.task:finished() then
    self.abort:_fire()
    self.task:cancel()
  end
end
FnInc.__close = FnInc.close

return M
