-- Fault: children killed at random. 50 daemons with readiness checks
-- (spec/fixtures/faults/chaos.lua); a chaos task SIGKILLs a random entry's process every 100 ms
-- (spec/fixtures/faults/chaos.py). At the end every entry is ready again, no zombie exists,
-- orch's open descriptors are back within 10% of where they started, its RSS within 10% of what
-- it was after the first quarter of the chaos (the warm-up: 25% at most), and every kill is in
-- the log. 5 s in `make test`; 60 s in `make soak` (#soak).
-- Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local N = 50

local function sample(pid)
  local st = F.proc_status(pid)
  return { fds = F.fd_count(pid), rss = st.VmRSS, hwm = st.VmHWM }
end

local function settle_and_sample(pid)
  -- a few samples a little apart; the last one counts (the loop is idle by then)
  local s
  for _ = 1, 3 do
    R.pause(0.3)
    s = sample(pid)
  end
  return s
end

local function within(after, before, pct)
  return math.abs(after - before) <= before * pct / 100
end

local function chaos(seconds, recover_ms)
  local dir = R.tmpdir()
  local status = dir .. '/status.json'
  local p = R.start({ 'run', '--status-file', status, F.FIX .. '/chaos.lua' },
    { env = { FAULT_DIR = dir, FAULT_N = tostring(N) } })
  F.with_orch(p, dir, 'sleep 100003', function()
    F.wait_ready(status, N, 20000)
    local orch = F.inner_pid(p.pid)
    local before = settle_and_sample(orch)
    local killed_file = dir .. '/killed'
    local function kill_for(s)
      return tonumber(R.capture(('%s %s %s %d %s 100 %s'):format(F.PY,
        R.quote(F.FIX .. '/chaos.py'), R.quote(status), orch, s, R.quote(killed_file))))
    end
    local t0 = R.now()
    -- A quarter of the chaos warms orch up (its heap and allocator pools grow to what restarts
    -- need); a leak is growth over the rest, proportional to the kills.
    local n = kill_for(seconds / 4)
    local warm = sample(orch)
    n = n + kill_for(seconds * 3 / 4)
    local chaos_s = R.now() - t0
    assert.is_true(n >= seconds * 10 * 0.8, ('only %s kills in %d s'):format(n, seconds))
    assert.is_false(p:exited(), 'orch survived the chaos')
    -- every entry ready again (the backoff grows by 1 s per restart: give it time)
    local t1 = R.now()
    F.wait_ready(status, N, recover_ms, 'every entry ready again after the chaos')
    local recover_s = R.now() - t1
    local after = settle_and_sample(orch)
    -- no zombie anywhere under orch
    local z = R.wait_until(function()
      local zs = F.zombies(F.descendants(p.pid))
      return #zs == 0 and zs
    end, 2000, 'no zombies')
    assert.same({}, z)
    -- every kill is in the log, as the death of the right entry's right process
    local out = p:out()
    local kills = 0
    for id, pid in (R.read_file(killed_file) or ''):gmatch('(%S+) (%d+)\n') do
      kills = kills + 1
      assert.truthy(out:find(('%s: killed by SIGKILL (pid %s)'):format(id, pid), 1, true),
        ('kill of %s pid %s not in the log'):format(id, pid))
    end
    assert.equal(n, kills)
    io.stderr:write(('\n[chaos %ds] %d kills in %.1f s, ready again %.1f s later; orch fds %d -> '
      .. '%d, RSS %d -> %d (after the first quarter) -> %d kB (peak %d kB)\n'):format(seconds, n,
      chaos_s, recover_s, before.fds, after.fds, before.rss, warm.rss, after.rss, after.hwm))
    assert.is_true(within(after.fds, before.fds, 10),
      ('descriptors %d -> %d'):format(before.fds, after.fds))
    if not F.sanitized() then
      assert.is_true(within(after.rss, warm.rss, 10),
        ('RSS %d -> %d kB over the last three quarters'):format(warm.rss, after.rss))
      assert.is_true(after.rss <= before.rss * 1.25,
        ('RSS %d -> %d kB in all'):format(before.rss, after.rss))
    end
  end)
end

describe('faults: chaos #integration', function()
  if not F.is_root() then
    it('needs root', function()
      pending('not root')
    end)
    return
  end

  it('50 daemons, a random SIGKILL every 100 ms for 5 s: all ready again, nothing leaked',
    function()
      chaos(5, 30000)
    end)

  it('the same for 60 s #soak', function()
    chaos(60, 90000)
  end)
end)
