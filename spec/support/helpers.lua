--- Spec helpers: drive the loop with a watchdog, wait on conditions, record effects.
-- Modules are required lazily, so a spec can install `spec.support.fake_core` first.
-- @module spec.support.helpers
local M = {}

local function sched()
  return require 'orch.runtime.sched'
end

local function now()
  return require('orch.core').now()
end

--- Install a fresh fake core and reload the orch modules on top of it (call inside `insulate`).
-- @treturn table fake core
-- @treturn table require 'orch'
function M.fake()
  local fake = require('spec.support.fake_core').new()
  for k in pairs(package.loaded) do
    if k == 'orch' or k:match('^orch%.') then
      package.loaded[k] = nil
    end
  end
  package.loaded['orch.core'] = fake
  return fake, require 'orch'
end

--- Reload the orch modules on the real core (`build/lib/orch/core.so`; call inside `insulate`).
-- @treturn table require 'orch'
function M.real()
  for k in pairs(package.loaded) do
    if k == 'orch' or k:match('^orch%.') then
      package.loaded[k] = nil
    end
  end
  return require 'orch'
end

--- Start a helper process on the real core (python3 script text or argv) and wait (in a task,
-- `ms`, default 20000) until it prints `ready`; returns the `orch.process` Command (close it to
-- SIGKILL its group).
function M.helper_process(argv, ms)
  local process = require 'orch.runtime.process'
  if type(argv) == 'string' then
    argv = { 'python3', '-u', '-c', argv }
  end
  local out = {}
  local cmd = assert(process.spawn(argv, {
    stdout = function(chunk)
      out[#out + 1] = chunk
    end,
    stderr = 'inherit',
  }))
  M.wait_until(function()
    return table.concat(out):find('ready', 1, true) or cmd.exited.is_set
  end, ms or 20000, 10, 'helper ready') -- a hang guard: python3 took 2.6 s to start under load
  assert(not cmd.exited.is_set, 'helper exited: ' .. table.concat(out))
  return cmd
end

--- Run `fn` as the root task and drive the loop; fails if it has not finished within `ms`
-- (virtual ms on the fake core, real ms on the real one; default 10000).
function M.run(fn, ms)
  return sched().run(fn, { timeout = ms or 10000 })
end

--- Wait until `pred()` is truthy: `wait_until(pred, ms, [step], [what])`, the one wait of the
-- specs (spec/support/wait.lua): in a task it polls every `step` ms (default 10) on the loop
-- clock; it raises naming `what` when `ms` (default 5000) pass first.
M.wait_until = require('spec.support.wait').wait_until

--- Advance (in a task) to the absolute loop time `t` ms relative to `t0` (virtual on the fake
-- core: this steps the clock, it does not synchronise with anything).
function M.at(t, t0)
  local target = (t0 or 0) + t
  local d = target - now()
  if d > 0 then
    sched().sleep(d)
  end
end

--- An effects recorder: records setHealth reports, onState/onProcess events, output and log
-- lines with the loop time.
function M.effects()
  local rec = { reports = {}, states = {}, procs = {}, outputs = {}, logs = {} }

  function rec.setHealth(h)
    rec.reports[#rec.reports + 1] = {
      t = now(), id = h.id, name = h.name, result = h.result, message = h.message, raw = h,
    }
  end

  function rec.onState(s)
    rec.states[#rec.states + 1] = {
      t = now(), id = s.id, kind = s.kind, result = s.result, message = s.message,
      visible = s.visible,
    }
  end

  function rec.onProcess(p)
    local e = { t = now() }
    for k, v in pairs(p) do
      e[k] = v
    end
    rec.procs[#rec.procs + 1] = e
  end

  function rec.output(id, stream, chunk)
    rec.outputs[#rec.outputs + 1] = { t = now(), id = id, stream = stream, chunk = chunk }
  end

  function rec.log(level, msg)
    rec.logs[#rec.logs + 1] = { t = now(), level = level, message = msg }
  end

  --- The setHealth reports of `id` (all when nil).
  function rec.of(id)
    local out = {}
    for _, r in ipairs(rec.reports) do
      if id == nil or r.id == id then
        out[#out + 1] = r
      end
    end
    return out
  end

  --- The last report of `id`.
  function rec.last(id)
    local l = rec.of(id)
    return l[#l]
  end

  --- The onState events of `id`.
  function rec.states_of(id)
    local out = {}
    for _, s in ipairs(rec.states) do
      if s.id == id then
        out[#out + 1] = s
      end
    end
    return out
  end

  --- The last raw state of `id`.
  function rec.state(id)
    local l = rec.states_of(id)
    return l[#l]
  end

  --- onProcess events of `id` (and `event` when given).
  function rec.events(id, event)
    local out = {}
    for _, e in ipairs(rec.procs) do
      if (id == nil or e.id == id) and (event == nil or e.event == event) then
        out[#out + 1] = e
      end
    end
    return out
  end

  --- Log lines matching the Lua pattern `pat`.
  function rec.logged(pat)
    local out = {}
    for _, l in ipairs(rec.logs) do
      if l.message:find(pat) then
        out[#out + 1] = l
      end
    end
    return out
  end

  --- Concatenated output of `id` on `stream`.
  function rec.text(id, stream)
    local out = {}
    for _, o in ipairs(rec.outputs) do
      if o.id == id and (stream == nil or o.stream == stream) then
        out[#out + 1] = o.chunk
      end
    end
    return table.concat(out)
  end

  return rec
end

--- For a block of tests with real processes: a fresh effects recorder per test (the returned
-- table forwards to it, so it can be passed as `effects` once), and after each test a check
-- that no process it spawned is still alive. Call at the top of the block.
function M.effects_per_test()
  local busted = require 'busted' -- the spec's before_each/after_each, from a module
  local current
  busted.before_each(function()
    current = M.effects()
  end)
  busted.after_each(function()
    for _, e in ipairs(current.events(nil, 'spawn')) do
      require('luassert').is_false(M.pid_alive(e.pid),
        ('%s (pid %d) outlived the spec'):format(e.id, e.pid))
    end
  end)
  return setmetatable({}, { __index = function(_, k)
    return current[k]
  end })
end

--- The same on the fake core (`fake` from M.fake): the fake reset before each test, and no
-- fake process left alive after it.
function M.fake_effects_per_test(fake)
  local busted = require 'busted'
  local current
  busted.before_each(function()
    fake.reset()
    current = M.effects()
  end)
  busted.after_each(function()
    require('luassert').are.equal(0, #fake.live(), 'a process outlived the spec')
  end)
  return setmetatable({}, { __index = function(_, k)
    return current[k]
  end })
end

--- Run the real loop until it has nothing left to do; fails when it is still busy after `ms`
-- (default 5000).
function M.drive_loop(core, ms)
  local fired = false
  local watchdog = core.timer()
  watchdog:start(ms or 5000, 0, function()
    fired = true
    core.stop()
  end)
  watchdog:unref()
  core.run()
  watchdog:close()
  require('luassert').is_false(fired, ('the loop was still busy after %d ms'):format(ms or 5000))
end

--- Times (relative to `t0`) of the reports of `id`, optionally only those with `result`.
function M.times(list, t0)
  local out = {}
  for i, r in ipairs(list) do
    out[i] = r.t - (t0 or 0)
  end
  return out
end

--- The probe times of the default trigger's fast phase (before the first success) with probes
-- that take no time, in ms since the session start: every one at or before `upto`. Each delay
-- is `trigger.fast_delay(elapsed, took)`: 5 ms at first, then 1/8 of the elapsed time, at most
-- 1000 ms. spec/trigger_spec.lua checks these against literal times (5 10 ... 45 50 56 63 70 78
-- ... 275 309 ... 492 553 ... 8254 9254 10254).
function M.fast_probes(upto)
  local fast_delay = require('orch.entries.trigger').fast_delay
  local out, t = {}, 0
  while true do
    t = t + fast_delay(t, #out > 0 and 0 or nil)
    if t > upto then
      return out
    end
    out[#out + 1] = t
  end
end

--- The first probe of the default trigger's fast phase at or after `t` ms into the session
-- (probes that take no time): e.g. 309 for a listener that binds at 300.
function M.fast_first(t)
  local fast_delay = require('orch.entries.trigger').fast_delay
  local p, n = 0, 0
  repeat
    p = p + fast_delay(p, n > 0 and 0 or nil)
    n = n + 1
  until p >= t
  return p
end

--- A probe fn returning the scripted results in turn (the last repeats); records call times.
function M.scripted(results)
  local calls = {}
  local i = 0
  local fn = function()
    i = i + 1
    calls[#calls + 1] = now()
    local r = results[math.min(i, #results)]
    if type(r) == 'function' then
      return r(i)
    end
    if type(r) == 'string' then
      return { result = r, message = r == 'success' and 'ok' or ('probe ' .. r) }
    end
    return r
  end
  return fn, calls
end

--- A probe fn that reads a mutable state table `{result = ..., message = ...}`.
function M.switch(initial)
  local state = { result = initial or 'failure', message = nil }
  local calls = {}
  local fn = function()
    calls[#calls + 1] = now()
    return { result = state.result, message = state.message or state.result }
  end
  return fn, state, calls
end

--- A probe fn succeeding when the fake (or real) core sees `port` listening.
function M.port_probe(port)
  return function()
    local ok = require('orch.core').port_listening(port)
    if ok then
      return { result = 'success', message = 'listening' }
    end
    return { result = 'failure', message = 'not listening' }
  end
end

--- A free local TCP port (asks the kernel via python3); nil when python3 is missing.
-- Picked at random below the ephemeral range (20000-29999) and checked bindable on IPv4 and
-- IPv6, so an outgoing connection elsewhere on the machine cannot take it before the test binds.
function M.free_port()
  local p = io.popen([[python3 -c 'import random, socket
for _ in range(200):
    port = random.randrange(20000, 30000)
    try:
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            s.close()
        print(port)
        break
    except OSError:
        continue' 2>/dev/null]])
  if not p then
    return nil
  end
  local out = p:read('*l')
  p:close()
  return tonumber(out)
end

--- Whether process `pid` still exists (not a zombie).
function M.pid_alive(pid)
  local f = io.open('/proc/' .. tostring(pid) .. '/stat', 'r')
  if not f then
    return false
  end
  local s = f:read('*a') or ''
  f:close()
  local state = s:match('^%d+ %b() (%a)')
  return state ~= nil and state ~= 'Z' and state ~= 'X'
end

return M
