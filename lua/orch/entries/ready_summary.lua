--- How an entry's readiness is decided, in one short line for `orch check`: the `ready` keys
-- that are set (`fn, notify, watchdog 300 ms, restartAfter 3`), defaults left out; `fn` only
-- beside a key that pushes readiness (a probe alone is the common case: nothing to say).
-- @module orch.entries.ready_summary
local M = {}

-- {key, format}: the order of the line; `%s` gets the value.
local KEYS = {
  { 'fn', 'fn' }, { 'notify', 'notify' }, { 'watchdog', 'watchdog %s ms' },
  { 'notifyFd', 'notifyFd %s' }, { 'logLine', 'logLine %q' }, { 'onLine', 'onLine' },
  { 'trigger', 'trigger' }, { 'gracePeriod', 'grace %s ms' }, { 'timeout', 'timeout %s ms' },
  { 'restartAfter', 'restartAfter %s' }, { 'failureThreshold', 'failureThreshold %s' },
  { 'successThreshold', 'successThreshold %s' },
}

--- The readiness keys set in a validated `ready` table, as text; nil without `ready` or when
-- there is nothing to say.
-- @tparam table|nil ready
-- @treturn string|nil
function M.summary(ready)
  if ready == nil then
    return nil
  end
  local parts = {}
  local pushes = ready.notify or ready.notifyFd or ready.logLine or ready.onLine
  for _, k in ipairs(KEYS) do
    local v = ready[k[1]]
    if k[1] == 'fn' and not pushes then
      v = nil
    end
    if v ~= nil and v ~= false then
      parts[#parts + 1] = k[2]:find('%', 1, true) and k[2]:format(v) or k[2]
    end
  end
  return #parts > 0 and table.concat(parts, ', ') or nil
end

return M
