--- HealthDaemon: one actor per chain entry (daemon, oneshot or health check).
-- It gates its process on its dependencies (every one running with the raw result `success`),
-- runs the readiness probe loop paced by the trigger, maps exits to health, reports through
-- `effects.setHealth` (visible entries only, at the upstream call sites of reference 2.15) and
-- tells its dependents when its result changes.
--
-- The actor is one class in five files, one concept each; the parts add their methods to the
-- class (`include` at the bottom) and share only the actor's own state:
--   health_daemon.lua   creation, health kept and reported, dependents told, term, snapshot
--   health_machine.lua  the state machine: hold/release, events, TRANSITIONS, actions, actor
--   health_probe.lua    the readiness probe loop: ready.fn with its timeout, thresholds
--   health_exits.lua    what the process supervisor reports: spawned, exited, finished, failed
--   health_result.lua   what ready.fn produced as a health table (pure, no actor state)
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
local Daemon = require 'orch.entries.daemon'
local pushed = require 'orch.entries.pushed'

local HealthDaemon = {}
HealthDaemon.__index = HealthDaemon

--- Default `ready.gracePeriod` (the seed's documented value; DECISIONS).
HealthDaemon.DEFAULT_GRACE_PERIOD = 5000

--- Longest health message kept (bytes); a longer one is cut and marked.
HealthDaemon.MAX_MESSAGE = health_result.MAX_MESSAGE

-- Shared by every entry without dependencies or dependents (read only).
local NONE = setmetatable({}, { __newindex = function()
  error('HealthDaemon: the shared empty list is read only', 2)
end })

-- Health tables are never modified once set, so the common one is shared.
local WAITING = { result = 'waiting' }

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
      end,
      -- a watchdog miss with ready.restartAfter restarts the daemon at once (as systemd's
      -- WatchdogSec): one silence is one miss, however many failures restartAfter asks for
      on_watchdog = function(h)
        if self._session and spec.ready.restartAfter and self.daemon:pid() then
          self.daemon:recycle(h.message)
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

--- Reload support (`exec.reloadOnChange = 'signal'`): whether the process runs with an old
-- `exec.envFile`; and take `exec` as the entry's configuration without restarting it (the
-- spec is a copy with the new exec: listings and the next reload compare against it).
function HealthDaemon:env_file_changed()
  return self.daemon ~= nil and self.daemon:env_file_changed()
end

function HealthDaemon:adopt_exec(exec)
  local spec = {}
  for k, v in pairs(self.spec) do
    spec[k] = v
  end
  spec.exec = exec
  self.spec = spec
  if self.daemon then
    self.daemon:adopt_exec(exec)
  end
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

-- The other parts of the actor add their methods (each one's top comment says what it owns).
local function include(methods)
  for k, v in pairs(methods) do
    assert(HealthDaemon[k] == nil, k)
    HealthDaemon[k] = v
  end
end
include(require 'orch.entries.health_machine')
include(require 'orch.entries.health_probe')
include(require 'orch.entries.health_exits')

return HealthDaemon
