--- One incarnation of a daemon or oneshot: a command's process (`CommandInc`) or an `exec.fn`
-- task and the command it returned (`FnInc`). Both answer `on_exit(fn)`, `result()` (after the
-- exit: the outcome, once nothing tracked is left), `term()` (the one TERM -> KILL path:
-- `process.Command:term`), `kill_now()`, `signal(sig)` and `close()`. The supervisor that owns
-- them (orch.daemon) decides what happens next.
-- @module orch.entries.incarnation
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local util = require 'orch.runtime.util'
local validate = require 'orch.entries.validate_exec'
local track = require 'orch.runtime.track'
local env_file = require 'orch.runtime.env_file'
local cgroup_limits = require 'orch.runtime.cgroup_limits'
local subcontainer = require 'orch.subcontainer'

local M = {}

--- Default wait between SIGTERM and SIGKILL (the seed's documented value; DECISIONS).
M.DEFAULT_SIGTERM_TIMEOUT = 30000

-- The entry's sigtermTimeout (that of the command an exec.fn returned first).
local function sigterm_timeout(rt, exec)
  return exec.sigtermTimeout or rt.exec.sigtermTimeout or M.DEFAULT_SIGTERM_TIMEOUT
end

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

-- Tell effects.onProcess; without it, log failed exits and spawn errors (every failure of a
-- oneshot or daemon is logged with its exit status either way).
local function emit(self, ev)
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

local function output_handler(self, stream, cb)
  local id, fx, push = self.id, self.effects, self.pushed
  return function(chunk)
    if push then
      push:output(stream, chunk) -- ready.logLine/onLine; the chunk still goes to the log
    end
    if chunk == nil then
      return
    end
    if cb then
      local ok, err = pcall(cb, chunk)
      if not ok then
        util.log(fx, 'error', ('%s: exec.%s raised: %s'):format(id,
          stream == 'stdout' and 'onStdout' or 'onStderr', util.error_message(err)))
      end
    elseif fx and type(fx.output) == 'function' then
      local ok, err = pcall(fx.output, id, stream, chunk)
      if not ok then
        util.log(fx, 'error', ('effects.output failed: %s'):format(tostring(err)))
      end
    else
      io.stdout:write(chunk)
      io.stdout:flush()
    end
  end
end

-- effects -> the `log(level, msg)` a Command reports leftovers with: one per effects table (all
-- entries of a chain share theirs), not a closure per spawn kept by every running process.
local loggers = setmetatable({}, { __mode = 'k' })
local NO_EFFECTS = {}

local function logger(fx)
  local key = fx or NO_EFFECTS
  local fn = loggers[key]
  if not fn then
    fn = function(level, msg)
      util.log(fx, level, msg)
    end
    loggers[key] = fn
  end
  return fn
end

-- The subcontainer's env, then exec.envFile's, then exec.env: each overrides the one before.
local function merged_env(sub, env, file_env)
  local out = {}
  if sub and type(sub.env) == 'table' then
    for k, v in pairs(sub.env) do
      out[k] = v
    end
  end
  for k, v in pairs(file_env or {}) do
    out[k] = v
  end
  for k, v in pairs(env or {}) do
    out[k] = v
  end
  return out
end

-- The argv of a command, or nil and a reason.
local function resolve_argv(cmd, sub)
  if getmetatable(cmd) == validate.UseEntrypoint and subcontainer.is(sub) then
    return sub:useEntrypoint(cmd.override) -- from the image's config
  elseif getmetatable(cmd) == validate.UseEntrypoint then
    local argv = {}
    for _, a in ipairs(sub and sub.entrypoint or {}) do
      argv[#argv + 1] = a
    end
    for _, a in ipairs(cmd.override or (sub and sub.cmd) or {}) do
      argv[#argv + 1] = a
    end
    if #argv == 0 then
      return nil, 'command cannot be empty'
    end
    return argv
  end
  return process.argv(cmd)
end

--- A running command incarnation.
local CommandInc = {}
CommandInc.__index = CommandInc

--- Spawn `exec.command` for the supervisor `self` (`id`, `exec`, `subcontainer`, `tracker`,
-- `effects`); the incarnation, or nil, a message and an error code.
local function spawn_command(self, exec)
  local argv, why = resolve_argv(exec.command, self.subcontainer)
  if not argv then
    return nil, why, 'EINVAL'
  end
  local sub = self.subcontainer
  local pass = exec.runAsInit
  local file_env
  if exec.envFile then -- read at each spawn: an edit applies at the next restart
    local ferr
    file_env, ferr = env_file.read(exec.envFile)
    if not file_env then
      return nil, ferr, 'ENOENT'
    end
  end
  local env = merged_env(sub, exec.env, file_env)
  if self.pushed then
    for k, v in pairs(self.pushed:env() or {}) do
      env[k] = v
    end
  end
  local opts = {
    env = env,
    cwd = exec.cwd or (sub and sub.workdir) or nil,
    user = exec.user or (sub and sub.user) or nil,
    stdout = output_handler(self, 'stdout', not pass and exec.onStdout or nil),
    stderr = output_handler(self, 'stderr', not pass and exec.onStderr or nil),
    pidns = exec.runAsInit or nil,
    rlimits = exec.limits and (exec.limits.nofile or exec.limits.core)
      and { nofile = exec.limits.nofile, core = exec.limits.core } or nil,
    sigterm_timeout = sigterm_timeout(self, exec),
    fds = self.pushed and self.pushed:fds() or nil, -- ready.notifyFd
    name = self.id,
    log = logger(self.effects),
  }
  if subcontainer.is(sub) then -- the image's env, user and workdir; its namespaces
    local plan, perr = sub:spawn_plan({ env = env, user = exec.user, cwd = exec.cwd,
      pidns = opts.pidns })
    if not plan then
      return nil, perr, 'ENOENT'
    end
    for k, v in pairs(plan) do
      opts[k] = v
    end
  end
  -- Tracking (orch.track): a cgroup or an environment tag per incarnation, from the tracker
  -- the chain was built with (none: the process group only).
  local tracker, group, cmd = self.tracker, nil, nil
  local function failed(...)
    if opts.fds then
      self.pushed:spawn_failed()
    end
    return ...
  end
  for _ = 1, 2 do
    if tracker then
      local gerr, gcode
      group, gerr, gcode = tracker:group(self.id)
      if not group then
        return failed(nil, ("spawn '%s': %s"):format(tostring(argv[1]), tostring(gerr)), gcode)
      end
      opts.env[track.ENV] = group.id
      opts.cgroup, opts.tag = group.cgroup, group.tag
    end
    -- cgroup limits need a cgroup v2 of the incarnation's own: an error, never a silent no-op
    local wanted = cgroup_limits.wanted(exec.limits)
    if #wanted > 0 then
      local lok, lerr
      if group and group.cgroup and group.v2 then
        lok, lerr = cgroup_limits.apply(group.cgroup, exec.limits)
      else
        lerr = ('exec.limits.%s needs a cgroup v2 per incarnation, and orch tracks processes '
          .. 'by %s here (run orch as root on a cgroup v2 system, or under systemd with '
          .. 'Delegate=yes)'):format(wanted[1], group and group.cgroup and 'cgroup v1'
          or 'process group')
      end
      if not lok then
        if group and tracker then
          tracker:spawn_failed(group, lerr, 'EINVAL', 'limits')
        end
        return failed(nil, lerr, 'EINVAL')
      end
    end
    local msg, code, stage
    cmd, msg, code, stage = process.spawn(argv, opts)
    if cmd then
      break
    end
    -- A refused cgroup join makes the tracker fall back to /proc: once more without it.
    if not (group and tracker:spawn_failed(group, msg, code, stage)) then
      return failed(nil, msg, code)
    end
  end
  local inc = setmetatable({
    cmd = cmd,
    pid = cmd:pid(),
    timeout = sigterm_timeout(self, exec),
    rt = self,
    group = group,
    exec = exec,
    env = exec.stopCommand and opts.env or nil, -- only exec.stopCommand needs it again
    file_env = file_env, -- exec.envFile as read for this process (a reload compares it)
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

--- An `exec.fn` incarnation: one task runs the fn, then the command it returned, if any.
local FnInc = {}
FnInc.__index = FnInc

-- Spawn `cmd` as the inner command of `inc` and wait for it (yields): ok, info.
local function run_inner(inc, rt, cmd)
  local inner, err, code = spawn_command(rt, cmd)
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

--- Start `exec.fn` for the supervisor `self` as an incarnation (never fails).
local function start_fn(self, exec)
  local inc = setmetatable({
    done = sched.event(),
    abort = new_abort(),
    timeout = sigterm_timeout(self, exec),
    rt = self,
  }, FnInc)
  inc.task = sched.spawn(self.id .. ':exec.fn', run_fn, inc, exec)
  return inc
end

-- A command whose subcontainer is not up yet: a task starts it (yields), then the command
-- runs as the task's inner one (an FnInc without a fn: term, kill and signal work the same).
local function start_in_sub(self, exec)
  local inc = setmetatable({
    done = sched.event(),
    abort = new_abort(),
    timeout = sigterm_timeout(self, exec),
    rt = self,
  }, FnInc)
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

--- Start the command of `exec` for the supervisor `self`: at once (never yields), or, when its
-- subcontainer is not up yet, in a task that starts it first.
local function start_command(self, exec)
  local sub = self.subcontainer
  if subcontainer.is(sub) and not sub:running() then
    return start_in_sub(self, exec)
  end
  return spawn_command(self, exec)
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
M.emit = emit
M.command = start_command
M.fn = start_fn

return M
