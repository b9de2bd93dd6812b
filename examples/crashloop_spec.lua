-- orch test examples: crashloop.lua in a simulated world. `flaky` crash-loops for ten virtual
-- minutes: its restarts follow the backoff (0, 1, 2 ... s, capped at 30 s) and `app`, which
-- requires it, never starts. Then flaky is fixed: it comes up, app starts after it, and the
-- shutdown stops app before flaky.
local testing = require 'orch.testing'

describe('crashloop.lua', function()
  it('a crash-looping dependency keeps its dependent down for ten minutes', function()
    local c0 = os.clock()
    local w = testing.world('crashloop.lua', { behaviours = {
      flaky = { stdout = 'flaky: starting\n', exit = 200, code = 1 },
    } })
    w:advance(10 * 60 * 1000)
    w:restarted('flaky', 35) -- 0 + 1 + ... + 29 s, then every 30 s: 35 restarts in 10 min
    local delays = {}
    for _, r in ipairs(w:restarts('flaky')) do
      delays[#delays + 1] = r.delay
    end
    assert.are.same({ 0, 1000, 2000, 3000 }, { table.unpack(delays, 1, 4) })
    assert.are.equal(30000, delays[#delays])
    assert.are.equal('failure', w:result('flaky'))
    w:never_started('app')

    -- fixed: the next flaky listens, and app starts once it is ready
    w:behave('flaky', { listen = 65011, listen_after = 500 })
    assert.is_true(w:run_until(function()
      return w:result('app') == 'success'
    end, 60000))
    assert.is_true(w.history:spawns('app')[1].t >= w:ready_at('flaky'))
    w:stop()
    w:stopped_before('app', 'flaky')
    print(('\ncrashloop: 10 virtual minutes and a shutdown in %.3f s CPU'):format(
      os.clock() - c0))
  end)
end)
