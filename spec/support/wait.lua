--- The one deadline-bounded wait of the specs: `wait_until(pred, ms, [step], [what])`.
-- Inside a task it yields between polls on the loop clock (virtual on the fake core). Outside a
-- task it pauses between polls on the monotonic clock, driving the real core's loop when that is
-- loaded (the core specs) and sleeping otherwise (the CLI specs that run build/bin/orch).
-- helpers.wait_until and runner.wait_until are this function.
-- Modules are looked up at call time, so a spec can install the fake core first.
-- @module spec.support.wait
local M = {}

--- Seconds on the system's monotonic clock (CLOCK_BOOTTIME, 10 ms steps), read from
-- /proc/uptime: no process per call (`date` cost a fork and an exec per poll).
function M.monotonic()
  local f = assert(io.open('/proc/uptime'))
  local s = f:read('n')
  f:close()
  return s
end

--- The running task's scheduler, or nil outside the loop.
local function task_sched()
  local sched = package.loaded['orch.runtime.sched']
  if sched and sched.current() then
    return sched
  end
  return nil
end

--- The real core when it is loaded (not spec/support/fake_core.lua, whose clock is virtual).
local function real_core()
  local core = package.loaded['orch.core']
  if type(core) == 'table' and core.run and not core.program then
    return core
  end
  return nil
end

--- Pause outside a task for `s` seconds (the condition polled is what synchronises). With the
-- real core loaded the pause drives its loop (so callbacks run, as the core specs need);
-- otherwise it is a `sleep`.
function M.pause(s)
  local core = real_core()
  if not core then
    os.execute('sleep ' .. tostring(s))
    return
  end
  local t = core.timer()
  t:start(math.max(1, math.floor(s * 1000 + 0.5)), 0, function()
    core.stop()
  end)
  core.run()
  t:close()
end

--- Wait until `pred()` returns a truthy value, and return it; raise naming `what` when it has
-- not within `ms` (default 5000). Polls every `step` ms (default 10 in a task, 20 outside);
-- `step` may be left out (`wait_until(pred, ms, what)`).
function M.wait_until(pred, ms, step, what)
  if type(step) == 'string' then
    step, what = nil, step
  end
  ms = ms or 5000
  local sched = task_sched()
  local now, sleep
  if sched then
    now, sleep, step = sched.now, sched.sleep, step or 10
  else
    now = function()
      return M.monotonic() * 1000
    end
    step = step or 20
    sleep = function(d)
      M.pause(d / 1000)
    end
  end
  local deadline = now() + ms
  while true do
    local v = pred()
    if v then
      return v
    end
    if now() >= deadline then
      error(('timed out after %d ms waiting for %s'):format(ms, what or 'a condition'), 2)
    end
    sleep(step)
  end
end

--- Run `fn` as the root task with a watchdog (default 10 s); returns its results.
function M.run(fn, timeout_ms)
  return require('orch.runtime.sched').run(fn, { timeout = timeout_ms or 10000 })
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
