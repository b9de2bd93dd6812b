--- Daemon: the supervisor of one entry's command (the SDK's Daemon + CommandController).
-- `Daemon.of(subcontainer, exec)` makes a pre-built daemon for `addDaemon(id, {daemon = d, ...})`
-- (orch.entries.daemon_of); `build()` turns every daemon or oneshot entry into a runtime
-- supervisor (`Daemon.new`). The one-line listings of an exec are orch.entries.exec_summary's.
--
-- The supervisor is a state machine (TRANSITIONS below): spawn an incarnation (orch.incarnation),
-- wait for its exit, report it, let the restart policy decide, back off (0 ms, then +1000 ms
-- per restart, capped at 30000 ms; reset to 0 after an incarnation that stayed up 30 s), spawn
-- again. A oneshot is done after its first clean exit. Spawn errors are reported as a crash
-- with the OS reason and backed off like one. `term()` SIGTERMs the process group, SIGKILLs it
-- after `sigtermTimeout` (default 30000 ms), waits until the process and its pipes are done;
-- an exit after `term()` is never reported to the owner.
--
-- Command forms: a string runs under `/bin/sh -c`, a list is executed directly (PATH lookup),
-- `useEntrypoint()` is resolved from the subcontainer's metadata. `exec.fn(subcontainer, abort)`
-- runs as a task; it may return a command table (spawned unless aborted) or nil (a clean exit).
-- On `term()` the abort token fires, the primitive the fn waits in raises `sched.ABORTED`, and
-- the task is force-closed if it has not ended within `sigtermTimeout`.
-- Over the guide's 400 lines on purpose: the TRANSITIONS table and the ACTIONS it names are one
-- state machine, read together; what could leave (Daemon.of, exec listings, incarnations, the
-- restart policy's validation) already did.
-- @classmod orch.Daemon
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local incarnation = require 'orch.entries.incarnation'
local vpolicy = require 'orch.entries.validate_policy'
local daemon_of = require 'orch.entries.daemon_of'
local exec_summary = require 'orch.entries.exec_summary'

local emit = incarnation.emit

local Daemon = {}
Daemon.__index = Daemon

--- Default wait between SIGTERM and SIGKILL (the seed's documented value; DECISIONS).
Daemon.DEFAULT_SIGTERM_TIMEOUT = incarnation.DEFAULT_SIGTERM_TIMEOUT
--- The default `exec.backoff`: `{initial = 0, step = 1000, factor = 1, max = 30000,
-- resetAfter = 30000}` (ms). The delay before the first restart is `initial`, each next one
-- `min(previous * factor + step, max)`; an incarnation that stayed up `resetAfter` ms resets it.
Daemon.BACKOFF = vpolicy.BACKOFF_DEFAULTS

Daemon.of = daemon_of.of
Daemon.summary = exec_summary.summary
Daemon.policy_summary = exec_summary.policy_summary

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
  if opts.pushed then
    self.pushed = opts.pushed -- orch.entries.pushed: NOTIFY_SOCKET, output lines
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
--   running    recycle      recycle    running    liveness: stop signal or stopCommand now,
--                                                  KILL after the timeout;
--                                                  the exit is then a failure (backoff)
--   exiting    exited       decide     exiting    record + report the exit; fire the verdict
--   exiting    restart      back_off   backoff    sleep 0, 1000, 2000 ... 30000 ms
--   exiting    finish       finish     done       a clean exit the policy does not restart
--   exiting    give_up      give_up    failed     past maxRestarts, or restart = 'never'
--   failed     start        spawn      running    cleared (orch restart <id>)
--   backoff    wake         spawn      running    the next incarnation
--   done       start        spawn      running    a new session of the owner
--   running,exiting,backoff,killed,done,failed  term  stop  stopping  TERM -> KILL, wait
--   stopping   stopped      -          idle
--   running,exiting,backoff,stopping,killed  kill  kill  killed/stopping  SIGKILL now
--
-- The verdict of an exit is the restart policy's (VERDICT below), turned into `give_up` when
-- the restart would pass `exec.maxRestarts` within `exec.restartWindow`.
local TRANSITIONS = {
  idle = {
    start = { 'spawn', 'running' },
  },
  running = {
    exit = { 'collect', 'exiting' },
    recycle = { 'recycle', 'running' },
    spawn_error = { 'collect', 'exiting' },
    term = { 'stop', 'stopping' },
    kill = { 'kill', 'killed' },
  },
  exiting = {
    exited = { 'decide', 'exiting' },
    restart = { 'back_off', 'backoff' },
    finish = { 'finish', 'done' },
    give_up = { 'give_up', 'failed' },
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
  failed = {
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

--- Restart policy (`exec.restart`): the event an exit fires, by policy and by how it ended.
-- A daemon restarts `always` by default, a oneshot `on-failure`.
local VERDICT = {
  always = { clean = 'restart', failed = 'restart' },
  ['on-failure'] = { clean = 'finish', failed = 'restart' },
  never = { clean = 'finish', failed = 'give_up' },
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
    ok, inc = pcall(incarnation.fn, self, self.exec)
  else
    ok, inc, err, code = pcall(incarnation.command, self, self.exec)
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
  local recycled = self.recycling
  if recycled then -- stopped by liveness: a failure whatever the exit status
    self.recycling = nil
    self:_cancel_kill_timer()
    ok = false
    info.recycled = recycled
  end
  if inc and sched.now() - inc.t0 >= (self.exec.backoff or Daemon.BACKOFF).resetAfter then
    self.backoff = nil
  end
  self.last_exit = {
    code = info.code, signal = info.signal, message = info.message, time = sched.now(),
    spawn_error = info.spawn_error,
  }
  if not info.spawn_error then
    emit(self, { event = 'exit', pid = info.pid, code = info.code, signal = info.signal,
      message = info.message, clean = ok, oom = info.oom })
  end
  tell(self, 'daemon_exited', ok, info)
  local policy = self:policy()
  local verdict = VERDICT[policy][ok and 'clean' or 'failed']
  local why = info.recycled or info.message or 'exited'
  if verdict == 'give_up' then
    why = ("exited and exec.restart is 'never': %s"):format(why)
  elseif verdict == 'restart' then
    local over, n, span = self:_count_restart()
    if over then
      verdict, why = 'give_up', ('gave up after %d restarts in %d ms: %s'):format(n, span, why)
    end
  end
  return fire(self, verdict, why)
end

-- Whether one more restart passes `exec.maxRestarts` within `exec.restartWindow`; if not, it
-- is counted. Also the restarts counted and the ms they span (for the message).
function Daemon:_count_restart()
  local max = self.exec.maxRestarts
  if not max then
    return false
  end
  local now, window = sched.now(), self.exec.restartWindow
  local hist = self.history or {}
  self.history = hist
  if window then
    local keep = 1
    while hist[keep] and hist[keep] <= now - window do
      keep = keep + 1
    end
    if keep > 1 then
      table.move(hist, keep, #hist + keep, 1) -- shift left (trailing nils clear the rest)
    end
  end
  if #hist >= max then
    return true, #hist, #hist > 0 and now - hist[1] or 0
  end
  hist[#hist + 1] = now
  return false
end

function Daemon:_cancel_kill_timer()
  local t = self.kill_timer
  self.kill_timer = nil
  if t and not t:finished() then
    t:cancel()
  end
end

-- running: liveness restarts the daemon, stopping it as a stop does: `exec.stopCommand` when
-- set (SIGKILL if the process outlives it and `sigtermTimeout`), else the stop signal
-- (`exec.stopSignal`, SIGTERM) to the group now and SIGKILL if the process is still there after
-- `sigtermTimeout`; its exit then takes the normal path (collect, decide: a failure, restarted
-- with the backoff).
function ACTIONS.recycle(self, why)
  local inc = self.inc
  local sig = self.exec.stopSignal or 'SIGTERM'
  self.recycling = why
  emit(self, { event = 'restart', pid = inc.pid, message = 'restarting: ' .. why })
  if self.exec.stopCommand and inc:running_command() then
    -- not the kill timer: the exit (decide) must not cancel the command half-way
    sched.spawn(self.id .. ':recycle', function()
      if not inc:stop_command() and self.inc == inc and self.state == 'running' then
        emit(self, { event = 'kill', pid = inc.pid, signal = 'SIGKILL' })
        inc:kill_now()
      end
    end)
    return
  end
  if not inc:signal(sig) then
    inc:kill_now() -- an exec.fn that has not returned a command: abort it
    return
  end
  emit(self, { event = 'term', pid = inc.pid, signal = sig })
  self.kill_timer = sched.spawn(self.id .. ':recycle', function()
    sched.sleep(inc.timeout or Daemon.DEFAULT_SIGTERM_TIMEOUT)
    self.kill_timer = nil
    if self.inc == inc and self.state == 'running' then
      emit(self, { event = 'kill', pid = inc.pid, signal = 'SIGKILL' })
      inc:kill_now()
    end
  end)
end

-- exiting -> backoff: sleep (yields, in the exit task), step the backoff up, then wake.
function ACTIONS.back_off(self)
  local b = self.exec.backoff or Daemon.BACKOFF
  local delay = self.backoff or b.initial
  self.restart_delay = delay -- on the next spawn event (the log's restart delay)
  sched.sleep(delay)
  self.backoff = math.min(math.floor(delay * b.factor + b.step), b.max)
  self.restarts = self.restarts + 1
  return fire(self, 'wake')
end

-- exiting -> done: a clean exit that is not restarted (a oneshot's success, or a daemon with
-- `restart = 'on-failure'` or `'never'`).
function ACTIONS.finish(self)
  self.loop = nil
  if not self.oneshot then
    tell(self, 'daemon_finished')
  end
end

-- exiting -> failed: the daemon stays down until `start()` (after `reset()`, orch restart).
function ACTIONS.give_up(self, why)
  self.loop = nil
  self.failed = why
  emit(self, { event = 'gave-up', message = why })
  tell(self, 'daemon_failed', why)
end

-- -> stopping: stop the incarnation (yields), end the loop task; returns true or false and a
-- description of an unclean exit.
function ACTIONS.stop(self)
  self:_cancel_kill_timer()
  self.recycling = nil
  local inc, ok, desc, info = self.inc, true, nil, nil
  if inc then
    ok, desc, info = inc:term()
  end
  if info then -- it was still running: report its end (never to the owner)
    self.last_exit = { code = info.code, signal = info.signal, message = info.message,
      time = sched.now() }
    emit(self, { event = 'exit', pid = info.pid, code = info.code, signal = info.signal,
      message = info.message, clean = ok })
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

--- The restart policy in force: `exec.restart`, else `always` (`on-failure` for a oneshot).
function Daemon:policy()
  return self.exec.restart or (self.oneshot and 'on-failure' or 'always')
end

--- Forget the restart limit's history and a give-up (`orch restart <id>`, reload).
function Daemon:reset()
  self.history, self.failed, self.backoff = nil, nil, nil
end

--- Start the loop (no-op while one runs). The owner is told of every spawn and exit.
function Daemon:start()
  if TRANSITIONS[self.state].start then
    self.backoff, self.restart_delay = nil, nil
    fire(self, 'start')
  end
end

--- Whether a loop is running (spawning, running a process, or backing off).
function Daemon:active()
  local s = self.state
  return s ~= 'idle' and s ~= 'done' and s ~= 'failed'
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

--- Liveness: restart the running process (`why` is logged as `restarting: <why>`); ignored
-- unless a process runs.
function Daemon:recycle(why)
  if not self.recycling then -- once per incarnation
    fire(self, 'recycle', why)
  end
end

--- Whether the running process was spawned with an `exec.envFile` that now says something
-- else (a reload restarts it, or signals it with `reloadOnChange = 'signal'`).
function Daemon:env_file_changed()
  local inc = self.inc
  return inc ~= nil and inc:env_file_changed()
end

--- Take a new `exec` (a reload with `reloadOnChange = 'signal'`): the running process keeps
-- its own (and is told by its reload signal: its `exec.envFile` as it is now counts as seen);
-- the next spawn uses this one.
function Daemon:adopt_exec(exec)
  self.exec = exec
  if self.inc then
    self.inc:env_file_seen(exec.envFile)
  end
end

--- Send `sig` to the current process group (operator control); returns the pid, or nil and
-- why not.
function Daemon:signal(sig)
  local inc = self.inc
  if not inc then
    return nil, ('%s has no process running'):format(self.id)
  end
  local pid, err = inc:signal(sig)
  if pid then -- a signal someone sent (orch signal, a reload): on the log and the timeline
    emit(self, { event = 'signal', pid = pid,
      signal = sig == 'reload' and self.exec.reloadSignal or sig })
  end
  return pid, err
end

--- SIGKILL the current process group now (second Ctrl-C); the loop is left to `term()`.
function Daemon:kill_now()
  fire(self, 'kill')
end

return Daemon
