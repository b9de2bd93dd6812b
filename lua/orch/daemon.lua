--- Daemon: the restart loop of one entry's command (the SDK's Daemon + CommandController).
-- `Daemon.of(subcontainer, exec)` makes a pre-built daemon for `addDaemon(id, {daemon = d, ...})`;
-- `build()` turns every daemon or oneshot entry into a runtime supervisor (`Daemon.new`).
--
-- The supervisor runs one abortable loop: spawn an incarnation, wait for its exit, report it,
-- back off (0 ms, then +1000 ms per restart, capped at 30000 ms; reset to 0 after an incarnation
-- that stayed up 30 s), repeat. A oneshot's loop ends after its first clean exit. Spawn errors
-- are reported as a crash with the OS reason and backed off like one. `term()` SIGTERMs the
-- process group, SIGKILLs it after `sigtermTimeout` (default 30000 ms), waits until the process
-- and its pipes are done, and ends the loop; an exit after `term()` is never reported.
--
-- Command forms: a string runs under `/bin/sh -c`, a list is executed directly (PATH lookup),
-- `useEntrypoint()` is resolved from the subcontainer's metadata. `exec.fn(subcontainer, abort)`
-- runs as a task; it may return a command table (spawned unless aborted) or nil (a clean exit).
-- On `term()` the abort token fires, the primitive the fn waits in raises `sched.ABORTED`, and
-- the task is force-closed if it has not ended within `sigtermTimeout`.
-- @classmod orch.Daemon
local sched = require 'orch.sched'
local process = require 'orch.process'
local util = require 'orch.util'
local validate = require 'orch.validate'
local track = require 'orch.track'

local Daemon = {}
Daemon.__index = Daemon

