--- The incarnation of a command (orch.entries.incarnation): its process (`CommandInc`), spawned
-- by orch.entries.incarnation_spawn; its outcome (an OOM kill told from a SIGKILL), its stop
-- (TERM -> KILL, or `exec.stopCommand` first), signals, and whether `exec.envFile` changed
-- since the spawn. Also `emit`, the process events every incarnation reports.
-- @module orch.entries.incarnation_command
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local util = require 'orch.runtime.util'
local env_file = require 'orch.runtime.env_file'
local cgroup_limits = require 'orch.runtime.cgroup_limits'
local spawn = require 'orch.entries.incarnation_spawn'

local M = {}

--- Tell effects.onProcess; without it, log failed exits and spawn errors (every failure of a
-- oneshot or daemon is logged with its exit status either way).
function M.emit(self, ev)
  local fx = self.effects
  ev.id = self.id
  ev.restarts = self.restarts
  if fx and type(fx.onProcess) == 'function' then
    local ok, err = pcall(fx.onProcess, ev)
    if not ok then
      util.log(fx, 'error', ('effects.onProcess failed: %s'):format(tostring(err)))
    end
  elseif (ev.event == 'exit' and not ev.clean) or ev.event == 'spawn-error' then
    util.log(fx, 'warning', ('%s: %s'):format(self.id, tostring(ev.message)))
  end
end

local emit = M.emit

--- A running command incarnation.
local CommandInc = {}
CommandInc.__index = CommandInc

--- Spawn `exec.command` for the supervisor `self` (`id`, `exec`, `subcontainer`, `tracker`,
-- `effects`); the incarnation, or nil, a message and an error code.
function M.start(self, exec)
  local spawned, err, code = spawn.spawn(self, exec)
  if not spawned then
    return nil, err, code
  end
  local cmd, group = spawned.cmd, spawned.group
  local inc = setmetatable({
    cmd = cmd,
    pid = cmd:pid(),
    timeout = spawn.sigterm_timeout(self, exec),
    rt = self,
    group = group,
    exec = exec,
    env = exec.stopCommand and spawned.env or nil, -- only exec.stopCommand needs it again
    file_env = spawned.file_env, -- exec.envFile as read for this process (a reload compares it)
  }, CommandInc)
  if exec.limits and exec.limits.memory and group and group.cgroup then
    inc.memory_cgroup = group.cgroup -- its memory.events tells an OOM kill from a SIGKILL
  end
  if self.pushed then
    self.pushed:spawned(cmd:local_pid())
  end
  -- `delay`: the backoff waited before this restart (ms; nil for a first start)
  emit(self, { event = 'spawn', pid = inc.pid, delay = self.restart_delay })
  self.restart_delay = nil
  return inc
end

-- Wait until nothing tracked of the incarnation is left (yields).
function CommandInc:release()
  local g = self.group
  if g then
    g.entry = self.rt.id
    g.tracker:release(g)
  end
end

--- Call `fn()` once the process has exited (at once if it has).
function CommandInc:on_exit(fn)
  self.cmd:on_exit(fn)
end

--- After the exit: wait until nothing tracked is left (yields), then the outcome.
function CommandInc:result()
  local code, signal = self.cmd.code, self.cmd.signal
  local message, oom = self.cmd:describe_exit(), nil
  if self.memory_cgroup and signal == 'SIGKILL'
    and cgroup_limits.oom_kills(self.memory_cgroup) > 0 then
    oom = true
    message = ('killed by the OOM killer: exec.limits.memory (%d bytes) reached'):format(
      self.exec.limits.memory)
  end
  self:release()
  local ok = process.clean_exit(code, signal)
  return ok, { code = code, signal = signal, message = message, pid = self.pid, oom = oom }
end

function CommandInc:wait()
  self.cmd:wait()
  return self:result()
end

