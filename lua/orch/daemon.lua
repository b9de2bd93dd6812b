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
  }
  -- Tracking (orch.track): a cgroup or an environment tag per incarnation, from the tracker
  -- the chain was built with (none: the process group only).
  local tracker, group, cmd = self.tracker, nil, nil
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
    local msg, code
    cmd, msg, code = process.spawn(argv, opts)
    if cmd then
      break
    end
    -- A refused cgroup join makes the tracker fall back to /proc: once more without it.
    if not (group and tracker:spawn_failed(group, msg, code)) then
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
    g.tracker:release(g, self.cmd.proc)
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

--- Stop (yields): the TERM -> KILL of `process.Command:term`, reported as `term`/`kill`/`exit`
-- process events; then wait until nothing tracked is left. Returns true, or false and a
-- description of an unclean exit.
function CommandInc:term()
  local cmd, rt, pid = self.cmd, self.rt, self.pid
  local live = not cmd.exited.is_set
  if live then
    emit(rt, { event = 'term', pid = pid, signal = 'SIGTERM' })
  end
  local ok, desc = cmd:term({ timeout = self.timeout, on_kill = function()
    emit(rt, { event = 'kill', pid = pid, signal = 'SIGKILL' })
  end })
  self:release()
  if live then
    rt.last_exit = { code = cmd.code, signal = cmd.signal, message = cmd:describe_exit(),
      time = sched.now() }
    emit(rt, { event = 'exit', pid = pid, code = cmd.code, signal = cmd.signal,
      message = cmd:describe_exit(), clean = ok })
  end
  return ok, desc
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

--- An `exec.fn` incarnation: one task runs the fn, then the command it returned, if any.
local FnInc = {}
FnInc.__index = FnInc

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
      ok, info = false, { message = msg }
    else
      local inner, err, code = spawn_command(rt, cmd)
      if not inner then
        emit(rt, { event = 'spawn-error', message = err, code = code })
        ok, info = false, { message = err, spawn_error = true }
      else
        inc.inner, inc.pid = inner, inner.pid
        ok, info = inner:wait()
      end
    end
  end
  inc.ok, inc.info = ok, info
  inc.done:set()
end

local function start_fn(self, exec)
  local inc = setmetatable({
    done = sched.event(),
    abort = new_abort(),
    timeout = exec.sigtermTimeout or self:_sigterm_timeout(),
    rt = self,
  }, FnInc)
  inc.task = sched.spawn(self.id .. ':exec.fn', run_fn, inc, exec)
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
-- `spec`: `{id, exec, subcontainer}`; `opts`: `{oneshot = bool, effects = table, tracker =
-- orch.track Tracker or nil, owner = object}`. The owner (a HealthDaemon) is told of every
-- spawn (`owner:daemon_spawned(pid)`) and every exit (`owner:daemon_exited(ok, info)`), never
-- after `term()`.
-- @treturn Daemon
function Daemon.new(spec, opts)
  opts = opts or {}
  -- At most 7 fields in the constructor and optional ones only when set: a running daemon's
  -- table then stays at 8 hash slots (16 would cost ~200 bytes per entry).
  local self = setmetatable({
    id = spec.id,
    exec = spec.exec,
    effects = opts.effects,
    tracker = opts.tracker,
    owner = opts.owner,
    state = 'idle',
    restarts = 0,
  }, Daemon)
  if spec.subcontainer ~= nil then
    self.subcontainer = spec.subcontainer
  end
  if opts.oneshot then
    self.oneshot = true
  end
  return self
end

