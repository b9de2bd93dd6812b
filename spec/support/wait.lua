--- Deadline-bounded waiting for core-level specs.
local sched = require 'orch.sched'

local M = {}

--- Run `fn` as the root task with a watchdog (default 10 s); returns its results.
function M.run(fn, timeout_ms)
  return sched.run(fn, { timeout = timeout_ms or 10000 })
end

--- Poll `pred` every 5 ms until it returns a truthy value (yields); raises after `ms`.
function M.until_true(pred, ms, what)
  local deadline = sched.now() + (ms or 5000)
  while true do
    local v = pred()
    if v then
      return v
    end
    if sched.now() > deadline then
      error(('timed out waiting for %s'):format(what or 'condition'), 2)
    end
    sched.sleep(5)
  end
end

--- Whether `pid` is gone (or a zombie nobody can reach).
function M.pid_dead(pid)
  local f = io.open(('/proc/%d/stat'):format(pid))
  if not f then
    return true
  end
  local stat = f:read('a')
  f:close()
  return stat:match('^%d+ %b() (%a)') == 'Z'
end

return M