--- Default wait between SIGTERM and SIGKILL (the seed's documented value; DECISIONS).
Daemon.DEFAULT_SIGTERM_TIMEOUT = 30000
--- Backoff step and cap between restarts, and the uptime that resets it.
Daemon.BACKOFF_STEP = 1000
Daemon.BACKOFF_MAX = 30000
Daemon.BACKOFF_RESET_AFTER = 30000

-- A pre-built daemon (template): validated exec + subcontainer, instantiated at build().
local Template = {}
Template.__index = Template
Template.__tostring = function(self)
  return 'orch.Daemon (' .. Daemon.summary(self.exec) .. ')'
end

--- A pre-built daemon for `addDaemon(id, {daemon = d, ready = ..., requires = ...})`.
-- `Daemon.of(subcontainer, exec)`; `Daemon.of(exec)` for a host process; the SDK's
-- `Daemon.of(effects, subcontainer, exec)` is accepted too (effects ignored).
-- @raise on invalid options (level 2)
function Daemon.of(...)
  local n = select('#', ...)
  local sub, exec
  if n >= 3 then
    sub, exec = select(2, ...)
  elseif n == 2 then
    sub, exec = ...
  else
    exec = ...
  end
  local ctx = 'Daemon.of: '
  local spec, msg = validate.check(function()
    validate.subcontainer(sub, ctx)
    return validate.exec(exec, ctx, { has_sub = sub ~= nil })
  end)
  if not spec then
    error(msg, 2)
  end
  for _, w in ipairs(msg or {}) do
    util.log(nil, 'warning', w)
  end
  return setmetatable({ __orch_daemon = true, exec = spec, subcontainer = sub }, Template)
end

--- One-line summary of an exec table for listings (`orch check`, `chain:entries()`).
function Daemon.summary(exec)
  if exec == nil then
    return ''
  end
  if exec.fn then
    return '<exec.fn>'
  end
  local cmd = exec.command
  if type(cmd) == 'string' then
    return cmd
  end
  if getmetatable(cmd) == validate.UseEntrypoint then
    return tostring(cmd)
  end
  local parts = {}
  for i, a in ipairs(cmd) do
    if a == '' or a:find('[%s\'"\\$`]') then
      a = "'" .. a:gsub("'", "'\\''") .. "'"
    end
    parts[i] = a
  end
  return table.concat(parts, ' ')
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
  local id, fx = self.id, self.effects
  return function(chunk)
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

local function merged_env(sub, env)
  local out = {}
  if sub and type(sub.env) == 'table' then
    for k, v in pairs(sub.env) do
      out[k] = v
    end
  end
  for k, v in pairs(env or {}) do
    out[k] = v
  end
  return out
end

-- The argv of a command, or nil and a reason.
local function resolve_argv(cmd, sub)
  if getmetatable(cmd) == validate.UseEntrypoint then
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

local function spawn_command(self, exec)
  local argv, why = resolve_argv(exec.command, self.subcontainer)
  if not argv then
    return nil, why, 'EINVAL'
  end
  local sub = self.subcontainer
  local pass = exec.runAsInit
  local opts = {
    env = merged_env(sub, exec.env),
    cwd = exec.cwd or (sub and sub.workdir) or nil,
    user = exec.user or (sub and sub.user) or nil,
    stdout = output_handler(self, 'stdout', not pass and exec.onStdout or nil),
    stderr = output_handler(self, 'stderr', not pass and exec.onStderr or nil),
    pidns = exec.runAsInit or nil,
    sigterm_timeout = exec.sigtermTimeout or self:_sigterm_timeout(),
    name = self.id,
    log = function(level, msg)
      util.log(self.effects, level, msg)
    end,
  }
  -- Tracking (orch.track): a cgroup or an environment tag per incarnation.
  local tracker, group, cmd = track.current(), nil, nil
  for _ = 1, 2 do
    if tracker then
      local gerr, gcode
      group, gerr, gcode = tracker:group(self.id)
      if not group then
        return nil, ("spawn '%s': %s"):format(tostring(argv[1]), tostring(gerr)), gcode
      end
      opts.env[track.ENV] = group.id
      opts.cgroup, opts.tag = group.cgroup, group.tag
    end
    local msg, code, stage
    cmd, msg, code, stage = process.spawn(argv, opts)
    if cmd then
      break
    end
    -- A refused cgroup join makes the tracker fall back to /proc: once more without it.
    if not (group and tracker:spawn_failed(group, msg, code, stage)) then
      return nil, msg, code
    end
  end
  local inc = setmetatable({
    cmd = cmd,
    pid = cmd:pid(),
    timeout = exec.sigtermTimeout or self:_sigterm_timeout(),
    rt = self,
    group = group,
  }, CommandInc)
  emit(self, { event = 'spawn', pid = inc.pid })
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
  self:release()
  local ok = process.clean_exit(code, signal)
  return ok, { code = code, signal = signal, message = self.cmd:describe_exit(), pid = self.pid }
end

function CommandInc:wait()
  self.cmd:wait()
  return self:result()
end

function CommandInc:term()
  local cmd, rt = self.cmd, self.rt
  if not cmd.exited.is_set then
    emit(rt, { event = 'term', pid = self.pid, signal = 'SIGTERM' })
    cmd:kill('SIGTERM')
    if not cmd.exited:wait(self.timeout) then
      emit(rt, { event = 'kill', pid = self.pid, signal = 'SIGKILL' })
      cmd:kill('SIGKILL')
    end
    cmd.exited:wait()
    self:release()
    rt.last_exit = { code = cmd.code, signal = cmd.signal, message = cmd:describe_exit(),
      time = sched.now() }
    emit(rt, { event = 'exit', pid = self.pid, code = cmd.code, signal = cmd.signal,
      message = cmd:describe_exit(), clean = process.clean_exit(cmd.code, cmd.signal) })
  end
  self:release()
  if process.clean_exit(cmd.code, cmd.signal) then
    return true
  end
  return false, cmd:describe_exit()
end

function CommandInc:kill_now()
  self.cmd:kill('SIGKILL')
end

function CommandInc:signal(sig)
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

--- An `exec.fn` incarnation: the fn task, then possibly the command it returned.
local FnInc = {}
FnInc.__index = FnInc

local function start_fn(self, exec)
  local inc = setmetatable({
    done = sched.event(),
    abort = new_abort(),
    timeout = exec.sigtermTimeout or self:_sigterm_timeout(),
    rt = self,
  }, FnInc)
  inc.task = sched.spawn(self.id .. ':exec.fn', function()
    inc.result = table.pack(pcall(exec.fn, self.subcontainer, inc.abort))
    inc.done:set()
  end)
  return inc
end

function FnInc:wait()
  self.done:wait()
  local res = self.result
  if not res then
    return false, { message = 'exec.fn was cancelled' }
  end
  if not res[1] then
    return false, { message = 'exec.fn raised: ' .. util.error_message(res[2]) }
  end
  if res[2] == nil or self.abort.aborted then
    return true, { message = 'exec.fn returned' }
  end
  local rt = self.rt
  local exec, msg = validate.check(validate.fn_result, res[2], rt.id, rt.subcontainer ~= nil)
  if not exec then
    return false, { message = msg }
  end
  local inner, err, code = spawn_command(rt, exec)
  if not inner then
    emit(rt, { event = 'spawn-error', message = err, code = code })
    return false, { message = err, spawn_error = true }
  end
  self.inner = inner
  self.pid = inner.pid
  return inner:wait()
end

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

function Daemon:_sigterm_timeout()
  return self.exec.sigtermTimeout or Daemon.DEFAULT_SIGTERM_TIMEOUT
end

--- A runtime supervisor for one entry.
-- `spec`: `{id, exec, subcontainer}`; `opts`: `{oneshot = bool, effects = table}`.
-- @treturn Daemon
function Daemon.new(spec, opts)
  opts = opts or {}
  return setmetatable({
    id = spec.id,
    exec = spec.exec,
    subcontainer = spec.subcontainer,
    oneshot = opts.oneshot or nil,
    effects = opts.effects,
    restarts = 0,
    last_exit = nil,
  }, Daemon)
end

-- Call an owner's hook, logging what it raises.
local function hook(self, name, what, ...)
  local f = self[name]
  if f then
    local ok, e = pcall(f, ...)
    if not ok then
      util.log(self.effects, 'error', ('%s: %s failed: %s'):format(self.id, what, tostring(e)))
    end
  end
end

-- Record and report the end of an incarnation; true when the loop is over (a oneshot that
-- succeeded).
local function ended(self, ok, info)
  self.last_exit = {
    code = info.code, signal = info.signal, message = info.message, time = sched.now(),
    spawn_error = info.spawn_error,
  }
  if not info.spawn_error then
    emit(self, { event = 'exit', pid = info.pid, code = info.code, signal = info.signal,
      message = info.message, clean = ok })
  end
  hook(self, '_on_exit', 'exit handler', ok, info)
  if ok and self.oneshot then
    self.done = true
    self._active = false
    return true
  end
  return false
end

-- Sleep the backoff (yields) and step it up.
local function back_off(self)
  local backoff = self._backoff or 0
  sched.sleep(backoff)
  self._backoff = math.min(backoff + Daemon.BACKOFF_STEP, Daemon.BACKOFF_MAX)
  self.restarts = self.restarts + 1
end

-- A command daemon holds no task while its process runs (1000 daemons: ~1.5 MiB less): the
-- exit starts a short task that releases, reports, backs off and spawns the next incarnation.
local launch

local function after_exit(self, inc, t0)
  local ok, info
  do
    local _ <close> = inc
    ok, info = inc:result()
  end
  if self._inc ~= inc or self._aborted then
    return
  end
  self._inc = nil
  if sched.now() - t0 >= Daemon.BACKOFF_RESET_AFTER then
    self._backoff = nil
  end
  if ended(self, ok, info) then
    return
  end
  back_off(self)
  launch(self)
end

local function after_spawn_error(self, err, code)
  emit(self, { event = 'spawn-error', message = err, code = code })
  if ended(self, false, { message = err, spawn_error = true }) then
    return
  end
  back_off(self)
  launch(self)
end

function launch(self)
  if self._aborted then
    return
  end
  local t0 = sched.now()
  -- launch also runs in its caller's task (start): an error raised while spawning is a spawn
  -- error of this entry, never the caller's
  local ok, inc, err, code = pcall(spawn_command, self, self.exec)
  if not ok then
    inc, err, code = nil, ('spawn failed: %s'):format(util.error_message(inc)), 'EINVAL'
  end
  if not inc then
    self._loop = sched.spawn(self.id .. ':loop', after_spawn_error, self, err, code)
    return
  end
  self._inc, self._loop = inc, nil
  hook(self, '_on_spawn', 'spawn handler', inc.pid)
  inc:on_exit(function()
    if self._inc == inc and not self._aborted then
      self._loop = sched.spawn(self.id .. ':exit', after_exit, self, inc, t0)
    end
  end)
end

-- An `exec.fn` daemon: its fn runs as a task anyway, so the loop is one too.
local function run_fn_loop(self)
  while true do
    local t0 = sched.now()
    local ok, info
    do
      local inc <close> = start_fn(self, self.exec)
      self._inc = inc
      hook(self, '_on_spawn', 'spawn handler', inc.pid)
      ok, info = inc:wait()
      self._inc = nil
      if self._aborted then
        return
      end
      if sched.now() - t0 >= Daemon.BACKOFF_RESET_AFTER then
        self._backoff = nil
      end
    end
    if ended(self, ok, info) then
      return
    end
    back_off(self)
  end
end

--- Start the loop (no-op while one runs); `on_exit(ok, info)` is called after every exit
-- (`info = {code, signal, message, spawn_error}`), never after `term()`; `on_spawn(pid)`, if
-- given, after every successful spawn.
function Daemon:start(on_exit, on_spawn)
  if self._active then
    return
  end
  -- flags are nil rather than false, and the backoff nil rather than 0: few fields keep the
  -- table of each daemon at 8 hash slots
  self._aborted = nil
  self._active = true
  self._backoff = nil
  self.done = nil
  self._on_exit = on_exit
  self._on_spawn = on_spawn
  if self.exec.fn then
    self._loop = sched.spawn(self.id .. ':loop', function()
      run_fn_loop(self)
      self._active = false
    end)
  else
    launch(self)
  end
end

--- Whether a loop is running (spawning, running a process, or backing off).
function Daemon:active()
  return self._active == true
end

--- The pid of the current process, if any.
function Daemon:pid()
  local inc = self._inc
  return inc and inc.pid or nil
end

--- Stop the loop and the current incarnation (yields): SIGTERM the group, SIGKILL after
-- `sigtermTimeout`, wait until it is gone. Returns true, or false and a description of an
-- unclean exit (for the log).
-- @async
function Daemon:term()
  if not self._active and not self._inc then
    return true
  end
  self._aborted = true
  self._on_exit, self._on_spawn = nil, nil
  local ok, desc = true, nil
  local inc = self._inc
  if inc then
    ok, desc = inc:term()
  end
  local loop = self._loop
  if loop and not loop:finished() then
    loop:cancel()
  end
  if inc then
    inc:close()
  end
  self._loop, self._inc, self._active = nil, nil, false
  return ok, desc
end

--- Send `sig` to the current process group (operator control); returns the pid, or nil and
-- why not.
function Daemon:signal(sig)
  local inc = self._inc
  if not inc then
    return nil, ('%s has no process running'):format(self.id)
  end
  return inc:signal(sig)
end

--- SIGKILL the current process group now (second Ctrl-C); the loop is left to `term()`.
function Daemon:kill_now()
  self._aborted = true
  local inc = self._inc
  if inc then
    inc:kill_now()
  end
end

return Daemon