------------------------------------------------------------------------------------------------
-- The state machine. One static table for every daemon (no per-entry closures):
-- TRANSITIONS[state][event] = {action, next state}. The state changes first, then the action
-- runs; an action may fire the next event itself (a verdict, a spawn error). An event without
-- a row in the current state is ignored: an exit that arrives while `term()` stops the
-- process, a wake-up after `kill_now()`.
--
--   state      event        action     next       what happens
--   idle       start        spawn      running    spawn the first incarnation
--   running    exit         collect    exiting    a task waits for the leftovers, reports
--   running    spawn_error  collect    exiting    (the same, for a spawn that failed)
--   exiting    exited       decide     exiting    record + report the exit; fire the verdict
--   exiting    restart      back_off   backoff    sleep 0, 1000, 2000 ... 30000 ms
--   exiting    finish       -          done       a oneshot that exited cleanly
--   backoff    wake         spawn      running    the next incarnation
--   done       start        spawn      running    a new session of the owner
--   running,exiting,backoff,killed,done  term  stop  stopping  TERM -> KILL, wait until gone
--   stopping   stopped      -          idle
--   running,exiting,backoff,stopping,killed  kill  kill  killed/stopping  SIGKILL now
--
-- The verdict of an exit is the restart policy's (VERDICT below). Issue 14 adds rows, not
-- code paths: `exiting give_up -> failed` (restart limit), `failed start/term`, and
-- `running restart -> stop the incarnation, then exiting` (liveness).
local TRANSITIONS = {
  idle = {
    start = { 'spawn', 'running' },
  },
  running = {
    exit = { 'collect', 'exiting' },
    spawn_error = { 'collect', 'exiting' },
    term = { 'stop', 'stopping' },
    kill = { 'kill', 'killed' },
  },
  exiting = {
    exited = { 'decide', 'exiting' },
    restart = { 'back_off', 'backoff' },
    finish = { nil, 'done' },
    term = { 'stop', 'stopping' },
    kill = { 'kill', 'killed' },
  },
  backoff = {
    wake = { 'spawn', 'running' },
    term = { 'stop', 'stopping' },
    kill = { nil, 'killed' },
  },
  done = {
    start = { 'spawn', 'running' },
    term = { 'stop', 'stopping' },
  },
  stopping = {
    stopped = { nil, 'idle' },
    kill = { 'kill', 'stopping' }, -- a second Ctrl-C during a stop that waits for a TERM
  },
  killed = {
    term = { 'stop', 'stopping' },
    kill = { 'kill', 'killed' },
  },
}
Daemon.TRANSITIONS = TRANSITIONS

--- Restart policy: the event an exit fires, by policy and by how it ended. A daemon restarts
-- always; a oneshot until it exits cleanly. (Issue 14: `never`, and `exec.restart` choosing.)
local VERDICT = {
  always = { clean = 'restart', failed = 'restart' },
  ['on-failure'] = { clean = 'finish', failed = 'restart' },
}
Daemon.VERDICT = VERDICT

local ACTIONS = {}

-- Fire `event` (with up to two arguments): move to the row's state, run its action, return
-- what the action returns. No row: ignored.
local function fire(self, event, a, b)
  local row = TRANSITIONS[self.state][event]
  if not row then
    return nil
  end
  self.state = row[2]
  local act = row[1]
  if act then
    return ACTIONS[act](self, a, b)
  end
end

-- Tell the owner, logging what it raises.
local function tell(self, method, a, b)
  local owner = self.owner
  if owner then
    local ok, e = pcall(owner[method], owner, a, b)
    if not ok then
      util.log(self.effects, 'error', ('%s: %s failed: %s'):format(self.id, method,
        tostring(e)))
    end
  end
end

-- The exit task: wait until the incarnation's leftovers are gone (yields), then `exited`.
local function after_exit(self, inc)
  local ok, info
  do
    local _ <close> = inc
    ok, info = inc:result()
  end
  if self.inc == inc then
    fire(self, 'exited', ok, info)
  end
end

-- The same for a spawn that failed (no incarnation).
local function after_spawn_error(self, info)
  emit(self, { event = 'spawn-error', message = info.message, code = info.code })
  fire(self, 'exited', false, { message = info.message, spawn_error = true })
end

