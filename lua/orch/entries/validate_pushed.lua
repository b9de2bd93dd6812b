--- Validation of the `ready` keys for readiness the service pushes (orch.entries.pushed):
-- `notify`, `notifyFd`, `watchdog`, `logLine`, `onLine`.
-- @module orch.entries.validate_pushed
local invalid = require 'orch.runtime.invalid'

local M = {}

local fail, expect, check_ms = invalid.fail, invalid.expect, invalid.check_ms

--- Check the pushed-readiness keys of `ready` into `out`; true when the entry pushes its
-- readiness (then `ready.fn` is optional). `kind`: 'daemon' or 'health'.
function M.check(ready, ctx, out, kind)
  local pushes = false
  local function needs_process(field)
    if kind == 'health' then
      fail(ctx, field, ('%s needs a process; a health check runs none (use addDaemon)')
        :format(field))
    end
    pushes = true
  end
  if ready.notify ~= nil then
    expect(ready.notify, type(ready.notify) == 'boolean', ctx, 'ready.notify', 'a boolean')
    if ready.notify then
      needs_process('ready.notify')
    end
    out.notify = ready.notify or nil
  end
  if ready.notifyFd ~= nil then
    local n = ready.notifyFd
    expect(n, math.type(n) == 'integer' and n >= 3 and n <= 1023, ctx, 'ready.notifyFd',
      'an integer from 3 to 1023 (0, 1 and 2 are the standard streams)')
    needs_process('ready.notifyFd')
    out.notifyFd = n
  end
  if ready.watchdog ~= nil then
    check_ms(ready.watchdog, ctx, 'ready.watchdog')
    if not out.notify then
      fail(ctx, 'ready.watchdog', 'ready.watchdog needs ready.notify = true (the pings are '
        .. 'WATCHDOG=1 sd_notify messages)')
    end
    out.watchdog = ready.watchdog
  end
  if ready.logLine ~= nil then
    expect(ready.logLine, type(ready.logLine) == 'string' and ready.logLine ~= '', ctx,
      'ready.logLine', 'a non-empty Lua pattern')
    local ok, err = pcall(string.find, '', ready.logLine)
    if not ok then
      fail(ctx, 'ready.logLine', ('ready.logLine is not a valid Lua pattern: %s'):format(
        tostring(err):gsub('^.-:%d+: ', '')))
    end
    needs_process('ready.logLine')
    out.logLine = ready.logLine
  end
  if ready.onLine ~= nil then
    expect(ready.onLine, type(ready.onLine) == 'function', ctx, 'ready.onLine',
      'a function(stream, line) returning a result or nil')
    if ready.logLine ~= nil then
      fail(ctx, 'ready.onLine', 'give ready.logLine or ready.onLine, not both')
    end
    needs_process('ready.onLine')
    out.onLine = ready.onLine
  end
  return pushes
end

return M
