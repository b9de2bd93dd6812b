-- orch.core timers and signals, driving the loop directly.
local core = require 'orch.core'
local H = require 'spec.support.helpers'

local function run_with_deadline(ms)
  H.drive_loop(core, ms)
end

describe('core.timer', function()
  after_each(function()
    collectgarbage()
    assert.equals(0, core.active_count())
  end)

  it('fires one-shot timers in deadline order', function()
    local out = {}
    local timers = {} -- keeps the timers referenced until the loop ends
    for _, ms in ipairs({ 30, 10, 20, 0 }) do
      local t = core.timer()
      t:start(ms, 0, function()
        out[#out + 1] = ms
      end)
      timers[#timers + 1] = t
    end
    run_with_deadline(2000)
    assert.equals(4, #timers)
    assert.same({ 0, 10, 20, 30 }, out)
  end)

  it('repeats until stopped, and a stopped timer never fires', function()
    local n, never = 0, false
    local t, u = core.timer(), core.timer()
    u:start(5, 0, function()
      never = true
    end)
    u:stop()
    t:start(1, 2, function()
      n = n + 1
      if n == 5 then
        t:stop()
      end
    end)
    run_with_deadline(2000)
    assert.equals(5, n)
    assert.is_false(never)
    assert.is_false(t:active())
  end)

  it('may be closed inside its own callback', function()
    local t = core.timer()
    local n = 0
    t:start(1, 1, function()
      n = n + 1
      t:close()
      t = nil
      collectgarbage()
    end)
    run_with_deadline(2000)
    assert.equals(1, n)
  end)

  it('rejects negative times', function()
    local t <close> = core.timer()
    assert.has_error(function()
      t:start(-1, 0, print)
    end)
  end)

  it('reports now() in ms, hrtime() in ns and time() in s', function()
    core.update_time() -- the loop time is cached between iterations
    local a, h = core.now(), core.hrtime()
    -- real clock: core.time is the system clock itself
    assert.is_true(math.abs(core.time() - os.time()) <= 1)
    local t <close> = core.timer()
    t:start(20, 0, function() end)
    run_with_deadline(2000)
    -- real clock: the C clocks themselves (lower bounds: a timer is never early)
    assert.is_true(core.now() - a >= 19)
    assert.is_true(core.hrtime() - h >= 19e6)
  end)
end)

describe('core.signal', function()
  it('delivers a signal sent to the orchestrator to the callback', function()
    local got
    local s <close> = core.signal()
    assert.is_true(s:start('SIGUSR1', function(name)
      got = name
      core.stop()
    end, true))
    local t <close> = core.timer()
    t:start(1, 0, function()
      assert(core.kill(core.getpid(), 'USR1'))
    end)
    run_with_deadline(2000)
    assert.equals('SIGUSR1', got)
  end)

  it('maps names and numbers', function()
    assert.equals(15, core.signum('SIGTERM'))
    assert.equals(15, core.signum('TERM'))
    assert.equals('SIGKILL', core.signame(9))
    assert.has_error(function()
      core.signum('SIGBOGUS')
    end)
  end)
end)
