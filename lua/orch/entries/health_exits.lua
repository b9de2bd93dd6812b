--- What an entry's process supervisor (orch.entries.daemon) tells the entry
-- (orch.entries.health_daemon): an incarnation spawned, exited, finished for good (a clean exit
-- its policy does not restart) or gave up (failed until `orch restart` or a reload), and the
-- health each of these means for a daemon or a oneshot. Its methods join `HealthDaemon`'s.
-- @module orch.entries.health_exits
local sched = require 'orch.runtime.sched'

local HealthDaemon = {}

-- Health tables are never modified once set, so the common one is shared.
local RUNNING = { result = 'success', message = 'running' }

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

return HealthDaemon