--- Stop (yields): the TERM -> KILL of `process.Command:term`, reported as `term`/`kill`
-- process events; then wait until nothing tracked is left. Returns true, or false and a
-- description of an unclean exit; then, when the process was still running, its exit
-- `{code, signal, message, pid}` (the caller reports it).
function CommandInc:term()
  local cmd, rt, pid = self.cmd, self.rt, self.pid
  local live = not cmd.exited.is_set
  local timeout, signal = self.timeout, self.exec.stopSignal
  if live and self.exec.stopCommand then
    timeout = self:_stop_command()
    signal = 'SIGKILL' -- only reached when the process outlived the command's time
  end
  local ok, desc = cmd:term({ timeout = timeout, signal = signal,
    on_signal = function(sig)
      emit(rt, { event = sig == 'SIGKILL' and 'kill' or 'term', pid = pid, signal = sig })
    end })
  self:release()
  if live then
    return ok, desc, { code = cmd.code, signal = cmd.signal, message = cmd:describe_exit(),
      pid = pid }
  end
  return ok, desc
end

-- exec.stopCommand instead of the stop signal (yields): run it with the entry's environment
-- and $MAINPID, within sigtermTimeout, then wait for the process for what is left of it.
-- Returns the time left for the signal path (SIGTERM, then SIGKILL) should it still run.
function CommandInc:_stop_command()
  local rt, exec = self.rt, self.exec
  local t0 = sched.now()
  local env = util.copy(self.env or {})
  env.MAINPID = tostring(self.cmd:local_pid()) -- the command runs in orch's PID namespace
  util.log(rt.effects, 'info', ('%s: stopping with exec.stopCommand'):format(rt.id))
  local r, err = process.exec(exec.stopCommand, { env = env, cwd = exec.cwd, user = exec.user,
    timeout = math.max(1, self.timeout) })
  if r then -- its output goes to the entry's log
    local fx = rt.effects
    for _, stream in ipairs({ 'stdout', 'stderr' }) do
      if r[stream] ~= '' and fx and type(fx.output) == 'function' then
        pcall(fx.output, rt.id, stream, r[stream])
        pcall(fx.output, rt.id, stream, nil)
      end
    end
  end
  if not r then
    util.log(rt.effects, 'warning', ('%s: exec.stopCommand failed to start: %s'):format(rt.id,
      tostring(err)))
  elseif r.timedOut or r.exitCode ~= 0 then
    util.log(rt.effects, 'warning', ('%s: exec.stopCommand %s'):format(rt.id, r.timedOut
      and ('did not finish within %d ms'):format(self.timeout)
      or ('exited with %s'):format(r.signal and ('signal ' .. r.signal) or ('code ' ..
        tostring(r.exitCode)))))
  end
  local left = math.max(0, self.timeout - (sched.now() - t0))
  if self.cmd.exited:wait(left) then
    return left
  end
  -- still running when the stop command's time is up: SIGKILL (its stop signal was the command)
  return 0
end

--- Whether `exec.envFile` now says something else than when this process was spawned (a
-- file that cannot be read any more counts as changed).
function CommandInc:env_file_changed()
  local path = self.env_file_path or self.exec.envFile
  if not path then
    return false
  end
  local now = env_file.read(path)
  local was = self.file_env or {}
  if not now then
    return true
  end
  for k, v in pairs(now) do
    if was[k] ~= v then
      return true
    end
  end
  for k in pairs(was) do
    if now[k] == nil then
      return true
    end
  end
  return false
end

--- The process was told to reload (`reloadOnChange = 'signal'`): `path` (the entry's
-- `exec.envFile` now) as it is now is what the next comparison starts from.
function CommandInc:env_file_seen(path)
  self.env_file_path = path
  self.file_env = path and env_file.read(path) or nil
end

--- Whether a process of the entry's command runs (what `stop_command` can stop).
function CommandInc:running_command()
  return not self.cmd.exited.is_set
end

--- Stop with `exec.stopCommand` (yields; liveness): true when the process is gone within
-- `sigtermTimeout`, false when it still runs (the caller SIGKILLs it).
function CommandInc:stop_command()
  self:_stop_command()
  return self.cmd.exited.is_set
end

function CommandInc:kill_now()
  self.cmd:kill('SIGKILL')
end

function CommandInc:signal(sig)
  if sig == 'reload' then -- `orch signal <id> reload`
    sig = self.exec.reloadSignal
    if not sig then
      return nil, ('%s has no exec.reloadSignal'):format(self.rt.id)
    end
  end
  local ok, err = self.cmd:kill(sig)
  if not ok then
    return nil, err
  end
  return self.pid
end

function CommandInc:close()
  self.cmd:close()
end
CommandInc.__close = CommandInc.close

return M