-- idle/done/backoff -> running: start an incarnation (never yields). It runs in its caller's
-- task (the owner's start): an error raised while spawning is this entry's spawn error.
function ACTIONS.spawn(self)
  self.loop = nil
  local ok, inc, err, code
  if self.exec.fn then
    ok, inc = pcall(start_fn, self, self.exec)
  else
    ok, inc, err, code = pcall(spawn_command, self, self.exec)
  end
  if not ok then
    inc, err, code = nil, ('spawn failed: %s'):format(util.error_message(inc)), 'EINVAL'
  end
  if not inc then
    return fire(self, 'spawn_error', { message = err, code = code })
  end
  inc.t0 = sched.now()
  self.inc = inc
  tell(self, 'daemon_spawned', inc.pid)
  inc:on_exit(function()
    if self.inc == inc then
      fire(self, 'exit')
    end
  end)
end

-- running -> exiting: a short task reports the exit (a command daemon holds no task while its
-- process runs: 1000 daemons, ~1.5 MiB less).
function ACTIONS.collect(self, info)
  if info then
    self.loop = sched.spawn(self.id .. ':loop', after_spawn_error, self, info)
  else
    self.loop = sched.spawn(self.id .. ':exit', after_exit, self, self.inc)
  end
end

-- exiting: record and report the exit, then fire the policy's verdict.
function ACTIONS.decide(self, ok, info)
  local inc = self.inc
  self.inc = nil
  if inc and sched.now() - inc.t0 >= Daemon.BACKOFF_RESET_AFTER then
    self.backoff = nil
  end
  self.last_exit = {
    code = info.code, signal = info.signal, message = info.message, time = sched.now(),
    spawn_error = info.spawn_error,
  }
  if not info.spawn_error then
    emit(self, { event = 'exit', pid = info.pid, code = info.code, signal = info.signal,
      message = info.message, clean = ok })
  end
  tell(self, 'daemon_exited', ok, info)
  local policy = self.oneshot and 'on-failure' or 'always'
  return fire(self, VERDICT[policy][ok and 'clean' or 'failed'])
end

-- exiting -> backoff: sleep (yields, in the exit task), step the backoff up, then wake.
function ACTIONS.back_off(self)
  local backoff = self.backoff or 0
  sched.sleep(backoff)
  self.backoff = math.min(backoff + Daemon.BACKOFF_STEP, Daemon.BACKOFF_MAX)
  self.restarts = self.restarts + 1
  return fire(self, 'wake')
end

-- -> stopping: stop the incarnation (yields), end the loop task; returns true or false and a
-- description of an unclean exit.
function ACTIONS.stop(self)
  local inc, ok, desc = self.inc, true, nil
  if inc then
    ok, desc = inc:term()
  end
  local loop = self.loop
  if loop and not loop:finished() then
    loop:cancel()
  end
  if inc then
    inc:close()
  end
  self.inc, self.loop = nil, nil
  fire(self, 'stopped')
  return ok, desc
end

-- SIGKILL the current incarnation now; the rest is left to `term()`.
function ACTIONS.kill(self)
  local inc = self.inc
  if inc then
    inc:kill_now()
  end
end

--- Start the loop (no-op while one runs). The owner is told of every spawn and exit.
function Daemon:start()
  if TRANSITIONS[self.state].start then
    self.backoff = nil
    fire(self, 'start')
  end
end

--- Whether a loop is running (spawning, running a process, or backing off).
function Daemon:active()
  local s = self.state
  return s ~= 'idle' and s ~= 'done'
end

--- The pid of the current process, if any.
function Daemon:pid()
  local inc = self.inc
  return inc and inc.pid or nil
end

--- Stop the loop and the current incarnation (yields): SIGTERM the group, SIGKILL after
-- `sigtermTimeout`, wait until it is gone. Returns true, or false and a description of an
-- unclean exit (for the log).
-- @async
function Daemon:term()
  local ok, desc = fire(self, 'term')
  if ok == nil then
    return true
  end
  return ok, desc
end

--- Send `sig` to the current process group (operator control); returns the pid, or nil and
-- why not.
function Daemon:signal(sig)
  local inc = self.inc
  if not inc then
    return nil, ('%s has no process running'):format(self.id)
  end
  return inc:signal(sig)
end

--- SIGKILL the current process group now (second Ctrl-C); the loop is left to `term()`.
function Daemon:kill_now()
  fire(self, 'kill')
end

return Daemon
