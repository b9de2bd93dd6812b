--- HealthDaemon: one actor per chain entry (daemon, oneshot or health check).
-- It gates its process on its dependencies (every one running with the raw result `success`),
-- runs the readiness probe loop paced by the trigger, maps exits to health, reports through
-- `effects.setHealth` (visible entries only, at the upstream call sites of reference 2.15) and
-- tells its dependents when its result changes.
--
-- One file over the size guide on purpose, for now: the transition table, the probe loop (with
-- thresholds and liveness counting) and the pushed-readiness hooks all read and write the
-- actor's private session state (session number, dirty flags, raw and reported results, failure
-- counts); split across modules they would read each other's private fields, which the layering
-- rule forbids. Result normalisation, the one pure part, is the piece to move out first.
--
-- Transitions are serialised: notifications only mark the actor dirty and wake it; the actor
-- task processes them one at a time, so a start requested while a stop is in progress runs
-- after that stop (the latest desired state wins), and a terminated entry ignores everything
-- (fixes H2-H4 of reference 2.16). Stopping cancels an in-flight probe at once (H6); every error
-- raised by `ready.fn` becomes a failure and an invalid result becomes
-- `failure "invalid health result '<x>'"` (H5, H7).
-- @classmod orch.HealthDaemon
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local health_result = require 'orch.entries.health_result'
local trigger = require 'orch.entries.trigger'
local Daemon = require 'orch.entries.daemon'
local pushed = require 'orch.entries.pushed'

local HealthDaemon = {}
HealthDaemon.__index = HealthDaemon

