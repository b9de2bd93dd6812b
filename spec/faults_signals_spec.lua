-- Fault: signal storms and signals during start-up (spec/fixtures/faults/signals.lua). 100
-- SIGTERMs in 1 s make exactly one orderly shutdown (exit 0, one "stopping", one "stopped", no
-- forced kill); so do signals that arrive while orch is starting, whatever it is doing (before
-- its handlers exist, evaluating main.lua, starting a oneshot); a SIGHUP during start-up makes
-- one reload. Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local SCRIPT = F.FIX .. '/signals.lua'

local procs = {}

local function start(env, args)
  local a = { 'run' }
  for _, x in ipairs(args or {}) do
    a[#a + 1] = x
  end
  a[#a + 1] = SCRIPT
  local p = R.start(a, { env = env })
  procs[#procs + 1] = p
  return p
end

-- `n` signals to `pid` over about `ms` milliseconds, from a shell loop (one kill every step).
local function storm(pid, sig, n, ms)
  os.execute(('i=0; while [ $i -lt %d ]; do kill -%s %d 2>/dev/null; i=$((i+1)); sleep %s; done')
    :format(n, sig, pid, tostring(ms / n / 1000)))
end

--- Whether a SIGINT waits to be delivered to `pid` (bit 2 of SigPnd or ShdPnd).
local function sigint_pending(pid)
  local st = F.proc_status(pid)
  if not st then
    return false
  end
  for _, k in ipairs({ 'SigPnd', 'ShdPnd' }) do
    local last = tonumber(tostring(st[k] or '0'):sub(-1), 16) or 0
    if last & 2 ~= 0 then
      return true
    end
  end
  return false
end

local function left_behind()
  local out = {}
  for _, args in ipairs({ 'sleep 100007', 'sleep 100008' }) do
    for _, pid in ipairs(F.find(args)) do
      out[#out + 1] = pid
    end
  end
  return out
end

-- One orderly shutdown: exit 0, at most one "stopping" (exactly one once handlers exist), the
-- final "stopped", never a forced kill, nothing left running.
local function one_orderly_shutdown(p, ms)
  assert.equal(0, p:wait(ms or 15000))
  local out = p:out()
  assert.is_true(F.count(out, 'SIGTERM: stopping') <= 1, out)
  assert.equal(0, F.count(out, 'killing every process group'), out)
  assert.equal(0, F.count(out, 'did not stop in time'), out)
  R.wait_until(function()
    return #left_behind() == 0
  end, 2000, 'nothing left running')
  return out
end

describe('faults: signals #integration', function()
  after_each(function()
    for _, p in ipairs(procs) do
      p:cleanup()
    end
    procs = {}
  end)

  it('100 SIGTERMs in 1 s while running: exactly one orderly shutdown', function()
    local p = start({})
    p:wait_for('b: starting %-> success', 10000)
    storm(p.pid, 'TERM', 100, 1000)
    local out = one_orderly_shutdown(p)
    assert.equal(1, F.count(out, 'SIGTERM: stopping'))
    assert.equal(1, F.count(out, 'SIGTERM again: already stopping'))
    assert.equal(1, F.count(out, 'a: stopped by SIGTERM'))
    assert.equal(1, F.count(out, 'b: exited with code 0'))
    assert.matches('orch%s+| stopped\n$', out)
  end)

  it('the same storm aimed at the contained orch itself (PID 1 of its namespace)', function()
    local p = start({})
    p:wait_for('b: starting %-> success', 10000)
    local inner = F.inner_pid(p.pid)
    assert.are_not.equal(p.pid, inner)
    storm(inner, 'TERM', 100, 1000)
    local out = one_orderly_shutdown(p)
    assert.equal(1, F.count(out, 'SIGTERM: stopping'))
    assert.equal(1, F.count(out, 'SIGTERM again: already stopping'))
    assert.matches('orch%s+| stopped\n$', out)
  end)

  -- Whether orch's main() has run its first instruction: it blocks the stop signals (or, later,
  -- catches them, or is the relay of a contained orch, which takes them in sigwaitinfo).
  -- Before that instant the kernel's default action applies, as to any program (the shell
  -- that forks it, the dynamic loader, the sanitizer runtime's start-up).
  local function in_main(pid)
    local st = F.proc_status(pid)
    if not st then
      return false
    end
    local term = 1 << 14 -- SIGTERM is signal 15
    return st.Name == 'orch-relay' or (tonumber(st.SigBlk or '0', 16) & term) ~= 0
      or (tonumber(st.SigCgt or '0', 16) & term) ~= 0
  end

  -- a storm that starts at once, or after a delay: before orch has handlers, while it
  -- evaluates main.lua (200 ms), while the oneshot runs (300 ms), while daemons start
  for _, delay in ipairs({ 0, 50, 150, 350, 600 }) do
    it(('a storm %d ms after start-up began: one orderly shutdown'):format(delay), function()
      local p = start({ FAULT_EVAL_MS = '200', FAULT_PREP = '0.3' })
      R.wait_until(function()
        return in_main(p.pid)
      end, 5000, "orch's main() to start")
      if delay > 0 then
        R.pause(delay / 1000) -- a stimulus at a point in start-up, not a synchronisation
      end
      storm(p.pid, 'TERM', 50, 500)
      local out = one_orderly_shutdown(p)
      assert.equal(1, F.count(out, 'SIGTERM: stopping'), out)
    end)
  end

  it('SIGTERM while main.lua is still being evaluated: exit 0 at once, nothing started',
    function()
      local p = start({ FAULT_EVAL_MS = '5000' })
      p:wait_for('signals.lua: evaluating', 10000, 'err', true)
      p:signal('TERM')
      -- the deadline is the assertion, on the real clock (only the real binary can show it):
      -- "at once" is well before the 5 s evaluation would end
      local out = one_orderly_shutdown(p, 4000)
      assert.equal(1, F.count(out, 'SIGTERM: stopping'))
      assert.falsy(out:find('started (pid', 1, true), out)
    end)

  it('SIGTERM while the first oneshot runs: it is stopped, its dependents never start',
    function()
      local p = start({ FAULT_PREP = '30' })
      p:wait_for('prep: started', 10000)
      p:signal('TERM')
      local out = one_orderly_shutdown(p, 5000)
      assert.matches('prep: stopped by SIGTERM', out)
      assert.falsy(out:find('a: started', 1, true), out)
      assert.same({}, F.find('sleep 30'))
    end)

  -- SIGUSR2 is one of the signals main.c blocks at start: it reopens the log files (the status
  -- file is written again, so one that logrotate moved away comes back) and never stops orch,
  -- contained or not.
  for _, contained in ipairs({ true, false }) do
    it(('SIGUSR2 reopens the log files and orch runs on (%s)'):format(
      contained and 'contained' or '--no-contain'), function()
      local dir = R.tmpdir()
      local status = dir .. '/status.json'
      local args = { '--status-file', status }
      if not contained then
        args[#args + 1] = '--no-contain'
      end
      local p = start({}, args)
      p:wait_for('b: starting %-> success', 10000)
      assert(os.rename(status, status .. '.1'))
      p:signal('USR2')
      p:wait_for('SIGUSR2: reopening log files', 5000)
      R.wait_until(function()
        return F.status_file(status)
      end, 5000, 'the status file written again')
      assert.is_false(p:exited())
      assert.equal(2, #left_behind())
      p:signal('TERM')
      local out = one_orderly_shutdown(p)
      assert.equal(1, F.count(out, 'SIGUSR2: reopening log files'))
      R.cleanup(dir)
    end)
  end

  -- Lua stuck in a C call (open() of a FIFO nobody writes to), where no hook can preempt it:
  -- the uv_signal callbacks never run. Two SIGINTs still end orch within 5 s (the C stop guard
  -- in signal.c: no answer from Lua in 2 s), exit 1, and nothing it started is left, contained
  -- or not (the background child that stayed in the daemon's process group included).
  for _, case in ipairs({ { 'ready', true }, { 'ready', false }, { 'eval', true } }) do
    local stuck, contained = case[1], case[2]
    it(('two SIGINTs end orch within 5 s while %s is stuck in a C call (%s)'):format(
      stuck == 'ready' and 'ready.fn' or 'a reload', contained and 'contained' or '--no-contain'),
      function()
        local dir = R.tmpdir()
        local fifo = dir .. '/fifo'
        os.execute('mkfifo ' .. R.quote(fifo))
        local member = F.unique()
        local args = { 'run' }
        if not contained then
          args[#args + 1] = '--no-contain'
        end
        args[#args + 1] = F.FIX .. '/stuck.lua'
        local p = R.start(args, { env = { FAULT_FIFO = fifo, FAULT_STUCK = stuck,
          FAULT_SLEEP = member } })
        procs[#procs + 1] = p
        local mpid = R.wait_until(function()
          return F.find('sleep ' .. member)[1]
        end, 10000, 'the group member')
        if stuck == 'eval' then
          p:wait_for('grp: starting %-> success', 10000)
          p:signal('HUP')
          p:wait_for('SIGHUP: reloading', 5000)
        end
        -- stuck: the callbacks that would log the signals never run
        local inner = F.inner_pid(p.pid)
        R.wait_until(function()
          local st = F.proc_status(inner)
          return st and st.State:match('^S')
        end, 5000, 'orch blocked in open()')
        -- Two presses of Ctrl-C, not one: a SIGINT sent while the first is still pending (at
        -- the relay or at orch) merges with it, so the second waits until both took the first.
        p:signal('INT')
        R.wait_until(function()
          return not sigint_pending(p.pid) and not sigint_pending(inner)
        end, 5000, 'the first SIGINT taken')
        require('spec.support.wait').pause(0.1)
        p:signal('INT')
        local t0 = R.now()
        assert.equal(1, p:wait(6000))
        assert.is_true(R.now() - t0 <= 5.0, 'within 5 s')
        assert.matches('no answer to the second SIGINT', p:err())
        R.wait_until(function()
          return not R.alive(mpid)
        end, 1000, 'the group member gone')
        R.cleanup(dir)
      end)
  end

  it('SIGHUP during start-up: one reload, then it runs on', function()
    local p = start({ FAULT_EVAL_MS = '300' })
    p:wait_for('signals.lua: evaluating', 10000, 'err', true)
    p:signal('HUP')
    -- the same script again: a reload by difference keeps every entry running (issue 13)
    p:wait_for('reloaded: 3 entries %([^)]*%); kept 3', 10000)
    p:wait_for('b: starting %-> success', 10000)
    assert.is_false(p:exited())
    assert.equal(1, F.count(p:out(), 'SIGHUP: reloading'))
    p:signal('TERM')
    one_orderly_shutdown(p)
  end)
end)
