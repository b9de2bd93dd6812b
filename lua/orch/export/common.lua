--- What the exporters share: seconds from ms, the probe cadence a trigger comes to, the edge
-- reactions, the image of an entry and the losses every engine has in common.
-- @module orch.export.common
local M = {}

--- Whole seconds for `ms`, rounded up, at least `min` (default 0).
function M.seconds(ms, min)
  local s = (ms + 999) // 1000
  return math.max(s, min or 0)
end

--- The probe period (s) of a trigger descriptor, and a loss text when that is not exact.
function M.period(ready)
  local t = ready.trigger or { name = 'defaultTrigger' }
  if t.name == 'cooldownTrigger' then
    local s = M.seconds(t.ms, 1)
    if s * 1000 ~= t.ms then
      return s, ('cooldownTrigger(%d) becomes a probe every %d s'):format(t.ms, s)
    end
    return s
  elseif t.name == 'defaultTrigger' then
    return 1, 'defaultTrigger (fast until ready, then every 30 s, 1 s after a failure) '
      .. 'becomes a probe every 1 s'
  elseif t.name == 'statusTrigger' then
    local ms = (t.intervals and t.intervals.success) or t.defaultMs
    local s = M.seconds(ms, 1)
    return s, ('statusTrigger (its interval depends on the last result) becomes a probe '
      .. 'every %d s'):format(s)
  elseif t.name == 'custom' then
    return 10, 'a hand-written trigger has no known cadence: a probe every 10 s'
  end
  return 10, ('%s (its interval changes over time) becomes a probe every 10 s'):format(t.name)
end

--- The image reference of an entry (nil for a host process): its image id, under `registry`.
function M.image_ref(e, registry)
  local id = e.image and e.image.id
  if not id then
    return nil
  end
  if registry and registry ~= '' then
    return registry:gsub('/+$', '') .. '/' .. id
  end
  return id
end

--- The command an engine runs for `e`: argv (a list) or nil when the image's own entrypoint
-- is used (`useEntrypoint` without metadata); `args` for `useEntrypoint(override)`.
function M.argv(e)
  local x = e.exec
  if x.entrypoint then
    return nil, x.override
  end
  return x.argv
end

--- Record the losses no engine can express (they run orch's Lua, or are orch's own outputs).
function M.common_losses(e, loss)
  local x = e.exec
  if x then
    if x.fn then
      loss:add(e.id, 'exec.fn', 'Lua run by orch has no equivalent: no command is set')
    end
    if x.onOutput then
      loss:add(e.id, 'exec.onStdout', "output callbacks run in orch: the engine's log gets "
        .. 'the output instead')
    end
    if x.log then
      loss:add(e.id, 'exec.log', "orch's per-entry log file: the engine's log is used instead")
    end
    if x.backoff then
      loss:add(e.id, 'exec.backoff', "the engine's own restart delays apply")
    end
    if x.reloadSignal then
      loss:add(e.id, 'exec.reloadSignal', 'orch signal <id> reload has no equivalent')
    end
  end
  local r = e.ready
  if r then
    if r.logLine then
      loss:add(e.id, 'ready.logLine', 'readiness from an output line has no equivalent')
    end
    if r.onLine then
      loss:add(e.id, 'ready.onLine', 'readiness from output lines has no equivalent')
    end
  end
end

--- The edges of `e` whose reaction the engine does not reproduce (`exact`: the set of
-- reactions it does), each as a loss: an engine orders the start, but a running dependent does
-- not react to its requirement's later health unless the reaction is exact there.
function M.edge_losses(e, model, loss, exact, how)
  for _, r in ipairs(e.requires) do
    local dep = model.by_id[r.id]
    if dep.kind ~= 'oneshot' and not exact[r.onUnhealthy] then
      loss:add(e.id, 'requires.' .. r.id, ("onUnhealthy = '%s': %s"):format(r.onUnhealthy,
        how[r.onUnhealthy]))
    end
    if r.after and dep.kind ~= 'oneshot' then
      loss:add(e.id, 'requires.' .. r.id .. '.after', ('the %d ms of tolerated outage have no '
        .. 'equivalent'):format(r.after))
    end
  end
end

return M