--- Default `ready.gracePeriod` (the seed's documented value; DECISIONS).
HealthDaemon.DEFAULT_GRACE_PERIOD = 5000

--- Default `ready.timeout`: a `ready.fn` call still running after this long is cancelled and
-- counts as a failure (ms; 0 = no limit).
HealthDaemon.DEFAULT_PROBE_TIMEOUT = 60000

--- Longest health message kept (bytes); a longer one is cut and marked.
HealthDaemon.MAX_MESSAGE = health_result.MAX_MESSAGE

-- Shared by every entry without dependencies or dependents (read only).
local NONE = setmetatable({}, { __newindex = function()
  error('HealthDaemon: the shared empty list is read only', 2)
end })

-- Health tables are never modified once set, so the common ones are shared.
local RUNNING = { result = 'success', message = 'running' }
local WAITING = { result = 'waiting' }

-- Sessions are numbered: a session's callbacks compare their number with the current one.
local last_session = 0

--- Create the actor for `spec` (a validated entry) with its dependency actors.
-- @tparam table spec from `orch.graph.validate`'s `entry`
-- @tparam {HealthDaemon,...} deps
-- @tparam table opts `{effects = table, tracker = orch.track Tracker or nil, observer =
--   object}` (one table shared by a chain's entries); `observer:entry_changed(hd)` is called
--   whenever the entry's result changes
-- @treturn HealthDaemon
function HealthDaemon.new(spec, deps, opts)
  deps = #deps > 0 and deps or NONE
  local effects = opts.effects
  -- Few fields, and flags that start as nil rather than false: an entry's table stays at 16
  -- hash slots (with 20 it took 32: 400 bytes more per entry). What the spec says is read
  -- from it (`ready`, `visible`, `display`, `grace`, `trigger` below).
  local self = setmetatable({
    id = spec.id,
    kind = spec.kind,
    spec = spec,
    deps = deps,
    dependents = NONE,
    effects = effects or {},
    observer = opts.observer,
    state = 'down',
    health = WAITING,
    since = sched.now(),
    idle = true, -- the actor has nothing to do (see `settled`)
  }, HealthDaemon)
  if spec.exec and pushed.wanted(spec.ready) then
    -- readiness the service pushes (orch.entries.pushed): taken only within a session
    self.pushed = pushed.new(self.id, { ready = spec.ready, effects = self.effects,
      on_result = function(h)
        if self._session then
          self:_set_health(h, true)
        end
      end })
  end
  if spec.exec then
    self.daemon = Daemon.new(spec, { oneshot = spec.kind == 'oneshot', effects = self.effects,
      tracker = opts.tracker, owner = self, pushed = self.pushed })
  end
  for _, d in ipairs(deps) do
    if d.dependents == NONE then
      d.dependents = {}
    end
    d.dependents[#d.dependents + 1] = self
  end
  return self
end

--- The entry's `ready` table (nil for a daemon without one).
function HealthDaemon:ready()
  return self.spec.ready
end

--- Whether the entry's health is shown (`ready.display` is a string).
function HealthDaemon:visible()
  return self.spec.visible
end

--- The entry's display name, or nil.
function HealthDaemon:display()
  local ready = self.spec.ready
  return ready and ready.display or nil
end

function HealthDaemon:_grace()
  local ready = self.spec.ready
  return ready and ready.gracePeriod or HealthDaemon.DEFAULT_GRACE_PERIOD
end

function HealthDaemon:_trigger()
  local ready = self.spec.ready
  return ready and ready.trigger or trigger.defaultTrigger
end

local function call_effect(self, name, arg)
  local fx = self.effects
  local f = fx[name]
  if type(f) ~= 'function' then
    return
  end
  local ok, err = pcall(f, arg)
  if not ok then
    util.log(fx, 'error', ('effects.%s failed for %s: %s'):format(name, self.id,
      util.error_message(err)))
  end
end

-- Report `h` to effects.setHealth (visible entries only), softening a failure to `starting`
-- within the grace period of the current session.
function HealthDaemon:_report(h)
  if not self:visible() then
    return
  end
  local result = h.result
  if result == 'failure' and self._started and not self._failed
    and sched.now() - self._started <= self:_grace() then
    result = 'starting'
  end
  local payload = {}
  for k, v in pairs(h.extras or {}) do
    payload[k] = v
  end
  payload.id, payload.name, payload.result, payload.message = self.id, self:display(), result,
    h.message
  call_effect(self, 'setHealth', payload)
end

--- Set the raw health; notify dependents and the chain when the result string changes; report
-- to effects.setHealth when `report` is true.
function HealthDaemon:_set_health(h, report)
  local old = self.health
  self.health = h
  local changed = old.result ~= h.result
  if changed then
    self.since = sched.now()
  end
  if changed or old.message ~= h.message then
    call_effect(self, 'onState', {
      id = self.id, kind = self.kind, result = h.result, message = h.message,
      visible = self:visible(), failed = self._failed ~= nil or nil, blocked = self._blocked,
    })
  end
  if report then
    self:_report(h)
  end
  if changed then
    for _, d in ipairs(self.dependents) do
      d:_notify(old.result, self)
    end
    local obs = self.observer
    if obs then
      obs:entry_changed(self)
    end
  end
end

--- Called by a dependency `dep` whose result changed from `old`. The edge's `onUnhealthy`
-- (`requires = {db = {...}}`) decides what a running entry does: `stop` (the default) stops
-- it (after `after` ms of unhealthiness, when set); `ignore` keeps it running; `restart` keeps
-- it running and restarts it when `dep` is back (after an outage of at least `after` ms).
function HealthDaemon:_notify(old, dep)
  if self.terminated then
    return
  end
  local edge = dep and self.spec.edges and self.spec.edges[dep.id]
  if self.state == 'up' and not edge then
    if old == 'success' then
      self._restart = self._restart or 'dependency'
    end
  elseif self.state == 'up' and edge.onUnhealthy ~= 'ignore' then
    local lost = self._lost or {}
    self._lost = lost
    if old == 'success' then
      lost[dep.id] = sched.now()
      if edge.after then -- look again once the outage is long enough to react to
        sched.spawn(self.id .. ':after', function()
          sched.sleep(edge.after)
          self:_poke()
        end)
      end
    elseif dep.health.result == 'success' and lost[dep.id] then
      local down_for = sched.now() - lost[dep.id]
      lost[dep.id] = nil
      if down_for >= (edge.after or 0) then
        self._restart = self._restart or 'dependency'
      end
    end
  end
  self:_poke()
end

-- Of the requirements a running entry waits on, those it reacts to now by stopping: the plain
-- edges, and `stop` edges whose `after` has passed.
function HealthDaemon:_reacting(waiting_on)
  local edges, lost, now = self.spec.edges, self._lost or NONE, sched.now()
  local out = {}
  for _, d in ipairs(waiting_on) do
    local e = edges[d.id]
    if not e or (e.onUnhealthy == 'stop' and now - (lost[d.id] or now) >= (e.after or 0)) then
      out[#out + 1] = d
    end
  end
  return out
end

-- Mark the entry dirty and make sure an actor task will reconcile it (it is busy until then).
function HealthDaemon:_poke()
  if self.terminated then
    return
  end
  self._dirty = true
  self.idle = false
  self:_ensure_actor()
end

-- The actor is a task that exists only while there is something to do: an idle entry holds no
-- coroutine (1000 entries: ~2 MiB less, and nothing to wake).
function HealthDaemon:_ensure_actor()
  if self._live and not self._actor_task then
    local task = sched.spawn(self.id .. ':actor', self._actor, self)
    -- poked from the main thread (a C callback: sd_notify, an output line), the task has
    -- already run to its end here: remembering it would make `term` wait for it forever
    if not task:finished() then
      self._actor_task = task
    end
  end
end

-- Wake whoever waits in `settled` or `term` (events made on demand).
function HealthDaemon:_signal(name)
  local ev = self[name]
  if ev then
    ev:set()
  end
end

--- Whether the entry runs with the raw result `success` (what its dependents wait for).
function HealthDaemon:satisfied()
  return self.state == 'up' and self.health.result == 'success'
end

function HealthDaemon:_deps_status()
  local waiting_on = {}
  for _, d in ipairs(self.deps) do
    if not d:satisfied() then
      waiting_on[#waiting_on + 1] = d
    end
  end
  return #waiting_on == 0, waiting_on
end

local function waiting_message(waiting_on)
  local names = {}
  for _, d in ipairs(waiting_on) do
    if d:visible() then
      names[#names + 1] = d:display()
    end
  end
  if #names == 0 then
    return nil
  end
  return table.concat(names, ', ')
end

-- Cancels the probe call's task when the probe loop ends (stop, timeout, or an error).
local CALL_GUARD = { __close = function(g)
  if not g.task:finished() then
    g.task:cancel()
  end
end }

--- Call `ready.fn` in a task of its own, bounded by `ready.timeout`: a call that waits longer
-- is cancelled (its `<close>` handles close), and one that runs that long without yielding
-- (a busy loop) is preempted by the scheduler (the task's deadline). Returns the pcall
-- results of the call, or false and a timeout message.
function HealthDaemon:_call_probe()
  local ready = self:ready()
  local fn = ready.fn
  local limit = ready.timeout
  if limit == nil then
    limit = HealthDaemon.DEFAULT_PROBE_TIMEOUT
  end
  local res
  local done = sched.event()
  local task = sched.start({ name = self.id .. ':ready.fn', quiet = true,
    deadline = limit > 0 and limit or nil }, function()
    res = table.pack(pcall(fn))
    done:set()
  end)
  local _ <close> = setmetatable({ task = task }, CALL_GUARD)
  local finished = done:wait(limit > 0 and limit or nil)
  if task:preempted() then
    return false, ('ready.fn ran for more than %d ms without yielding'):format(limit)
  end
  if not finished then
    return false, ('ready.fn did not return within %d ms'):format(limit)
  end
  if not res then
    return false, 'ready.fn was cancelled'
  end
  return table.unpack(res, 1, res.n)
end

function HealthDaemon:_probe_loop(session)
  local function get_input()
    return { lastResult = self.health.result }
  end
  local ok, nxt = pcall(self:_trigger(), get_input)
  if not ok or type(nxt) ~= 'function' then
    util.log(self.effects, 'error', ('%s: ready.trigger failed: %s'):format(self.id,
      ok and ('returned ' .. type(nxt)) or util.error_message(nxt)))
    return
  end
  while true do
    local okn, fire = pcall(nxt)
    if not okn then
      util.log(self.effects, 'error', ('%s: ready.trigger raised: %s; probing stops'):format(
        self.id, util.error_message(fire)))
      return
    end
    if not fire then
      return
    end
    local h = health_result.normalise(self:_call_probe())
    if self._session ~= session then
      return
    end
    self:_liveness(h)
    if self:_passes_threshold(h) then
      self:_set_health(h, true)
    end
  end
end

-- ready.failureThreshold / successThreshold (Kubernetes' meaning): the result changes to
-- failure (success) only after that many equal raw results in a row; any other result at once.
function HealthDaemon:_passes_threshold(h)
  local ready = self:ready()
  if not ready.failureThreshold and not ready.successThreshold then
    return true -- (no streak kept: an entry's table stays small)
  end
  local need = (h.result == 'failure' and ready.failureThreshold)
    or (h.result == 'success' and ready.successThreshold) or 1
  local streak = self._streak
  if streak and streak.result == h.result then
    streak.n = streak.n + 1
  else
    streak = { result = h.result, n = 1 }
    self._streak = streak
  end
  return h.result == self.health.result or streak.n >= need
end

-- ready.restartAfter: that many failures in a row of a running daemon's check, after the grace
-- period of its incarnation, restart it (Daemon:recycle).
function HealthDaemon:_liveness(h)
  local n = self:ready().restartAfter
  if not n or not self.daemon then
    return
  end
  local since = math.max(self._started or 0, self._spawned or 0)
  if h.result ~= 'failure' or sched.now() - since <= self:_grace() or not self.daemon:pid() then
    self._fails = nil
    return
  end
  self._fails = (self._fails or 0) + 1
  if self._fails >= n then
    self._fails = nil
    self.daemon:recycle(('check failed %d times: %s'):format(n, tostring(h.message or '')))
  end
end

local function oneshot_failure(id, info)
  if info.spawn_error then
    return ('%s failed to start: %s'):format(id, tostring(info.message))
  end
  if info.signal then
    return ('%s exited with signal %s'):format(id, info.signal)
  end
  if info.code then
    return ('%s exited with code %s'):format(id, tostring(info.code))
  end
  return ('%s failed: %s'):format(id, tostring(info.message))
end

--- The daemon's incarnation exited (Daemon calls it, never after its `term()`).
function HealthDaemon:daemon_exited(ok, info)
  if self.state ~= 'up' or self.terminated then
    return
  end
  if self.kind == 'oneshot' then
    if ok then
      self:_set_health({ result = 'success' }, false)
    else
      self:_set_health({ result = 'failure', message = oneshot_failure(self.id, info) }, false)
    end
    return
  end
  local msg
  if info.recycled then
    msg = ('%s daemon restarting: %s'):format(self.id, info.recycled)
  elseif info.spawn_error then
    msg = ('%s daemon crashed: %s'):format(self.id, tostring(info.message))
  elseif ok then
    msg = self.id .. ' daemon exited'
  else
    msg = self.id .. ' daemon crashed'
  end
  self:_set_health({ result = 'failure', message = msg }, true)
end

-- Cancel the probe loop (the daemon ended for good: its check has nothing left to say).
local function end_probe(self)
  local probe = self._probe
  self._probe, self._session = nil, nil
  if probe then
    probe:cancel()
  end
end

--- The daemon exited cleanly and its policy does not restart it (`exec.restart =
-- 'on-failure'` or `'never'`): it reports `success "exited cleanly"` and stays down.
function HealthDaemon:daemon_finished()
  if self.state ~= 'up' or self.terminated then
    return
  end
  end_probe(self)
  self:_set_health({ result = 'success', message = 'exited cleanly' }, true)
end

--- The daemon gave up (restart limit, or `restart = 'never'` after a failure): the entry is
-- failed until `orch restart` (hold + release) or a reload; its dependents are blocked.
function HealthDaemon:daemon_failed(why)
  if self.state ~= 'up' or self.terminated then
    return
  end
  end_probe(self)
  self._failed = why
  self:_set_health({ result = 'failure', message = why }, true)
  self:_poke()
  for _, d in ipairs(self.dependents) do
    d:_poke()
  end
  local obs = self.observer
  if obs then
    obs:entry_changed(self)
  end
end

--- The id of the failed entry that keeps this one from ever starting (itself when it is
-- failed, a requirement's when it is blocked), or nil.
function HealthDaemon:blocker()
  if self._failed then
    return self.id
  end
  return self._blocked
end

--- Why the entry is failed (the message of its give-up), or nil.
function HealthDaemon:failed()
  return self._failed
end

--- The daemon spawned an incarnation: without a readiness check, a daemon is ready as soon as
-- its process runs.
function HealthDaemon:daemon_spawned()
  local ready = self:ready()
  if ready and ready.restartAfter then
    self._spawned, self._fails = sched.now(), nil
  end
  if self.state == 'up' and not self.terminated and self.kind == 'daemon'
    and not self:ready() then
    self:_set_health(RUNNING, false)
  end
end

-- What a blocked entry reports: the failed entry, and the requirement it is reached through.
local function blocked_health(root, via)
  local msg = ('blocked: %s failed'):format(root)
  if via ~= root then
    msg = msg .. (' (via %s)'):format(via)
  end
  return { result = 'disabled', message = msg }
end

-- What a held entry reports (`hold(reason)`).
local HELD = {
  stopped = { result = 'disabled', message = 'stopped' },
  restarting = { result = 'waiting', message = 'restarting' },
}

------------------------------------------------------------------------------------------------
-- The state machine. Notifications (a dependency's result changed, hold, release, term) only
-- mark the entry dirty and wake its actor task; the actor reads the situation as one event at
-- a time (`next_event`) and fires it: TRANSITIONS[state][event] = {action, next state}, one
-- static table for every entry. The state changes first, then the action runs; an action that
-- stops the session (yields) marks the entry dirty again so the actor looks once more.
--
--   state  event      action          next        what happens
--   down   go         start           up          report `starting`, start probe + process
--   down   hold       report_held     down        `disabled "stopped"` / `waiting "restarting"`
--   down   deps_down  report_waiting  down        `waiting "<displays of the requirements>"`
--   down   term       -               terminated
--   up     go         -               up          nothing to do
--   up     hold       stop_held       down        report held, stop (TERM -> KILL)
--   up     deps_down  stop_waiting    down        report waiting, stop
--   up     restart    stop_restart    down        a requirement lost `success`: stop, start
--   up     term       stop            terminated  stop; nothing is reported any more
--   up     failed     stop            failed      the daemon gave up: stays down
--   down   blocked    report_blocked  down        `disabled "blocked: <req> failed"`
--   up     blocked    stop_blocked    down        (the same, stopping first)
--   failed hold       clear           down        orch restart/stop: forget the give-up
--   failed term       -               terminated
--
-- Events, most important first: term (requested), hold (operator), failed (the daemon gave
-- up), blocked (a requirement is failed or blocked), deps_down (a requirement not running
-- with `success`), restart (a requirement left `success` while this one ran), go.
local TRANSITIONS = {
  down = {
    go = { 'start', 'up' },
    hold = { 'report_held', 'down' },
    deps_down = { 'report_waiting', 'down' },
    blocked = { 'report_blocked', 'down' },
    term = { nil, 'terminated' },
  },
  up = {
    go = { nil, 'up' },
    hold = { 'stop_held', 'down' },
    deps_down = { 'stop_waiting', 'down' },
    blocked = { 'stop_blocked', 'down' },
    restart = { 'stop_restart', 'down' },
    failed = { 'stop', 'failed' },
    term = { 'stop', 'terminated' },
  },
  failed = {
    hold = { 'clear', 'down' },
    term = { nil, 'terminated' },
  },
  terminated = {},
}
HealthDaemon.TRANSITIONS = TRANSITIONS

-- The event the entry's situation amounts to now, and the requirements it waits on.
local function next_event(self)
  if self.terminated then
    return 'term'
  end
  if self._held then
    self._restart = nil
    return 'hold'
  end
  if self._failed then
    return 'failed'
  end
  local ok, waiting_on = self:_deps_status()
  if not ok and self.state == 'up' and self.spec.edges then
    waiting_on = self:_reacting(waiting_on)
    if #waiting_on == 0 then
      return 'go' -- tolerated for now; a pending restart waits until the requirement is back
    end
  end
  if not ok then
    self._restart = nil
    for _, d in ipairs(waiting_on) do
      local root = d:blocker()
      if root then
        return 'blocked', { root, d.id }
      end
    end
    self._blocked = nil
    return 'deps_down', waiting_on
  end
  self._blocked = nil
  local restart = self._restart
  self._restart = nil
  return restart and 'restart' or 'go'
end

local ACTIONS = {}

-- Start the session: the probe loop and the daemon (never yields).
function ACTIONS.start(self)
  self:_set_health({ result = 'starting' }, true)
  self._started, self._streak, self._fails, self._lost = sched.now(), nil, nil, nil
  last_session = last_session + 1
  local session = last_session
  self._session = session
  if self:ready() and self:ready().fn then
    self._probe = sched.spawn(self.id .. ':probe', self._probe_loop, self, session)
  end
  if self.daemon then
    self.daemon:start()
  end
end

-- Stop the session (yields while the process terminates).
function ACTIONS.stop(self)
  self._session = nil
  local probe = self._probe
  self._probe = nil
  if probe then
    probe:cancel()
  end
  if self.daemon then
    local ok, desc = self.daemon:term()
    if not ok and desc then
      util.log(self.effects, 'warning', ('%s: %s on stop'):format(self.id, desc))
    end
  end
end

function ACTIONS.report_held(self)
  self:_set_health(HELD[self._held], true)
end

function ACTIONS.report_waiting(self, waiting_on)
  self:_set_health({ result = 'waiting', message = waiting_message(waiting_on) }, true)
end

function ACTIONS.report_blocked(self, why)
  self._blocked = why[1]
  self:_set_health(blocked_health(why[1], why[2]), true)
end

function ACTIONS.stop_blocked(self, why)
  ACTIONS.report_blocked(self, why)
  ACTIONS.stop(self)
  self._dirty = true
end

-- failed -> down (operator hold): forget the give-up and the restart history.
function ACTIONS.clear(self)
  self._failed = nil
  if self.daemon then
    self.daemon:reset()
  end
  ACTIONS.report_held(self)
  for _, d in ipairs(self.dependents) do
    d:_poke()
  end
end

function ACTIONS.stop_held(self)
  ACTIONS.report_held(self)
  ACTIONS.stop(self)
  self._dirty = true
end

function ACTIONS.stop_waiting(self, waiting_on)
  ACTIONS.report_waiting(self, waiting_on)
  ACTIONS.stop(self)
  self._dirty = true
end

function ACTIONS.stop_restart(self)
  self:_set_health(WAITING, true)
  ACTIONS.stop(self)
  self._dirty = true
end

-- Fire what the situation amounts to (upstream `updateStatus` + `changeRunning`). Never yields
-- unless it stops a session.
function HealthDaemon:_step()
  local event, arg = next_event(self)
  local row = TRANSITIONS[self.state][event]
  if not row then
    return
  end
  self.state = row[2]
  local act = row[1]
  if act then
    ACTIONS[act](self, arg)
  end
end

function HealthDaemon:_actor()
  while self._dirty and self.state ~= 'terminated' do
    self._dirty = nil
    self:_step()
  end
  if self.terminated and self.state ~= 'terminated' then
    self:_step() -- the term event
  end
  self._actor_task = nil -- from here on, a poke starts a new actor
  self.idle = true
  self:_signal('_idle')
  if self.state == 'terminated' then
    self:_signal('_done')
  end
end

--- The first pass at build time (synchronous: it only starts or reports waiting).
function HealthDaemon:initial()
  self:_step()
end

--- Let changes be acted on from now on (after `initial` of every entry: what the dependencies
-- reported then was seen by this entry's own `initial`).
function HealthDaemon:start_actor()
  self._live = true
  self._dirty = nil
end

--- Terminate (yields): stop the probe loop and the process; nothing is reported afterwards and
-- every later event is ignored.
-- @async
function HealthDaemon:term()
  self.terminated = true
  if self._live and self.state ~= 'terminated' then
    self:_ensure_actor() -- a running actor sees `terminated` when its step returns
    self._done = self._done or sched.event()
    while self.state ~= 'terminated' or self._actor_task do
      self._done:wait()
    end
  end
  self.state, self.idle = 'terminated', true
  if self.pushed then
    self.pushed:close()
  end
end

--- SIGKILL the process group now and ignore everything afterwards (second Ctrl-C).
function HealthDaemon:kill_now()
  self.terminated = true
  if self._probe then
    self._probe:cancel()
    self._probe = nil
  end
  if self.daemon then
    self.daemon:kill_now()
  end
end

--- Operator control: keep the entry stopped until `release()`. `reason` is `'stopped'` (it
-- reports `disabled "stopped"`) or `'restarting'` (`waiting "restarting"`). Returns at once;
-- `settled()` waits until the process is gone.
function HealthDaemon:hold(reason)
  assert(HELD[reason], 'unknown hold reason')
  self._held = reason
  self:_poke()
end

--- Operator control: undo `hold`; the entry starts again as soon as its requirements allow.
function HealthDaemon:release()
  self._held = nil
  self:_poke()
end

--- Why the entry is held (`'stopped'`, `'restarting'`), or nil.
function HealthDaemon:held()
  return self._held
end

--- Wait until the actor has processed every pending change (a stop has completed); returns at
-- once after `term()` or `kill_now()`.
-- @async
function HealthDaemon:settled()
  while not self.idle and not self.terminated do
    self._idle = self._idle or sched.event()
    self._idle:clear()
    self._idle:wait()
  end
end

--- Send `sig` to the process group of the entry's current process.
-- @treturn[1] integer the pid
-- @treturn[2] nil
-- @treturn[2] string why not
function HealthDaemon:signal(sig)
  if not self.daemon then
    return nil, ('%s is a health check: it has no process'):format(self.id)
  end
  return self.daemon:signal(sig)
end

--- A snapshot of the entry's state for the CLI.
function HealthDaemon:snapshot()
  local d = self.daemon
  local last = d and d.last_exit
  return {
    id = self.id,
    kind = self.kind,
    display = self:display(),
    visible = self:visible(),
    result = self.health.result,
    message = self.health.message,
    running = self.state == 'up',
    terminated = self.terminated == true,
    pid = d and d:pid() or nil,
    restarts = d and d.restarts or 0,
    failed = self._failed,
    blocked = self._blocked,
    lastExit = last and { code = last.code, signal = last.signal, time = last.time,
      message = last.message } or nil,
    since = self.since,
  }
end

return HealthDaemon
