--- The readiness probe of an entry (orch.entries.health_daemon): the loop paced by
-- `ready.trigger` that calls `ready.fn` in a task of its own, bounded by `ready.timeout`, maps
-- what it produced to a health table (orch.entries.health_result), applies
-- `ready.failureThreshold`/`successThreshold` and counts `ready.restartAfter` failures. Its
-- methods join `HealthDaemon`'s; the state machine starts and cancels the loop per session.
-- @module orch.entries.health_probe
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local health_result = require 'orch.entries.health_result'
local trigger = require 'orch.entries.trigger'

local HealthDaemon = {}

--- Default `ready.timeout`: a `ready.fn` call still running after this long is cancelled and
-- counts as a failure (ms; 0 = no limit).
HealthDaemon.DEFAULT_PROBE_TIMEOUT = 60000

function HealthDaemon:_trigger()
  local ready = self.spec.ready
  return ready and ready.trigger or trigger.defaultTrigger
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

return HealthDaemon
