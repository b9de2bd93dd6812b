--- The state machine of an entry (orch.entries.health_daemon): the operator's `hold` and
-- `release`, the event its situation amounts to (`next_event`), the transition table
-- (`TRANSITIONS`) and the actions it fires, and the actor task that fires them one at a time.
-- Its methods join `HealthDaemon`'s (the actor's own state, read and written by its own
-- methods); health_daemon.lua creates the actor and keeps its health.
-- @module orch.entries.health_machine
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'

local HealthDaemon = {}

-- An entry without edges has lost nothing (read only).
local NONE = {}

local WAITING = { result = 'waiting' }

-- Sessions are numbered: a session's callbacks compare their number with the current one.
local last_session = 0

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

return HealthDaemon
